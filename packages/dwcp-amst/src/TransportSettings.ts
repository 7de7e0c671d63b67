/**
 * Settings of the `dwcp.transport` section, as decoded from the node's configuration file
 * (snake_case names and defaults shared with `@novacron/config`).
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * `dwcp.transport`. `min_streams`..`max_streams` bound the stream-count controller; `chunk_size`
 * is the striping unit (default 256 KiB: a chunk waits for its whole stream, so a large one on a
 * slow stream holds the receiver's in-order credit back for everyone; see the README's benchmark).
 *
 * @since 0.1.0
 */
export const TransportSettings = Schema.Struct({
  min_streams: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 256)), { default: () => 4 }),
  max_streams: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 256)), { default: () => 256 }),
  initial_streams: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 256)), { default: () => 8 }),
  congestion_algorithm: Schema.optionalWith(Schema.Literal("auto", "bbr", "cubic", "dctcp", "reno"), {
    default: () => "auto" as const,
  }),
  enable_rdma: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  chunk_size: Schema.optionalWith(Schema.Int.pipe(Schema.between(4096, 16 * 1024 * 1024)), {
    default: () => 262144,
  }),
}).pipe(
  Schema.filter((s) =>
    s.min_streams <= s.max_streams
      ? undefined
      : `min_streams (${s.min_streams}) exceeds max_streams (${s.max_streams})`,
  ),
)

/**
 * @since 0.1.0
 */
export type TransportSettings = typeof TransportSettings.Type

/**
 * Decodes settings from their file form (unknown input); defaults fill what is missing.
 *
 * @since 0.1.0
 */
export const decode = Schema.decodeUnknown(TransportSettings)

/**
 * The defaults.
 *
 * @since 0.1.0
 */
export const defaults: TransportSettings = Schema.decodeUnknownSync(TransportSettings)({})

/**
 * Clamps `n` into `[min_streams, max_streams]`.
 *
 * @since 0.1.0
 */
export const clampStreams = (s: TransportSettings, n: number): number =>
  Math.max(s.min_streams, Math.min(s.max_streams, Math.round(n)))
