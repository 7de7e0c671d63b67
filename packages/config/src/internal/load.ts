import { accessSync, constants, readFileSync } from "node:fs"
import { basename } from "node:path"
import { Duration, Effect, Either, ParseResult, Schema } from "effect"
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, parse as parseYaml } from "yaml"
import type { Note } from "../Config.js"
import { ConfigError, type ConfigIssue } from "../ConfigError.js"
import type { Override } from "../Env.js"
import { Origin } from "../Origin.js"
import { redact, redactAt } from "../Redact.js"
import * as S from "../Settings.js"
import { aliases, message, notes } from "./aliases.js"
import { at, type Shape, shapeOf, suggest, withLeaf } from "./shape.js"

type Raw = Record<string, unknown>

export interface Loaded {
  readonly settings: S.Settings
  readonly encoded: S.Encoded
  readonly provenance: ReadonlyMap<string, Origin>
  readonly file: string | undefined
  readonly notes: ReadonlyArray<Note>
}

// The schema's keys and the design's names for some of them (see aliases.ts).
const shape = aliases.reduce((s, a) => withLeaf(s, a.path.split("."), shapeOf(a.schema.ast)), shapeOf(S.Settings.ast))
// Computed once: the defaults never change within a process (node_id is the host name).
const encodedDefaults = Schema.encodeSync(S.Settings)(S.defaults())

const join = (base: string, key: string | number): string =>
  typeof key === "number" ? `${base}[${key}]` : base === "" ? key : `${base}.${key}`

const isObject = (u: unknown): u is Raw => u !== null && typeof u === "object" && !Array.isArray(u)

const segmentsOf = (path: string): Array<string | number> =>
  path
    .split(/\.|(?=\[)/)
    .filter((s) => s !== "")
    .map((s) => (s.startsWith("[") ? Number(s.slice(1, -1)) : s))

const getAt = (raw: unknown, path: string): { found: boolean; value?: unknown } => {
  let cur: unknown = raw
  for (const seg of segmentsOf(path)) {
    if (cur === null || typeof cur !== "object" || !(seg in (cur as object))) return { found: false }
    cur = (cur as Record<string | number, unknown>)[seg]
  }
  return { found: true, value: cur }
}

/** Values set explicitly (leaves, and arrays as a whole) and the positions of every file node. */
class Tree {
  raw: Raw = {}
  readonly origins = new Map<string, Origin>()
  readonly positions = new Map<string, Origin>()
  readonly issues: Array<ConfigIssue> = []
  /** Keys written from a design name: their issues and notes name the key the operator wrote. */
  readonly writtenAs = new Map<string, string>()

  /** The source of `path`: the nearest explicitly set ancestor, else the nearest file node. */
  originOf(path: string): Origin {
    let p = path
    while (p !== "") {
      const o = this.origins.get(p) ?? this.positions.get(p)
      if (o) return o
      const cut = p.search(/(\.[^.[]*|\[\d+\])$/)
      p = cut > 0 ? p.slice(0, cut) : ""
    }
    return Origin.Default()
  }

  issue(kind: ConfigIssue["kind"], path: string, message: string, value?: { value: unknown }, origin?: Origin): void {
    this.issues.push({
      kind,
      path,
      origin: origin ?? this.originOf(path),
      ...(value ? { value: redactAt(path, value.value) } : {}),
      message,
    })
  }
}

const readFile = (tree: Tree, file: string): void => {
  const name = basename(file)
  let text: string
  try {
    text = readFileSync(file, "utf8")
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e)
    tree.issue(
      "file",
      "",
      `cannot read configuration file ${file} (${code})`,
      undefined,
      Origin.File({ file: name, line: 0, column: 0 }),
    )
    return
  }
  // JSON is YAML 1.2, so one parser gives line numbers for both.
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false })
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = lines.linePos(e.pos[0])
      tree.issue(
        "file",
        "",
        `syntax error: ${e.message.split("\n")[0]}`,
        undefined,
        Origin.File({ file: name, ...{ line: pos.line, column: pos.col } }),
      )
    }
    return
  }
  const originAt = (node: Node | null | undefined): Origin => {
    const start = node?.range?.[0]
    if (start === undefined) return Origin.File({ file: name, line: 0, column: 0 })
    const pos = lines.linePos(start)
    return Origin.File({ file: name, line: pos.line, column: pos.col })
  }
  const walk = (node: unknown, path: string): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
        const p = join(path, key)
        tree.positions.set(p, originAt(pair.key as Node))
        if (isMap(pair.value)) walk(pair.value, p)
        else {
          tree.origins.set(p, originAt(pair.key as Node))
          if (isSeq(pair.value)) walk(pair.value, p)
        }
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const p = join(path, i)
        tree.positions.set(p, originAt(item as Node))
        walk(item, p)
      })
    }
  }
  const root = doc.toJS({ maxAliasCount: 100 }) as unknown
  if (root === null || root === undefined) return
  if (!isObject(root)) {
    tree.issue("file", "", "expected a mapping of sections at the top level", undefined, originAt(doc.contents))
    return
  }
  walk(doc.contents, "")
  tree.raw = root
}

