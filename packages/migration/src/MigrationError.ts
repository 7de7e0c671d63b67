/**
 * What can make a live migration fail, each a distinct tag naming the VM. After any of them exactly
 * one copy of the VM runs: the source's (unless the destination already took the term).
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * The destination could not be reached or refused us (TLS, identity, no endpoint).
 *
 * @since 0.1.0
 * @category errors
 */
export class MigrationPeerUnreachable extends Data.TaggedError("MigrationPeerUnreachable")<{
  readonly vm: string
  readonly peer: string
  readonly detail: string
}> {
  override get message() {
    return `migration of ${this.vm} to ${this.peer}: peer unreachable: ${this.detail}`
  }
}

/**
 * The destination agent could not prepare (QEMU did not start, capacity, VM already there...).
 *
 * @since 0.1.0
 * @category errors
 */
export class MigrationRejected extends Data.TaggedError("MigrationRejected")<{
  readonly vm: string
  readonly peer: string
  readonly detail: string
}> {
  override get message() {
    return `migration of ${this.vm} to ${this.peer}: destination refused: ${this.detail}`
  }
}

/**
 * QEMU reported the migration failed, or a QEMU/QMP step failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class MigrationFailed extends Data.TaggedError("MigrationFailed")<{
  readonly vm: string
  readonly phase: string
  readonly detail: string
}> {
  override get message() {
    return `migration of ${this.vm} failed during ${this.phase}: ${this.detail}`
  }
}

/**
 * The completion timeout (per GiB) or the no-progress timeout fired; the migration was cancelled.
 *
 * @since 0.1.0
 * @category errors
 */
export class MigrationTimeout extends Data.TaggedError("MigrationTimeout")<{
  readonly vm: string
  readonly kind: "completion" | "progress"
  readonly afterMs: number
}> {
  override get message() {
    return this.kind === "completion"
      ? `migration of ${this.vm}: not complete after ${this.afterMs} ms (completion timeout)`
      : `migration of ${this.vm}: no progress for ${this.afterMs} ms (progress timeout)`
  }
}

/**
 * The migration was cancelled on request; the VM keeps running on the source.
 *
 * @since 0.1.0
 * @category errors
 */
export class MigrationCancelled extends Data.TaggedError("MigrationCancelled")<{ readonly vm: string }> {
  override get message() {
    return `migration of ${this.vm}: cancelled; the VM keeps running on the source`
  }
}

/**
 * The VM cannot be migrated from here (not defined, not running, not attached, already migrating).
 *
 * @since 0.1.0
 * @category errors
 */
export class MigrationInvalid extends Data.TaggedError("MigrationInvalid")<{
  readonly vm: string
  readonly detail: string
}> {
  override get message() {
    return `migration of ${this.vm}: ${this.detail}`
  }
}

/**
 * Any migration failure.
 *
 * @since 0.1.0
 * @category errors
 */
export type MigrationError =
  | MigrationPeerUnreachable
  | MigrationRejected
  | MigrationFailed
  | MigrationTimeout
  | MigrationCancelled
  | MigrationInvalid
