/**
 * Typed failures of forming a cluster. Each names what failed and where (a file, an address, a
 * token id) so the CLI can print `error.message` as it is.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

const at = (reason: string, where: string | undefined) => (where === undefined ? reason : `${reason} (${where})`)

/**
 * A cluster file (`<data_dir>/tls/*`, `<data_dir>/cluster/*`) could not be read, written or understood.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClusterStateError extends Data.TaggedError("ClusterStateError")<{
  readonly reason: string
  readonly path?: string | undefined
  readonly cause?: unknown
}> {
  override get message() {
    return at(this.reason, this.path)
  }
}

/**
 * The cluster CA is missing or unusable here (e.g. a joined node has the CA certificate but not its key).
 *
 * @since 0.1.0
 * @category errors
 */
export class ClusterCaError extends Data.TaggedError("ClusterCaError")<{
  readonly reason: string
  readonly path?: string | undefined
  readonly cause?: unknown
}> {
  override get message() {
    return at(this.reason, this.path)
  }
}

/**
 * A join token string could not be decoded.
 *
 * @since 0.1.0
 * @category errors
 */
export class TokenFormatError extends Data.TaggedError("TokenFormatError")<{
  readonly reason: string
}> {
  override get message() {
    return `invalid join token: ${this.reason}`
  }
}

/**
 * No token with this id is stored on this node.
 *
 * @since 0.1.0
 * @category errors
 */
export class TokenNotFound extends Data.TaggedError("TokenNotFound")<{
  readonly id: string
  readonly path: string
}> {
  override get message() {
    return `no join token "${this.id}" (${this.path})`
  }
}

/**
 * The join server could not listen.
 *
 * @since 0.1.0
 * @category errors
 */
export class JoinServerError extends Data.TaggedError("JoinServerError")<{
  readonly reason: string
  readonly address: string
  readonly cause?: unknown
}> {
  override get message() {
    return `join server on ${this.address}: ${this.reason}`
  }
}

/**
 * The server's CA is not the one the token pins: someone else answered at the join address.
 *
 * @since 0.1.0
 * @category errors
 */
export class FingerprintMismatch extends Data.TaggedError("FingerprintMismatch")<{
  readonly address: string
  readonly expected: string
  readonly actual: string
}> {
  override get message() {
    return `the server at ${this.address} presented CA sha256:${this.actual}, but the token pins sha256:${this.expected}; refusing to join`
  }
}

/**
 * The join server answered with a refusal (bad, expired, revoked or used-up token, too large, rate limited…).
 *
 * @since 0.1.0
 * @category errors
 */
export class JoinRefused extends Data.TaggedError("JoinRefused")<{
  readonly address: string
  readonly status: number
  readonly reason: string
}> {
  override get message() {
    return `join refused by ${this.address} (HTTP ${this.status}): ${this.reason}`
  }
}

/**
 * The join server could not be reached, timed out, or answered something that is not a join response.
 *
 * @since 0.1.0
 * @category errors
 */
export class JoinTransportError extends Data.TaggedError("JoinTransportError")<{
  readonly address: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `join via ${this.address}: ${this.reason}`
  }
}

/**
 * The data directory already holds TLS material of another CA; joining would silently replace it.
 *
 * @since 0.1.0
 * @category errors
 */
export class DataDirInUse extends Data.TaggedError("DataDirInUse")<{
  readonly path: string
  readonly reason: string
}> {
  override get message() {
    return `${this.reason} (${this.path})`
  }
}

/**
 * The `cluster` settings (or the node settings they depend on) cannot work as given.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClusterSettingsError extends Data.TaggedError("ClusterSettingsError")<{
  readonly reason: string
}> {
  override get message() {
    return this.reason
  }
}

/**
 * Any failure of the cluster commands.
 *
 * @since 0.1.0
 * @category errors
 */
export type ClusterError =
  | ClusterStateError
  | ClusterCaError
  | TokenFormatError
  | TokenNotFound
  | JoinServerError
  | FingerprintMismatch
  | JoinRefused
  | JoinTransportError
  | DataDirInUse
  | ClusterSettingsError
