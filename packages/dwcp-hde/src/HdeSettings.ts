/**
 * Settings of the `dwcp.compression` section, with the contract's field names and defaults.
 *
 * @since 0.1.0
 */
import { Effect, type ParseResult, Schema } from "effect"

const MiB = 1024 * 1024

/**
 * `dwcp.compression`. `level` is the zstd level (1..22) for `algorithm: "zstd"` and the upper
 * bound adaptive mode may also consider; for `"lz4"` it must be 1..12 and is accepted for
 * compatibility only (lz4-napi has a single fast mode). `workers: 0` means one worker per core.
 *
 * @since 0.1.0
 */
export const CompressionSettings = Schema.Struct({
  algorithm: Schema.optionalWith(Schema.Literal("adaptive", "zstd", "lz4", "none"), {
    default: () => "adaptive" as const,
  }),
  level: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 22)), { default: () => 3 }),
  enable_delta: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  delta_cache_size: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 268435456 }),
  chunk_size: Schema.optionalWith(Schema.Int.pipe(Schema.between(4096, 64 * MiB)), { default: () => 1048576 }),
  workers: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 256)), { default: () => 0 }),
}).pipe(
  Schema.filter((s) => s.algorithm !== "lz4" || s.level <= 12 || "lz4 level must be within 1..12"),
  Schema.annotations({ identifier: "CompressionSettings" }),
)

/**
 * @since 0.1.0
 */
export type CompressionSettings = typeof CompressionSettings.Type

/**
 * Decodes the section as written in a settings file (missing fields take their defaults).
 *
 * @since 0.1.0
 */
export const decode = (input: unknown): Effect.Effect<CompressionSettings, ParseResult.ParseError> =>
  Schema.decodeUnknown(CompressionSettings)(input)

/**
 * All defaults.
 *
 * @since 0.1.0
 */
export const defaults: CompressionSettings = Effect.runSync(decode({}))
