/**
 * The trace context a frame carries to another node: the W3C `traceparent` text
 * (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`), the one format every NovaCron protocol
 * uses for it, so one operation over two nodes is one trace.
 *
 * @since 0.2.0
 */
import { Effect, Option, Tracer } from "effect"

/**
 * What a `traceparent` names.
 *
 * @since 0.2.0
 * @category models
 */
export interface SpanContext {
  readonly traceId: string
  readonly spanId: string
  readonly sampled: boolean
}

/**
 * Longest `traceparent` accepted (version 00 is exactly 55 characters).
 *
 * @since 0.2.0
 * @category constants
 */
export const MAX_LENGTH = 55

/**
 * @since 0.2.0
 * @category encoding
 */
export const format = (span: SpanContext): string => `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`

const shape = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/**
 * The span a peer's `traceparent` names; none when absent, not a string, malformed, or all-zero
 * ids. A bad value never fails a request: the receiver starts a new trace.
 *
 * @since 0.2.0
 * @category decoding
 */
export const parse = (value: unknown): Option.Option<SpanContext> => {
  if (typeof value !== "string" || value.length !== MAX_LENGTH) return Option.none()
  const m = shape.exec(value)
  if (m === null || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return Option.none()
  return Option.some({ traceId: m[1]!, spanId: m[2]!, sampled: (Number.parseInt(m[3]!, 16) & 1) === 1 })
}

/**
 * The `traceparent` of the current span; none outside a span.
 *
 * @since 0.2.0
 * @category encoding
 */
export const current: Effect.Effect<Option.Option<string>> = Effect.map(Effect.option(Effect.currentSpan), (span) =>
  Option.map(span, format),
)

/**
 * Runs `effect` as a child of the span `value` names (unchanged when it names none).
 *
 * @since 0.2.0
 * @category decoding
 */
export const continueFrom =
  (value: unknown) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Option.match(parse(value), {
      onNone: () => effect,
      onSome: (parent) => Effect.withParentSpan(effect, Tracer.externalSpan(parent)),
    })