/** Reports keys the schema does not know, with a suggestion, and drops them. */
const checkKeys = (tree: Tree, raw: unknown, s: Shape, path: string): void => {
  if (s.kind === "struct" && isObject(raw)) {
    for (const key of Object.keys(raw)) {
      const p = join(path, key)
      const child = s.fields.get(key)
      if (child === undefined) {
        const hint = suggest(shape, s, key)
        tree.issue("unknown-key", p, hint ? `unknown key; did you mean "${hint}"?` : "unknown key")
        delete raw[key]
      } else checkKeys(tree, raw[key], child, p)
    }
  } else if (s.kind === "array" && Array.isArray(raw)) {
    for (const [i, item] of raw.entries()) checkKeys(tree, item, s.item, join(path, i))
  }
}

/** Malformed YAML stays a string, so the schema reports it with the allowed form. */
const yamlOr = (value: string): unknown => {
  try {
    return parseYaml(value)
  } catch {
    return value
  }
}

const coerce = (s: Shape, value: string): unknown => {
  if (s.kind === "leaf" && s.string) return value
  const trimmed = value.trim()
  if (s.kind === "array" && !trimmed.startsWith("[")) {
    return trimmed === ""
      ? []
      : trimmed.split(",").map((v) => (s.item.kind === "leaf" && s.item.string ? v.trim() : yamlOr(v)))
  }
  return yamlOr(value)
}

const applyOverride = (tree: Tree, o: Override): void => {
  const segments = o.path.split(".")
  const target = at(shape, segments)
  if (target === undefined || target.kind === "struct") {
    // Find the first segment that does not exist to suggest a neighbour.
    let parent: Shape = shape
    let i = 0
    for (; i < segments.length; i++) {
      const next: Shape | undefined = parent.kind === "struct" ? parent.fields.get(segments[i]!) : undefined
      if (next === undefined) break
      parent = next
    }
    const hint = i < segments.length ? suggest(shape, parent, segments[i]!) : undefined
    const full = hint === undefined ? undefined : hint.includes(".") ? hint : [...segments.slice(0, i), hint].join(".")
    const message =
      target?.kind === "struct"
        ? "is a section; set one of its keys"
        : full
          ? `unknown key; did you mean "${full}"?`
          : "unknown key"
    tree.issue("unknown-key", o.path, message, undefined, o.origin)
    return
  }
  let cur: Raw = tree.raw
  for (const seg of segments.slice(0, -1)) {
    if (!isObject(cur[seg])) cur[seg] = {}
    cur = cur[seg] as Raw
  }
  cur[segments.at(-1)!] = coerce(target, o.value)
  for (const map of [tree.origins, tree.positions]) {
    for (const k of [...map.keys()]) if (k.startsWith(`${o.path}.`) || k.startsWith(`${o.path}[`)) map.delete(k)
  }
  tree.origins.set(o.path, o.origin)
}

const layer = (o: Origin): number => ({ Default: 0, File: 1, Env: 2, Flag: 3 })[o._tag]

const setAt = (raw: Raw, path: string, value: unknown): void => {
  const segments = path.split(".")
  let cur = raw
  for (const seg of segments.slice(0, -1)) {
    if (!isObject(cur[seg])) cur[seg] = {}
    cur = cur[seg] as Raw
  }
  cur[segments.at(-1)!] = value
}

