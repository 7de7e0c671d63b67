/**
 * Typed failures of the security component.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * The master key could not be loaded, created or written.
 *
 * @since 0.1.0
 */
export class MasterKeyError extends Data.TaggedError("MasterKeyError")<{
  readonly reason: string
  readonly path?: string | undefined
  readonly cause?: unknown
}> {
  override get message() {
    return this.path === undefined ? this.reason : `${this.reason} (${this.path})`
  }
}

/**
 * The secrets store could not be read, written or re-encrypted.
 *
 * @since 0.1.0
 */
export class SecretsError extends Data.TaggedError("SecretsError")<{
  readonly reason: string
  readonly secret?: string | undefined
  readonly cause?: unknown
}> {
  override get message() {
    return this.secret === undefined ? this.reason : `${this.reason} (secret "${this.secret}")`
  }
}

/**
 * A ciphertext could not be opened: unknown key id, malformed envelope, or failed authentication
 * (wrong key, tampered data or wrong associated data).
 *
 * @since 0.1.0
 */
export class DecryptionError extends Data.TaggedError("DecryptionError")<{
  readonly reason: string
  readonly keyId?: string | undefined
}> {
  override get message() {
    return this.keyId === undefined ? this.reason : `${this.reason} (key ${this.keyId})`
  }
}

/**
 * A plaintext could not be sealed: no associated data, or the data key's message count could not
 * be recorded.
 *
 * @since 0.1.0
 */
export class EncryptionError extends Data.TaggedError("EncryptionError")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return this.reason
  }
}

/**
 * Certificates could not be issued, read or validated.
 *
 * @since 0.1.0
 */
export class CertificateError extends Data.TaggedError("CertificateError")<{
  readonly reason: string
  readonly path?: string | undefined
  readonly cause?: unknown
}> {
  override get message() {
    return this.path === undefined ? this.reason : `${this.reason} (${this.path})`
  }
}

/**
 * A caller could not be authenticated.
 *
 * @since 0.1.0
 */
export class Unauthenticated extends Data.TaggedError("Unauthenticated")<{
  readonly reason: string
}> {
  override get message() {
    return `unauthenticated: ${this.reason}`
  }
}

/**
 * An authenticated principal lacks a permission.
 *
 * @since 0.1.0
 */
export class Forbidden extends Data.TaggedError("Forbidden")<{
  readonly principal: string
  readonly role: string
  readonly permission: string
}> {
  override get message() {
    return `forbidden: ${this.principal} (${this.role}) lacks ${this.permission}`
  }
}

/**
 * The settings are inconsistent (e.g. only some of the certificate paths are set).
 *
 * @since 0.1.0
 */
export class SecuritySettingsError extends Data.TaggedError("SecuritySettingsError")<{
  readonly reason: string
}> {
  override get message() {
    return this.reason
  }
}

/**
 * Any failure of building the security component.
 *
 * @since 0.1.0
 */
export type SecurityStartError = MasterKeyError | SecretsError | CertificateError | SecuritySettingsError
