/**
 * Secrets encrypted at rest (AES-256-GCM) in `<data_dir>/secrets.json` under a key derived from
 * the master key. Each ciphertext is bound to its secret's name and to the store's generation
 * (associated data), so entries cannot be swapped or mixed with those of an older file, and an
 * older file as a whole is refused; messages per key are counted against the AES-GCM limit. Rotating the master key re-encrypts every secret and is atomic:
 * a crash leaves either the old key and store or the new ones.
 *
 * @since 0.1.0
 */
import { Context, type Effect, Layer, type Option } from "effect"
import * as internal from "./internal/secrets.js"
import type { MasterKeySource } from "./MasterKey.js"
import type { MasterKeyError, SecretsError } from "./SecurityError.js"
import type { NodeInfo, SecuritySettings } from "./SecuritySettings.js"

/**
 * What a master key rotation did.
 *
 * @since 0.1.0
 */
export interface RotationResult {
  readonly previousKeyId: string
  readonly keyId: string
  /** Number of secrets re-encrypted. */
  readonly reencrypted: number
}

/**
 * The secrets manager.
 *
 * @since 0.1.0
 */
export interface SecretsManager {
  readonly get: (name: string) => Effect.Effect<Option.Option<Buffer>, SecretsError>
  readonly getString: (name: string) => Effect.Effect<Option.Option<string>, SecretsError>
  /** Stores (or replaces) a secret durably before returning. */
  readonly set: (name: string, value: string | Uint8Array) => Effect.Effect<void, SecretsError>
  /** Deletes a secret; `false` when there was none. */
  readonly remove: (name: string) => Effect.Effect<boolean, SecretsError>
  readonly names: Effect.Effect<ReadonlyArray<string>>
  readonly masterKeyId: Effect.Effect<string>
  readonly masterKeySource: Effect.Effect<MasterKeySource>
  /**
   * Replaces the master key (a fresh random one unless given) and re-encrypts every secret.
   * With the key in the environment, the new key must be given and the variable updated afterwards.
   */
  readonly rotateMasterKey: (newKey?: Uint8Array) => Effect.Effect<RotationResult, SecretsError | MasterKeyError>
}

/**
 * The service tag.
 *
 * @since 0.1.0
 */
export const SecretsManager = Context.GenericTag<SecretsManager>("@novacron/security/SecretsManager")

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 */
export interface Options {
  /** AES-GCM messages allowed under one derived key before writes are refused; default 2^32. */
  readonly maxMessagesPerKey?: number | undefined
}

/**
 * Opens the store, loading (or on first start creating) the master key and finishing or discarding
 * a rotation that a crash interrupted. Fails when the store is older than the last generation
 * written (`<data_dir>/secrets.generation`): an old `secrets.json` is not taken back silently.
 *
 * @since 0.1.0
 */
export const make: (
  settings: SecuritySettings,
  node: NodeInfo,
  options?: Options,
) => Effect.Effect<SecretsManager, SecretsError | MasterKeyError> = internal.make

/**
 * A layer of the secrets manager alone.
 *
 * @since 0.1.0
 */
export const layer = (
  settings: SecuritySettings,
  node: NodeInfo,
): Layer.Layer<SecretsManager, SecretsError | MasterKeyError> => Layer.effect(SecretsManager, make(settings, node))

/**
 * Path of the store file.
 *
 * @since 0.1.0
 */
export const storePath: (node: NodeInfo) => string = internal.storePath
