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

const allowed = (message: string) => ({ message: () => ({ message, override: true }) })

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
