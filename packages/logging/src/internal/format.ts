import { Cause, HashMap, List, type LogLevel, type LogSpan } from "effect"

export interface Entry {
  readonly logLevel: LogLevel.LogLevel
  readonly message: unknown
  readonly annotations: HashMap.HashMap<string, unknown>
  readonly spans: List.List<LogSpan.LogSpan>
  readonly cause: Cause.Cause<unknown>
  readonly date: Date
}

const text = (u: unknown): string =>
  typeof u === "string" ? u : u instanceof Error ? u.message : (JSON.stringify(u) ?? String(u))

export const messageOf = (message: unknown): string =>
  Array.isArray(message) ? message.map(text).join(" ") : text(message)

/** The fields the kernel annotates come first, in this order, then the other annotations. */
const leading = ["component", "name", "duration", "dependencies"] as const

export const record = (entry: Entry): Record<string, unknown> => {
  const annotations = Object.fromEntries(HashMap.toEntries(entry.annotations))
  const out: Record<string, unknown> = {
    timestamp: entry.date.toISOString(),
    level: entry.logLevel.label.toLowerCase(),
  }
  if ("component" in annotations) out.component = annotations.component
  out.message = messageOf(entry.message)
  for (const key of leading.slice(1)) if (key in annotations) out[key] = annotations[key]
  for (const [k, v] of Object.entries(annotations)) if (!(k in out)) out[k] = v
  const now = entry.date.getTime()
  for (const span of List.toArray(entry.spans)) out[`span.${span.label}`] = now - span.startTime
  if (!Cause.isEmpty(entry.cause)) out.cause = Cause.pretty(entry.cause)
  return out
}

export const json = (entry: Entry): string =>
  JSON.stringify(record(entry), (_, v) => (typeof v === "bigint" ? v.toString() : v))

const colours: Record<string, string> = {
  debug: "\x1b[90m",
  info: "\x1b[36m",
  warn: "\x1b[33m",
  error: "\x1b[31m",
  fatal: "\x1b[35m",
}

export const pretty = (entry: Entry, colour: boolean): string => {
  const { timestamp, level, component, message, cause, ...rest } = record(entry)
  const lvl = String(level).toUpperCase().padEnd(5)
  const paint = (s: string) => (colour ? `${colours[String(level)] ?? ""}${s}\x1b[0m` : s)
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ")
  const head = `${String(timestamp).slice(11, 23)} ${paint(lvl)} ${component === undefined ? "" : `[${String(component)}] `}${String(message)}`
  return `${head}${fields === "" ? "" : `  ${colour ? `\x1b[2m${fields}\x1b[0m` : fields}`}${cause === undefined ? "" : `\n${String(cause)}`}`
}
