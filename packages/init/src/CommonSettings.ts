/**
 * The leaf schemas every settings section uses: a duration (`"30s"`), a port and a byte count.
 * Written once here because every package that owns a section already depends on
 * `@novacron/init`, and `@novacron/config` (which composes the sections) does too; exported on
 * its own subpath (`@novacron/init/CommonSettings`) so a settings module loads no runtime.
 *
 * Each carries a `message` annotation saying what is allowed, which the configuration loader
 * puts in its issues.
 *
 * @since 0.2.0
 */
import { Duration as D, ParseResult, Schema } from "effect"

/**
 * The annotation that makes a leaf's issue say what is allowed (`expected an integer 1..1024`)
 * instead of Schema's own wording.
 *
 * @since 0.2.0
 * @category annotations
 */
export const allowed = (message: string) => ({ message: () => ({ message, override: true }) })

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/

/**
 * Writes a duration in the largest unit that is exact: `30s`, `5m`, `24h`, `1500ms`.
 *
 * @since 0.2.0
 * @category rendering
 */
export const renderDuration = (d: D.Duration): string => {
  const ms = D.toMillis(d)
  for (const [unit, size] of [
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}

/**
 * A duration written `500ms`, `30s`, `5m` or `1h`, decoded to an effect `Duration` and encoded
 * back in the largest exact unit.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Duration: Schema.Schema<D.Duration, string> = Schema.transformOrFail(
  Schema.String,
  Schema.DurationFromSelf,
  {
    strict: true,
    decode: (s, _, ast) => {
      const m = durationPattern.exec(s.trim())
      return m
        ? ParseResult.succeed(D.millis(Number(m[1]) * units[m[2]!]!))
        : ParseResult.fail(new ParseResult.Type(ast, s))
    },
    encode: (d) => ParseResult.succeed(renderDuration(d)),
  },
).annotations(allowed('expected a duration such as "500ms", "30s", "5m" or "1h"'))

/**
 * A {@link Duration} within `[min, max]` (`max` omitted: no upper bound).
 *
 * @since 0.2.0
 * @category schemas
 */
export const durationBetween = (min: D.DurationInput, max?: D.DurationInput) => {
  const lo = D.decode(min)
  const hi = max === undefined ? undefined : D.decode(max)
  const range =
    hi === undefined ? `of at least ${renderDuration(lo)}` : `between ${renderDuration(lo)} and ${renderDuration(hi)}`
  return Duration.pipe(
    Schema.filter((d) => D.greaterThanOrEqualTo(d, lo) && (hi === undefined || D.lessThanOrEqualTo(d, hi))),
  ).annotations(allowed(`expected a duration ${range}, such as "500ms", "30s", "5m" or "1h"`))
}

/**
 * A TCP/UDP port; 0 asks the system for any free port.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Port = Schema.Int.pipe(Schema.between(0, 65535)).annotations(
  allowed("expected a port 0..65535 (0 = any free port)"),
)

/**
 * A byte count within `[min, max]` (`max` omitted: no upper bound).
 *
 * @since 0.2.0
 * @category schemas
 */
export const bytes = (min: number, max?: number) =>
  (max === undefined
    ? Schema.Int.pipe(Schema.greaterThanOrEqualTo(min))
    : Schema.Int.pipe(Schema.between(min, max))
  ).annotations(allowed(max === undefined ? `expected a byte count >= ${min}` : `expected a byte count ${min}..${max}`))

/**
 * An integer within `[min, max]`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const int = (min: number, max: number) =>
  Schema.Int.pipe(Schema.between(min, max)).annotations(allowed(`expected an integer ${min}..${max}`))

/**
 * `true` or `false`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const bool = Schema.Boolean.annotations(allowed("expected true or false"))

/**
 * Any string.
 *
 * @since 0.2.0
 * @category schemas
 */
export const str = Schema.String.annotations(allowed("expected a string"))

/**
 * A non-empty string; `what` names it in the issue (`expected a non-empty path`).
 *
 * @since 0.2.0
 * @category schemas
 */
export const nonEmpty = (what = "string") => Schema.NonEmptyString.annotations(allowed(`expected a non-empty ${what}`))

/**
 * One of the given strings.
 *
 * @since 0.2.0
 * @category schemas
 */
export const oneOf = <const L extends ReadonlyArray<string>>(...values: L) =>
  Schema.Literal(...values).annotations(allowed(`expected one of ${values.map((v) => JSON.stringify(v)).join(", ")}`))

/**
 * A key that may be omitted, taking `value()` then.
 *
 * @since 0.2.0
 * @category fields
 */
export const withDefault = <S extends Schema.Schema.AnyNoContext>(schema: S, value: () => Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: value, exact: true })

/**
 * A nested section whose every key has a default, so the section itself may be omitted.
 *
 * @since 0.2.0
 * @category fields
 */
export const section = <S extends Schema.Schema.AnyNoContext>(schema: S) =>
  Schema.optionalWith(schema, { default: () => Schema.decodeUnknownSync(schema)({}), exact: true })