const deleteAt = (raw: Raw, path: string): void => {
  const segments = path.split(".")
  const parent = getAt(raw, segments.slice(0, -1).join("."))
  if (isObject(parent.value)) delete parent.value[segments.at(-1)!]
}

/**
 * Moves each design-named key onto the key that does the work. The later layer wins (a flag on
 * `security.cert_file` over `network.tls_cert_path` in the file); both in one layer must agree.
 */
const resolveAliases = (tree: Tree): void => {
  const get = (path: string) => {
    const own = getAt(tree.raw, path)
    return own.found ? own.value : getAt(encodedDefaults, path).value
  }
  for (const a of aliases) {
    const got = getAt(tree.raw, a.path)
    if (!got.found) continue
    deleteAt(tree.raw, a.path)
    const invalid = message(a.schema, got.value)
    if (invalid !== undefined) {
      tree.issue("invalid", a.path, invalid, { value: got.value })
      continue
    }
    const decoded = Schema.decodeUnknownSync(a.schema)(got.value)
    const target = a.target(get)
    const value = a.value(decoded)
    const existing = getAt(tree.raw, target)
    const mine = tree.originOf(a.path)
    const theirs = tree.origins.get(target)
    if (value === undefined) {
      if (existing.found && a.contradicts?.(decoded, existing.value)) {
        tree.issue("rule", a.path, `contradicts ${target} = ${JSON.stringify(existing.value)}`, { value: got.value })
      }
      continue
    }
    if (existing.found && theirs !== undefined && layer(theirs) > layer(mine)) continue
    if (existing.found && (theirs === undefined || layer(theirs) === layer(mine)) && existing.value !== value) {
      tree.issue("rule", a.path, `conflicts with ${target} = ${JSON.stringify(existing.value)}; set only one`, {
        value: got.value,
      })
      continue
    }
    setAt(tree.raw, target, value)
    tree.origins.set(target, mine)
    tree.writtenAs.set(target, a.path)
  }
}

/**
 * The defaults under what was written, for the cross-key rules. A scalar written where a section
 * belongs is already an issue at its path; the rules see the section's defaults, so it is not
 * reported again as a spurious rule on some key of that section (`network: 5` and mTLS).
 */
const deepMerge = (base: unknown, over: unknown): unknown => {
  if (isObject(base)) {
    if (!isObject(over)) return base
    const out: Raw = { ...base }
    for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v)
    return out
  }
  return over === undefined ? base : over
}

const millis = (u: unknown): number | undefined => {
  const r = Schema.decodeUnknownEither(S.Duration)(u)
  return Either.isRight(r) ? Duration.toMillis(r.right) : undefined
}

const readable = (file: string): string | undefined => {
  try {
    accessSync(file, constants.R_OK)
    return undefined
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e)
  }
}

