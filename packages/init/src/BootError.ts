/**
 * Why a boot or a shutdown did not complete.
 *
 * @since 0.1.0
 */
import { Data } from "effect"
import type { Phase } from "./Component.js"

/**
 * How long a finished component took, for timeout messages.
 *
 * @since 0.1.0
 */
export interface Timing {
  readonly name: string
  readonly millis: number
}

const timings = (finished: ReadonlyArray<Timing>): string =>
  finished.length === 0 ? "none" : finished.map((f) => `${f.name} ${f.millis.toFixed(1)} ms`).join(", ")

/**
 * A CRITICAL component failed (after its retries, if it had any): boot halted and rolled back.
 *
 * @since 0.1.0
 */
export class ComponentFailed extends Data.TaggedError("ComponentFailed")<{
  readonly component: string
  readonly phase: Phase
  readonly attempts: number
  /** The cause, rendered. */
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `CRITICAL component "${this.component}" (${this.phase}) failed after ${this.attempts} attempt(s): ${this.reason}`
  }
}

/**
 * A phase did not finish within its timeout.
 *
 * @since 0.1.0
 */
export class PhaseTimeout extends Data.TaggedError("PhaseTimeout")<{
  readonly phase: Phase
  readonly timeoutMillis: number
  /** Components still starting (or waiting) when time ran out. */
  readonly stuck: ReadonlyArray<string>
  readonly finished: ReadonlyArray<Timing>
}> {
  override get message(): string {
    return `phase ${this.phase} timed out after ${this.timeoutMillis} ms; stuck: ${this.stuck.join(", ") || "none"}; finished: ${timings(this.finished)}`
  }
}

/**
 * Shutdown did not finish within its deadline.
 *
 * @since 0.1.0
 */
export class ShutdownTimeout extends Data.TaggedError("ShutdownTimeout")<{
  readonly timeoutMillis: number
  /** The component whose shutdown was running when time ran out. */
  readonly stuck: string | undefined
  /** Components not shut down at all. */
  readonly abandoned: ReadonlyArray<string>
  readonly finished: ReadonlyArray<Timing>
}> {
  override get message(): string {
    return `shutdown timed out after ${this.timeoutMillis} ms while stopping ${this.stuck ?? "nothing"}; not stopped: ${this.abandoned.join(", ") || "none"}; finished: ${timings(this.finished)}`
  }
}
