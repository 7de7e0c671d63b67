/**
 * The typed failures of the state API. Each names the key (or election) it is about.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * The store cannot be reached (no etcd member answers, no quorum, local database failing).
 * Nothing was applied.
 *
 * @since 0.1.0
 * @category errors
 */
export class StateUnavailable extends Data.TaggedError("StateUnavailable")<{
  readonly operation: string
  readonly key: string
  readonly message: string
}> {}

/**
 * A call hit its deadline, or its connection dropped after it was sent. For a write the outcome
 * is unknown: it may or may not have been applied (a later read tells).
 *
 * @since 0.1.0
 * @category errors
 */
export class StateTimeout extends Data.TaggedError("StateTimeout")<{
  readonly operation: string
  readonly key: string
  readonly message: string
}> {}

/**
 * `compareAndSet` (or a delete with an expected revision) found another revision.
 * `actual` is 0 when the key is absent.
 *
 * @since 0.1.0
 * @category errors
 */
export class CompareFailed extends Data.TaggedError("CompareFailed")<{
  readonly key: string
  readonly expected: number
  readonly actual: number
}> {
  override get message() {
    return `${this.key}: expected revision ${this.expected}, found ${this.actual}`
  }
}

/**
 * A write made as leader was refused: the leadership ended (its lease lapsed or was revoked, or
 * another candidate holds the election). Nothing was applied.
 *
 * @since 0.1.0
 * @category errors
 */
export class Deposed extends Data.TaggedError("Deposed")<{
  readonly election: string
  readonly token: number
  readonly key: string
}> {
  override get message() {
    return `${this.key}: not leader of ${this.election} any more (token ${this.token})`
  }
}

/**
 * A stored value does not decode with the keyspace's schema.
 *
 * @since 0.1.0
 * @category errors
 */
export class DecodeError extends Data.TaggedError("StateDecodeError")<{
  readonly key: string
  readonly revision: number
  readonly message: string
}> {}

/**
 * A lease could not be granted or was lost (its TTL lapsed without keepalive acknowledged).
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseLost extends Data.TaggedError("LeaseLost")<{
  readonly lease: string
  readonly message: string
}> {}

/**
 * The operation needs linearizability (compare-and-set, leases, elections) and the store's mode
 * does not offer it: gossip mode is eventually consistent. Nothing was applied.
 *
 * @since 0.3.0
 * @category errors
 */
export class NotLinearizable extends Data.TaggedError("NotLinearizable")<{
  readonly operation: string
  readonly key: string
  readonly mode: string
}> {
  override get message() {
    return `${this.operation} ${this.key}: ${this.mode} mode does not offer linearizable operations (use raft mode, etcd)`
  }
}

/**
 * Gossip mode is single-writer per key: a node writes only keys it owns (`<space>/<node id>[/...]`).
 * Nothing was applied.
 *
 * @since 0.3.0
 * @category errors
 */
export class NotOwner extends Data.TaggedError("NotOwner")<{
  readonly key: string
  /** The node that owns the key; empty when no node does. */
  readonly owner: string
  readonly node: string
}> {
  override get message() {
    return this.owner === ""
      ? `${this.key}: no node owns this key (gossip mode keys are <space>/<node id>[/...])`
      : `${this.key}: owned by ${this.owner}, not by ${this.node} (gossip mode is single-writer per key)`
  }
}

/**
 * Every failure of a store call.
 *
 * @since 0.1.0
 * @category errors
 */
export type StateError = StateUnavailable | StateTimeout | NotLinearizable

/**
 * Failures of a write.
 *
 * @since 0.1.0
 * @category errors
 */
export type WriteError = StateError | Deposed | NotOwner