/** Cross-field rules, run on the file form with defaults filled in; each checks types itself. */
const rules = (tree: Tree, c: Raw): void => {
  const get = (path: string) => getAt(c, path).value
  // A value the schema already rejected is not reported twice.
  const fail = (path: string, message: string) => {
    if (!tree.issues.some((i) => i.path === path)) tree.issue("rule", path, message, { value: get(path) })
  }

  const min = get("dwcp.transport.min_streams")
  const max = get("dwcp.transport.max_streams")
  const initial = get("dwcp.transport.initial_streams")
  if (typeof min === "number" && typeof max === "number") {
    if (min > max) fail("dwcp.transport.min_streams", `must be <= dwcp.transport.max_streams (${max})`)
    else if (typeof initial === "number" && (initial < min || initial > max)) {
      fail("dwcp.transport.initial_streams", `must be between min_streams (${min}) and max_streams (${max})`)
    }
  }

  const algorithm = get("dwcp.compression.algorithm")
  const level = get("dwcp.compression.level")
  const range: Record<string, readonly [number, number]> = { zstd: [0, 22], adaptive: [0, 22], lz4: [0, 12] }
  const r = typeof algorithm === "string" ? range[algorithm] : undefined
  if (r && typeof level === "number" && Number.isInteger(level) && (level < r[0] || level > r[1])) {
    fail("dwcp.compression.level", `expected an integer ${r[0]}..${r[1]} for algorithm "${algorithm}"`)
  }

  const ports: Array<string> = ["system.health_check_port", "network.bind_port"]
  if (get("monitoring.enabled") !== false) ports.push("monitoring.metrics_port")
  const seen = new Map<number, string>()
  for (const p of ports) {
    const v = get(p)
    if (typeof v !== "number" || v === 0) continue
    const other = seen.get(v)
    if (other) fail(p, `port ${v} is also used by ${other}; non-zero ports must be distinct`)
    else seen.set(v, p)
  }

  if (get("network.enable_tls") === true) {
    const cert = get("security.cert_file")
    const key = get("security.key_file")
    if (cert === "" && typeof key === "string" && key !== "") {
      fail(
        "security.cert_file",
        "must be set when security.key_file is set (leave both empty to issue a node certificate)",
      )
    }
    if (key === "" && typeof cert === "string" && cert !== "") {
      fail(
        "security.key_file",
        "must be set when security.cert_file is set (leave both empty to issue a node certificate)",
      )
    }
    for (const p of ["security.cert_file", "security.key_file", "security.ca_file"]) {
      const f = get(p)
      if (typeof f !== "string" || f === "") continue
      const err = readable(f)
      if (err) fail(p, `cannot read ${f} (${err}); TLS is on (network.enable_tls)`)
    }
  } else if (get("security.auth_method") === "mtls") {
    fail("security.auth_method", '"mtls" requires network.enable_tls: true')
  }

  const tokens = get("security.tokens")
  if (get("security.auth_method") === "token" && Array.isArray(tokens) && tokens.length === 0) {
    fail("security.tokens", 'must list at least one token when security.auth_method is "token"')
  }
  if (Array.isArray(tokens)) {
    const names = new Set<unknown>()
    tokens.forEach((t, i) => {
      const n = isObject(t) ? t.name : undefined
      if (typeof n !== "string") return
      if (names.has(n)) fail(`security.tokens[${i}].name`, `duplicate token name "${n}"`)
      names.add(n)
    })
  }

  const backend = get("storage.backend")
  const urls: ReadonlyArray<readonly [string, RegExp, string]> = [
    ["storage.postgres_url", /^postgres(ql)?:\/\/\S+$/, "a postgres:// URL"],
    ["storage.redis_url", /^rediss?:\/\/\S+$/, "a redis:// or rediss:// URL"],
    ["storage.cache_redis_url", /^rediss?:\/\/\S+$/, "a redis:// or rediss:// URL"],
  ]
  for (const [p, pattern, what] of urls) {
    const u = get(p)
    if (typeof u === "string" && u !== "" && !pattern.test(u)) fail(p, `expected ${what}`)
  }
  if (backend === "postgres" && get("storage.postgres_url") === "")
    fail("storage.postgres_url", 'must be set when storage.backend is "postgres"')
  if (backend === "redis" && get("storage.redis_url") === "")
    fail("storage.redis_url", 'must be set when storage.backend is "redis"')

  const hb = millis(get("dwcp.consensus.heartbeat_interval"))
  const election = millis(get("dwcp.consensus.election_timeout"))
  if (hb !== undefined && election !== undefined && hb >= election) {
    fail(
      "dwcp.consensus.heartbeat_interval",
      `must be shorter than dwcp.consensus.election_timeout (${get("dwcp.consensus.election_timeout")})`,
    )
  }

  if (get("dwcp.enable_auto_detection") === false && get("dwcp.forced_mode") === "") {
    fail("dwcp.forced_mode", 'must be "datacenter", "internet" or "hybrid" when dwcp.enable_auto_detection is false')
  }
}

const rank = (o: Origin): number => ({ File: 0, Env: 1, Flag: 2, Default: 3 })[o._tag]
const line = (o: Origin): number => (o._tag === "File" ? o.line : 0)
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
const variable = (o: Origin): string => (o._tag === "Env" ? o.variable : "")

const flatten = (value: unknown, path: string, out: Map<string, unknown>): Map<string, unknown> => {
  if (isObject(value)) for (const [k, v] of Object.entries(value)) flatten(v, join(path, k), out)
  else out.set(path, value)
  return out
}

