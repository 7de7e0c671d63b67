// Issue 16: the design's own novacron.yaml (examples/novacron.yaml, verbatim) is the contract: every
// key it writes is accepted with its meaning, and a key whose part is not built yet says so.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Logger } from "effect"
import { Config, ConfigError, Origin } from "../src/index.js"

const example = readFileSync(join(import.meta.dirname, "..", "..", "..", "examples", "novacron.yaml"), "utf8")
const dir = mkdtempSync(join(tmpdir(), "novacron-design-"))
let n = 0
const file = (text: string) => {
  const path = join(dir, `c${n++}.yaml`)
  writeFileSync(path, text)
  return path
}
// The example's TLS files, readable here (validate checks that they are).
const cert = file("cert")
const key = file("key")
/** The example with its certificate paths pointing at readable files. */
const runnable = () =>
  example.replace("/etc/novacron/certs/server.crt", cert).replace("/etc/novacron/certs/server.key", key)

const load = (text: string, flags: ReadonlyArray<string> = [], env: Record<string, string> = {}) =>
  Config.load({ file: file(text), env, flags })
const problems = (text: string, flags: ReadonlyArray<string> = [], env: Record<string, string> = {}) =>
  Effect.map(Effect.flip(load(text, flags, env)), (e) => e.issues.map(ConfigError.renderIssue))
const lineOf = (text: string, key: string) => text.split("\n").findIndex((l) => l.trimStart().startsWith(`${key}:`)) + 1

describe("the design's novacron.yaml", () => {
  it.effect("validates: no unknown key, no invalid value; the only problems are its certificate files", () =>
    Effect.gen(function* () {
      const { issues } = yield* Effect.flip(Config.load({ file: file(example), env: {} }))
      // /etc/novacron/certs does not exist on a build machine; the problem names the key as written.
      expect(issues.map((i) => [i.kind, i.path])).toEqual([
        ["rule", "network.tls_cert_path"],
        ["rule", "network.tls_key_path"],
      ])
      expect(issues[0]!.message).toContain("cannot read /etc/novacron/certs/server.crt")
      const loaded = yield* load(runnable())
      expect(loaded.settings.system.node_id).toBe("novacron-node-1")
    }),
  )

  it.effect("each design key does what it says", () =>
    Effect.gen(function* () {
      const text = runnable()
      const { settings: s, provenance } = yield* load(text)
      expect(s.security.cert_file).toBe(cert)
      expect(s.security.key_file).toBe(key)
      expect(provenance.get("security.cert_file")).toEqual(
        Origin.Origin.File({
          file: expect.any(String) as unknown as string,
          line: lineOf(text, "tls_cert_path"),
          column: 3,
        }),
      )
      expect(s.security.auth_method).toBe("mtls")
      expect(s.security.enable_encryption).toBe(true)
      expect(s.security.encryption_algo).toBe("aes-256-gcm")
      expect(s.monitoring.enabled).toBe(true)
      expect(s.monitoring.tracing).toBe(false)
      expect(s.monitoring.profiling_port).toBe(6060)
      expect(s.dwcp.transport.congestion_algorithm).toBe("cubic")
      expect(Duration.toMillis(s.dwcp.transport.stream_timeout)).toBe(60_000)
      expect(s.dwcp.compression.enable_ml_model).toBe(false)
      expect(s.dwcp.consensus).toMatchObject({ algorithm: "raft", byzantine_tolerance: false })
      expect(Duration.toMillis(s.dwcp.consensus.election_timeout)).toBe(5000)
      expect(s.storage).toMatchObject({ backend: "sqlite", sqlite_path: "", enable_cache: true, max_connections: 100 })
      expect(s.network).toMatchObject({ listen_address: "0.0.0.0", bind_port: 9090, max_connections: 10_000 })
    }),
  )

  it.effect("validate says which accepted keys are not in effect yet, where they were written", () =>
    Effect.gen(function* () {
      const text = runnable()
      const { notes } = yield* load(text)
      // raft (the design's protocol) is in effect: the state-sync component runs it.
      expect(notes.map((x) => x.path).sort()).toEqual([
        "dwcp.consensus.election_timeout",
        "dwcp.consensus.heartbeat_interval",
        "dwcp.transport.stream_timeout",
      ])
      const election = notes.find((x) => x.path === "dwcp.consensus.election_timeout")!
      expect(Config.renderNote(election)).toMatch(
        new RegExp(
          `^dwcp\\.consensus\\.election_timeout \\(c\\d+\\.yaml:${lineOf(text, "election_timeout")}\\): accepted, not in effect yet: the agent does not run etcd`,
        ),
      )
      // PBFT mode is built: it needs its members (4 to 7), and then is not a note.
      const noMembers = yield* problems(text.replace('protocol: "raft"', 'protocol: "pbft"'))
      expect(noMembers.join("\n")).toMatch(
        /pbft needs 4 to 7 members \(4-6 tolerate one Byzantine member, 7 two\), got 0/,
      )
      const pbft = yield* load(
        text.replace(
          'protocol: "raft"',
          'protocol: "pbft"\n    pbft_members: [a@10.0.0.1:7947, b@10.0.0.2:7947, c@10.0.0.3:7947, d@10.0.0.4:7947]',
        ),
      )
      expect(pbft.notes.find((x) => x.path === "dwcp.consensus.protocol")).toBeUndefined()
      // Gossip mode is built: asking for it is not a note.
      const gossip = yield* load(text.replace('protocol: "raft"', 'protocol: "gossip"'))
      expect(gossip.notes.find((x) => x.path === "dwcp.consensus.protocol")).toBeUndefined()
      // Defaults only: nothing asked for, nothing to say.
      expect((yield* Config.load({ env: {} })).notes).toEqual([])
    }),
  )
})

