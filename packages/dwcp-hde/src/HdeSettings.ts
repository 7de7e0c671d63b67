/**
 * Settings of the `dwcp.compression` section, with the contract's field names and defaults. This
 * package owns it: `@novacron/config` composes it (subpath `@novacron/dwcp-hde/HdeSettings`).
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Effect, type ParseResult, Schema } from "effect"

const MiB = 1024 * 1024

// Each leaf says what is allowed: the configuration loader prints it next to the key and its source.
const allowed = (message: string) => ({ message: () => ({ message, override: true }) })
const int = (min: number, max: number) =>
  Schema.Int.pipe(Schema.between(min, max)).annotations(allowed(`expected an integer ${min}..${max}`))
const bool = Schema.Boolean.annotations(allowed("expected true or false"))
const oneOf = <const L extends ReadonlyArray<string>>(...values: L) =>
  Schema.Literal(...values).annotations(allowed(`expected one of ${values.map((v) => JSON.stringify(v)).join(", ")}`))
const opt = <S extends Schema.Schema.AnyNoContext>(schema: S, value: () => Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: value, exact: true })

/**
 * `dwcp.compression`. `level` is the zstd level (0..22, as the design's table gives it; 0 is zstd's
 * own default, 3) for `algorithm: "zstd"` and the upper
 * bound adaptive mode may also consider; for `"lz4"` it must be 0..12 and is accepted for
 * compatibility only (lz4-napi has a single fast mode). `workers: 0` means one worker per core.
 *
 * @since 0.1.0
 */
export const CompressionSettings = Schema.Struct({
  algorithm: opt(oneOf("adaptive", "zstd", "lz4", "none"), () => "adaptive" as const),
  level: opt(int(0, 22), () => 3),
  enable_delta: opt(bool, () => true),
  delta_cache_size: opt(Common.bytes(0), () => 268435456),
  chunk_size: opt(Common.bytes(4096, 64 * MiB), () => 1048576),
  workers: opt(int(0, 256), () => 0),
}).pipe(
  Schema.filter((s) => s.algorithm !== "lz4" || s.level <= 12 || "lz4 level must be within 0..12"),
  Schema.annotations({ identifier: "CompressionSettings" }),
)

/**
 * @since 0.1.0
 */
export type CompressionSettings = typeof CompressionSettings.Type

/**
 * The level the codecs get: `level`, or zstd's own default (3) for `0`, as zstd reads it.
 *
 * @since 0.2.0
 */
export const effectiveLevel = (settings: Pick<CompressionSettings, "level">): number =>
  settings.level === 0 ? 3 : settings.level

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
