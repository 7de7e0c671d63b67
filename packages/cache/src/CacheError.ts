/**
 * Typed failures of the cache. Only acquisition fails: once built, the cache serves from memory
 * when Redis is unreachable instead of failing callers.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * Redis could not be reached when a connected start was required.
 *
 * @since 0.1.0
 */
export class RedisUnavailable extends Data.TaggedError("RedisUnavailable")<{
  readonly url: string
  readonly cause: unknown
}> {
  override get message(): string {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `cache: redis at ${redact(this.url)} unreachable: ${cause}`
  }
}

const redact = (url: string) => url.replace(/\/\/[^@/]*@/, "//***@")
