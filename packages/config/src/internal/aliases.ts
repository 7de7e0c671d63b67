// The design's key names (initialization-architecture-v2, "Configuration Schema") that differ from
// the schema's own: each is read, checked and written onto the key that does the work, before the
// schema decodes. And the keys accepted whose part is not built yet, reported as notes.

import { Either, ParseResult, Schema } from "effect"
import type { Note } from "../Config.js"
import type { Origin } from "../Origin.js"

const allowed = (message: string) => ({ message: () => ({ message, override: true }) })
const bool = Schema.Boolean.annotations(allowed("expected true or false"))
const str = Schema.String.annotations(allowed("expected a string"))
const oneOf = <const L extends ReadonlyArray<string>>(...values: L) =>
  Schema.Literal(...values).annotations(allowed(`expected one of ${values.map((v) => JSON.stringify(v)).join(", ")}`))

/** A design key and the key it sets. */
export interface Alias {
  readonly path: string
  readonly schema: Schema.Schema.AnyNoContext
  /** The key written, given a lookup of the (default-filled) file form. */
  readonly target: (get: (path: string) => unknown) => string
  /** The value written; `undefined` writes nothing but still conflicts with a contradicting target. */
  readonly value: (decoded: unknown) => unknown
  /** For `value` undefined: the target values that contradict the alias. */
  readonly contradicts?: (decoded: unknown, target: unknown) => boolean
}

const same = (path: string, target: string, schema: Schema.Schema.AnyNoContext): Alias => ({
  path,
  schema,
  target: () => target,
  value: (v) => v,
})

const urlKeys: Readonly<Record<string, string>> = {
  sqlite: "storage.sqlite_path",
  postgres: "storage.postgres_url",
  redis: "storage.redis_url",
}

export const aliases: ReadonlyArray<Alias> = [
  {
    ...same(
      "dwcp.transport.congestion_algo",
      "dwcp.transport.congestion_algorithm",
      oneOf("adaptive", "auto", "bbr", "cubic", "dctcp", "reno"),
    ),
    // The design's "adaptive" is the transport's "auto" (picks per path).
    value: (v) => (v === "adaptive" ? "auto" : v),
  },
  same("dwcp.consensus.protocol", "dwcp.consensus.algorithm", oneOf("raft", "pbft", "gossip")),
  same("network.tls_cert_path", "security.cert_file", str),
  same("network.tls_key_path", "security.key_file", str),
  same("monitoring.enable_metrics", "monitoring.enabled", bool),
  same("monitoring.enable_tracing", "monitoring.tracing", bool),
  {
    path: "storage.connection_string",
    schema: str,
    // The URL (or SQLite path) of the backend chosen by storage.backend.
    target: (get) => urlKeys[String(get("storage.backend"))] ?? "storage.sqlite_path",
    value: (v) => v,
  },
  {
    path: "security.enable_auth",
    schema: bool,
    target: () => "security.auth_method",
    value: (v) => (v === false ? "none" : undefined),
    contradicts: (v, target) => v === true && target === "none",
  },
]

export const message = (schema: Schema.Schema.AnyNoContext, value: unknown): string | undefined => {
  const r = Schema.decodeUnknownEither(schema)(value)
  return Either.isLeft(r) ? (ParseResult.ArrayFormatter.formatErrorSync(r.left)[0]?.message ?? "invalid") : undefined
}

type Get = (path: string) => unknown

/** Keys accepted but not in effect: `when` says whether an explicitly set value asks for something unbuilt. */
const unbuilt: ReadonlyArray<{ readonly path: string; readonly when: (v: unknown) => boolean; readonly why: string }> =
  [
    { path: "dwcp.transport.stream_timeout", when: () => true, why: "DWCP streams have no timeout of their own" },
    { path: "dwcp.compression.enable_ml_model", when: (v) => v === true, why: "no learned compression model is built" },
    ...["election_timeout", "heartbeat_interval"].map((k) => ({
      path: `dwcp.consensus.${k}`,
      when: () => true,
      why: "the agent does not run etcd: set it on the etcd members (--election-timeout, --heartbeat-interval)",
    })),
    {
      path: "dwcp.consensus.byzantine_tolerance",
      when: (v) => v === true,
      why: "it selects nothing: Byzantine tolerance is protocol: pbft (with pbft_members)",
    },
    { path: "storage.enable_cache", when: (v) => v === false, why: "the cache always runs" },
    {
      path: "security.enable_encryption",
      when: (v) => v === false,
      why: "secrets at rest are always sealed (AES-256-GCM)",
    },
  ]

/** Notes for the keys set explicitly (`origin` defined) whose value is not in effect. */
export const notes = (get: Get, origin: (path: string) => Origin | undefined): Array<Note> => {
  const out: Array<Note> = []
  for (const u of unbuilt) {
    const o = origin(u.path)
    if (o !== undefined && u.when(get(u.path))) {
      out.push({ path: u.path, origin: o, message: `accepted, not in effect yet: ${u.why}` })
    }
  }
  return out
}
