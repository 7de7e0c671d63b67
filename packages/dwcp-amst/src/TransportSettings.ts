/**
 * Settings of the `dwcp.transport` section, as decoded from the node's configuration file
 * (snake_case names). This package owns the section: `@novacron/config` composes it (subpath
 * `@novacron/dwcp-amst/TransportSettings`).
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Schema } from "effect"

// Each leaf says what is allowed: the configuration loader prints it next to the key and its source.
const allowed = (message: string) => ({ message: () => ({ message, override: true }) })
const int = (min: number, max: number) =>
  Schema.Int.pipe(Schema.between(min, max)).annotations(allowed(`expected an integer ${min}..${max}`))
const oneOf = <const L extends ReadonlyArray<string>>(...values: L) =>
  Schema.Literal(...values).annotations(allowed(`expected one of ${values.map((v) => JSON.stringify(v)).join(", ")}`))
const opt = <S extends Schema.Schema.AnyNoContext>(schema: S, value: () => Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: value, exact: true })

/**
 * `dwcp.transport`. `min_streams`..`max_streams` bound the stream-count controller; `chunk_size`
 * is the striping unit (default 256 KiB: a chunk waits for its whole stream, so a large one on a
 * slow stream holds the receiver's in-order credit back for everyone; see the README's benchmark).
 *
 * @since 0.1.0
 */
export const TransportSettings = Schema.Struct({
  min_streams: opt(int(1, 256), () => 4),
  max_streams: opt(int(1, 256), () => 256),
  initial_streams: opt(int(1, 256), () => 8),
  congestion_algorithm: opt(oneOf("auto", "bbr", "cubic", "dctcp", "reno"), () => "auto" as const),
  enable_rdma: opt(Schema.Boolean.annotations(allowed("expected true or false")), () => true),
  chunk_size: opt(Common.bytes(4096, 16 * 1024 * 1024), () => 262144),
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