describe("design names", () => {
  it.effect("storage.connection_string is the URL of the chosen backend", () =>
    Effect.gen(function* () {
      const pg = yield* load("storage:\n  backend: postgres\n  connection_string: postgres://db:5432/nova\n")
      expect(pg.settings.storage.postgres_url).toBe("postgres://db:5432/nova")
      const redis = yield* load("storage:\n  backend: redis\n  connection_string: redis://cache:6379\n")
      expect(redis.settings.storage.redis_url).toBe("redis://cache:6379")
      const sqlite = yield* load("storage:\n  connection_string: /var/lib/nova.db\n")
      expect(sqlite.settings.storage.sqlite_path).toBe("/var/lib/nova.db")
      // The backend's own check applies, under the name written.
      expect(yield* problems("storage:\n  backend: postgres\n  connection_string: mysql://x\n")).toEqual([
        expect.stringMatching(
          /^storage\.connection_string = "mysql:\/\/x" \(c\d+\.yaml:3\): expected a postgres:\/\/ URL$/,
        ),
      ])
      // The environment reaches it too.
      const env = yield* Config.load({ env: { NOVACRON__STORAGE__CONNECTION_STRING: "/tmp/x.db" } })
      expect(env.settings.storage.sqlite_path).toBe("/tmp/x.db")
    }),
  )

  it.effect("security.enable_auth: false is auth none; contradicting auth_method is a problem", () =>
    Effect.gen(function* () {
      const off = yield* load("security:\n  enable_auth: false\n")
      expect(off.settings.security.auth_method).toBe("none")
      expect(yield* problems("security:\n  enable_auth: false\n  auth_method: mtls\n")).toEqual([
        expect.stringContaining("security.enable_auth = false (c"),
      ])
      expect(yield* problems("security:\n  enable_auth: true\n  auth_method: none\n")).toEqual([
        expect.stringContaining('contradicts security.auth_method = "none"'),
      ])
      expect(yield* problems('security:\n  enable_auth: "yes"\n')).toEqual([
        expect.stringMatching(/^security\.enable_auth = "yes" \(c\d+\.yaml:2\): expected true or false$/),
      ])
    }),
  )

  it.effect("monitoring.enable_metrics / enable_tracing are monitoring.enabled / tracing", () =>
    Effect.gen(function* () {
      const { settings, notes } = yield* load("monitoring:\n  enable_metrics: false\n  enable_tracing: true\n")
      expect([settings.monitoring.enabled, settings.monitoring.tracing]).toEqual([false, true])
      // Tracing is built (@novacron/monitoring's Tracing): nothing to note.
      expect(notes).toEqual([])
    }),
  )

  it.effect("congestion_algo (adaptive = auto) and consensus.protocol (gossip)", () =>
    Effect.gen(function* () {
      const { settings } = yield* load(
        "dwcp:\n  transport:\n    congestion_algo: adaptive\n  consensus:\n    protocol: gossip\n",
      )
      expect(settings.dwcp.transport.congestion_algorithm).toBe("auto")
      expect(settings.dwcp.consensus.algorithm).toBe("gossip")
    }),
  )

  it.effect("both names in one layer must agree; a later layer wins", () =>
    Effect.gen(function* () {
      const both = "dwcp:\n  transport:\n    congestion_algo: cubic\n    congestion_algorithm: bbr\n"
      expect(yield* problems(both)).toEqual([
        expect.stringContaining('conflicts with dwcp.transport.congestion_algorithm = "bbr"'),
      ])
      const same = yield* load("dwcp:\n  transport:\n    congestion_algo: bbr\n    congestion_algorithm: bbr\n")
      expect(same.settings.dwcp.transport.congestion_algorithm).toBe("bbr")
      const flagged = yield* load(
        "network:\n  tls_cert_path: /a\n  tls_key_path: /b\n  enable_tls: false\nsecurity:\n  auth_method: token\n  tokens: [{name: a, role: admin, sha256: " +
          "a".repeat(64) +
          "}]\n",
        ["--set", "security.cert_file=/c"],
      )
      expect(flagged.settings.security.cert_file).toBe("/c")
      expect(flagged.settings.security.key_file).toBe("/b")
    }),
  )

  it.effect("keys accepted but not in effect when they ask for an unbuilt part", () =>
    Effect.gen(function* () {
      const { notes } = yield* load(
        [
          "storage:\n  enable_cache: false",
          "monitoring:\n  enable_profiling: true\n  tracing_endpoint: http://otel:4318",
          "security:\n  enable_encryption: false",
          "dwcp:\n  compression:\n    enable_ml_model: true",
        ].join("\n"),
      )
      expect(notes.map((x) => x.path).sort()).toEqual([
        "dwcp.compression.enable_ml_model",
        "security.enable_encryption",
        "storage.enable_cache",
      ])
      // The same keys set to what the node does anyway change nothing and are not noted.
      const quiet = yield* load("storage:\n  enable_cache: true\ndwcp:\n  compression:\n    enable_ml_model: false\n")
      expect(quiet.notes).toEqual([])
      expect(yield* problems("security:\n  encryption_algo: des\n")).toEqual([
        expect.stringContaining('expected one of "aes-256-gcm"'),
      ])
    }),
  )
})

