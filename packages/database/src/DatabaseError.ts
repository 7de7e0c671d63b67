/**
 * Typed failures of the database component.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * A store operation failed (connection refused, SQL error, Redis error, ...).
 *
 * @since 0.1.0
 */
export class DatabaseError extends Data.TaggedError("DatabaseError")<{
  readonly backend: string
  readonly operation: string
  readonly cause: unknown
}> {
  override get message(): string {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `${this.backend}: ${this.operation} failed: ${cause}`
  }
}

/**
 * The recorded migrations do not match this build's: an applied migration was edited, or the
 * database holds migrations this build does not know. Boot must stop; nothing was applied.
 *
 * @since 0.1.0
 */
export class MigrationError extends Data.TaggedError("MigrationError")<{
  readonly reason: "checksum-mismatch" | "unknown-applied" | "out-of-order" | "invalid-list"
  readonly version: number
  readonly detail: string
}> {
  override get message(): string {
    return this.detail
  }
}