/** Leaves carry their own messages; sections, lists and missing fields get these instead of Schema's defaults. */
const plain = (path: string, message: string): string => {
  if (message === "is missing") return "is required"
  // A package's schema may name the key itself ("network.max_frame_size must be ..."): said once.
  const key = path.replace(/\[\d+\]$/, "")
  for (const sep of [": ", " "]) if (message.startsWith(key + sep)) return message.slice(key.length + sep.length)
  if (!message.startsWith("Expected ")) return message
  let s: Shape | undefined = shape
  for (const seg of segmentsOf(path)) {
    s =
      typeof seg === "number"
        ? s?.kind === "array"
          ? s.item
          : undefined
        : s?.kind === "struct"
          ? s.fields.get(seg)
          : undefined
  }
  return s?.kind === "struct" ? "expected a mapping of keys" : s?.kind === "array" ? "expected a list" : message
}

export interface LoadInput {
  readonly file?: string | undefined
  readonly env: ReadonlyArray<Override>
  readonly flags: ReadonlyArray<Override>
  readonly flagIssues: ReadonlyArray<ConfigIssue>
}

export const load = (input: LoadInput): Effect.Effect<Loaded, ConfigError> =>
  Effect.suspend(() => {
    const tree = new Tree()
    if (input.file !== undefined) readFile(tree, input.file)
    if (tree.issues.length > 0) return Effect.fail(new ConfigError({ issues: tree.issues }))
    checkKeys(tree, tree.raw, shape, "")
    for (const o of input.env) applyOverride(tree, o)
    for (const o of input.flags) applyOverride(tree, o)
    tree.issues.push(...input.flagIssues)
    resolveAliases(tree)

    const decoded = Schema.decodeUnknownEither(S.Settings, { errors: "all", onExcessProperty: "ignore" })(tree.raw)
    if (Either.isLeft(decoded)) {
      for (const item of ParseResult.ArrayFormatter.formatErrorSync(decoded.left)) {
        const path = item.path.reduce<string>((p, seg) => join(p, typeof seg === "number" ? seg : String(seg)), "")
        const got = getAt(tree.raw, path)
        tree.issue("invalid", path, plain(path, item.message), got.found ? { value: got.value } : undefined)
      }
    }
    rules(tree, deepMerge(encodedDefaults, tree.raw) as Raw)

    if (tree.issues.length > 0 || Either.isLeft(decoded)) {
      const issues = tree.issues
        .map((issue) => {
          const as = tree.writtenAs.get(issue.path)
          return as === undefined ? issue : { ...issue, path: as }
        })
        .map((issue, i) => ({ issue, i }))
        .sort(
          (a, b) =>
            rank(a.issue.origin) - rank(b.issue.origin) ||
            line(a.issue.origin) - line(b.issue.origin) ||
            compare(variable(a.issue.origin), variable(b.issue.origin)) ||
            a.i - b.i,
        )
        .map(({ issue }) => issue)
      return Effect.fail(new ConfigError({ issues }))
    }
    const settings = decoded.right
    const encoded = Schema.encodeSync(S.Settings)(settings)
    const provenance = new Map<string, Origin>()
    for (const path of flatten(encoded, "", new Map()).keys()) {
      let p = path
      let o: Origin | undefined
      for (;;) {
        o = tree.origins.get(p)
        if (o || !p.includes(".")) break
        p = p.slice(0, p.lastIndexOf("."))
      }
      provenance.set(path, o ?? Origin.Default())
    }
    const found = notes(
      (path) => getAt(encoded, path).value,
      (path) => {
        const o = provenance.get(path)
        return o === undefined || o._tag === "Default" ? undefined : o
      },
    ).map((n) => ({ ...n, path: tree.writtenAs.get(n.path) ?? n.path }))
    const loaded: Loaded = { settings, encoded, provenance, file: input.file, notes: found }
    // Logging or inspecting the whole configuration by accident must not leak its secrets.
    const safe = () => ({ file: input.file, settings: redact(encoded) })
    Object.defineProperty(loaded, "toJSON", { value: safe, enumerable: false })
    Object.defineProperty(loaded, Symbol.for("nodejs.util.inspect.custom"), { value: safe, enumerable: false })
    return Effect.succeed(loaded)
  })