describe("monitoring.listen_address and the cluster section", () => {
  it.effect("typed, with defaults, reported with every other problem at once", () =>
    Effect.gen(function* () {
      const { settings } = yield* Config.load({ env: {} })
      expect(settings.monitoring.listen_address).toBe("127.0.0.1")
      expect(settings.cluster).toMatchObject({ join_port: 7790, join_address: "", token_uses: 1 })
      expect(Duration.toHours(settings.cluster.token_ttl)).toBe(24)
      const set = yield* load("monitoring:\n  listen_address: 0.0.0.0\ncluster:\n  join_port: 7000\n  token_ttl: 30m\n")
      expect(set.settings.monitoring.listen_address).toBe("0.0.0.0")
      expect(set.settings.cluster.join_port).toBe(7000)
      expect(set.encoded.cluster?.token_ttl).toBe("30m")
      const issues = yield* problems(
        'cluster:\n  join_port: 70000\n  tokn_uses: 2\nmonitoring:\n  listen_address: ""\n',
      )
      expect(issues.map((i) => i.split(" ")[0])).toEqual([
        "cluster.join_port",
        "cluster.tokn_uses",
        "monitoring.listen_address",
      ])
      expect(issues[1]).toContain('did you mean "token_uses"?')
    }),
  )
})

describe("not silently ignored at boot either", () => {
  it.effect("Config.component logs each note as a warning when its layer is built", () =>
    Effect.gen(function* () {
      const loaded = yield* load("dwcp:\n  transport:\n    stream_timeout: 2m\n")
      const logged: Array<{ level: string; message: string }> = []
      const capture = Logger.make(({ logLevel, message }) => {
        logged.push({ level: logLevel.label, message: String(Array.isArray(message) ? message[0] : message) })
      })
      yield* Effect.scoped(Layer.build(Config.component(loaded).layer)).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, capture)),
      )
      expect(logged).toEqual([
        {
          level: "WARN",
          message: expect.stringMatching(
            /^dwcp\.transport\.stream_timeout \(c\d+\.yaml:3\): accepted, not in effect yet: DWCP streams have no timeout of their own$/,
          ) as unknown as string,
        },
      ])
    }),
  )
})
