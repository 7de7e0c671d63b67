/**
 * Renders Effect metrics (`Metric.snapshot`) in the Prometheus text exposition format 0.0.4, so a
 * host can serve `/metrics` from the same metrics the components update.
 *
 * @since 0.1.0
 */

import type { MetricPair } from "effect"
import { Effect, Metric, MetricState, Option } from "effect"

/**
 * Content type of the text format.
 *
 * @since 0.1.0
 */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

const sanitizeName = (name: string): string => name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/^([0-9])/, "_$1")
const escapeLabel = (value: string): string => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')
const escapeHelp = (value: string): string => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
const num = (v: number | bigint): string =>
  typeof v === "bigint"
    ? v.toString()
    : Number.isNaN(v)
      ? "NaN"
      : v === Infinity
        ? "+Inf"
        : v === -Infinity
          ? "-Inf"
          : String(v)

const labels = (pairs: ReadonlyArray<readonly [string, string]>): string =>
  pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${sanitizeName(k)}="${escapeLabel(v)}"`).join(",")}}`

/**
 * Renders metric pairs as Prometheus text: one `# HELP`/`# TYPE` block per metric name, then its samples.
 *
 * @since 0.1.0
 */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, { type: string; help?: string | undefined; lines: Array<string> }>()
  const family = (name: string, type: string, help: Option.Option<string>) => {
    let f = families.get(name)
    if (f === undefined) {
      f = { type, help: Option.getOrUndefined(help), lines: [] }
      families.set(name, f)
    }
    return f
  }
  for (const pair of pairs) {
    const key = pair.metricKey
    const name = sanitizeName(key.name)
    const tags = key.tags.map((t) => [t.key, t.value] as const)
    const state = pair.metricState
    if (MetricState.isCounterState(state)) {
      family(name, "counter", key.description).lines.push(`${name}${labels(tags)} ${num(state.count)}`)
    } else if (MetricState.isGaugeState(state)) {
      family(name, "gauge", key.description).lines.push(`${name}${labels(tags)} ${num(state.value)}`)
    } else if (MetricState.isHistogramState(state)) {
      const f = family(name, "histogram", key.description)
      for (const [bound, count] of state.buckets)
        f.lines.push(`${name}_bucket${labels([...tags, ["le", num(bound)]])} ${count}`)
      if (!state.buckets.some(([b]) => b === Infinity))
        f.lines.push(`${name}_bucket${labels([...tags, ["le", "+Inf"]])} ${state.count}`)
      f.lines.push(`${name}_sum${labels(tags)} ${num(state.sum)}`, `${name}_count${labels(tags)} ${state.count}`)
    } else if (MetricState.isSummaryState(state)) {
      const f = family(name, "summary", key.description)
      for (const [q, v] of state.quantiles)
        f.lines.push(
          `${name}${labels([...tags, ["quantile", String(q)]])} ${Option.match(v, { onNone: () => "NaN", onSome: num })}`,
        )
      f.lines.push(`${name}_sum${labels(tags)} ${num(state.sum)}`, `${name}_count${labels(tags)} ${state.count}`)
    } else if (MetricState.isFrequencyState(state)) {
      const f = family(name, "counter", key.description)
      for (const [value, count] of state.occurrences)
        f.lines.push(`${name}${labels([...tags, ["value", value]])} ${count}`)
    }
  }
  const out: Array<string> = []
  for (const [name, f] of [...families].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (f.help !== undefined) out.push(`# HELP ${name} ${escapeHelp(f.help)}`)
    out.push(`# TYPE ${name} ${f.type}`, ...f.lines)
  }
  return out.length === 0 ? "" : `${out.join("\n")}\n`
}

/**
 * The current value of every metric in Effect's registry, as Prometheus text.
 *
 * @since 0.1.0
 */
export const snapshot: Effect.Effect<string> = Effect.map(Metric.snapshot, render)
