// Behaviours that the mutation run of issue 29 showed no test pinned down (see bench/RESULTS.md):
// each test asserts exact messages, kinds, origins or values so that the surviving mutant fails it.
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Config, ConfigError, Origin } from "../src/index.js"

const dir = mkdtempSync(join(tmpdir(), "novacron-config-survivors-"))
/** A configuration file `<name>.yaml` holding `text` (named, so tests may run alone or in any order). */
const file = (name: string, text: string) => {
  const path = join(dir, `${name}.yaml`)
  writeFileSync(path, text)
  return path
}

/** `kind | rendered issue` for each issue, in the order the error lists them (fails if loading succeeds). */
const problems = (options: Partial<Config.Options>) =>
  Effect.map(Effect.flip(Config.load({ env: {}, ...options })), (e) =>
    e.issues.map((i) => `${i.kind} | ${ConfigError.renderIssue(i)}`),
  )

const set = (...pairs: ReadonlyArray<string>) => pairs.flatMap((p) => ["--set", p])

describe("unknown keys: did-you-mean suggestions", () => {
  it.effect("a sibling within the edit-distance bound is suggested, the bound itself included", () =>
    Effect.gen(function* () {
      // "lg_levl" is 2 edits from "log_level": exactly the bound max(2, floor(7 / 3)) = 2.
      expect(yield* problems({ file: file("typo", "system:\n  lg_levl: warn\n") })).toEqual([
        'unknown-key | system.lg_levl (typo.yaml:2): unknown key; did you mean "log_level"?',
      ])
    }),
  )

  it.effect("short keys still get a bound of 2, long keys a third of their length", () =>
    Effect.gen(function* () {
      // "prs": 2 edits from "peers", bound max(2, 1) = 2.
      expect(yield* problems({ file: file("short-typo", "network:\n  prs: [a]\n") })).toEqual([
        'unknown-key | network.prs (short-typo.yaml:2): unknown key; did you mean "peers"?',
      ])
      // "shutdwn_tmout": 3 edits from "shutdown_timeout", bound max(2, floor(13 / 3)) = 4.
      expect(yield* problems({ file: file("long-typo", "system:\n  shutdwn_tmout: 5s\n") })).toEqual([
        'unknown-key | system.shutdwn_tmout (long-typo.yaml:2): unknown key; did you mean "shutdown_timeout"?',
      ])
    }),
  )

  it.effect("a key that exists in exactly one other section, however deep, is suggested with its full path", () =>
    Effect.gen(function* () {
      expect(yield* problems({ file: file("misplaced", "system:\n  min_streams: 3\n") })).toEqual([
        'unknown-key | system.min_streams (misplaced.yaml:2): unknown key; did you mean "dwcp.transport.min_streams"?',
      ])
      expect(yield* problems({ flags: set("system.min_streams=1") })).toEqual([
        'unknown-key | system.min_streams (flag --set system.min_streams): unknown key; did you mean "dwcp.transport.min_streams"?',
      ])
    }),
  )

  it.effect("a key that exists in two other sections is ambiguous: no suggestion", () =>
    Effect.gen(function* () {
      // listen_address is in network and monitoring; chunk_size in dwcp.transport and dwcp.compression.
      expect(yield* problems({ file: file("ambiguous", "system:\n  listen_address: 0.0.0.0\n") })).toEqual([
        "unknown-key | system.listen_address (ambiguous.yaml:2): unknown key",
      ])
      expect(yield* problems({ flags: set("logging.chunk_size=1") })).toEqual([
        "unknown-key | logging.chunk_size (flag --set logging.chunk_size): unknown key",
      ])
    }),
  )

  it.effect("a key close to nothing gets the bare message, from a file and from a flag", () =>
    Effect.gen(function* () {
      expect(yield* problems({ file: file("no-match", "system:\n  zzzzzzzzzzzz: true\n") })).toEqual([
        "unknown-key | system.zzzzzzzzzzzz (no-match.yaml:2): unknown key",
      ])
      expect(yield* problems({ flags: set("system.zzzzzzzzzzz=1") })).toEqual([
        "unknown-key | system.zzzzzzzzzzz (flag --set system.zzzzzzzzzzz): unknown key",
      ])
    }),
  )

  it.effect("a key below a leaf is unknown, without a suggestion (the leaf has no fields to compare)", () =>
    Effect.gen(function* () {
      expect(yield* problems({ flags: set("network.bind_port.x=1") })).toEqual([
        "unknown-key | network.bind_port.x (flag --set network.bind_port.x): unknown key",
      ])
    }),
  )
})

describe("the top level of a file", () => {
  it.effect("a list or a scalar is refused at line 1; an empty file is the defaults", () =>
    Effect.gen(function* () {
      expect(yield* problems({ file: file("top-list", "- a\n- b\n") })).toEqual([
        "file | top-list.yaml:1: expected a mapping of sections at the top level",
      ])
      expect(yield* problems({ file: file("top-scalar", "\n\n42\n") })).toEqual([
        "file | top-scalar.yaml:3: expected a mapping of sections at the top level",
      ])
      const empty = yield* Config.load({ file: file("empty", ""), env: {} })
      expect(empty.settings.system.log_level).toBe("info")
      const comments = yield* Config.load({ file: file("comments-only", "# nothing set\n"), env: {} })
      expect(comments.settings.network.peers).toEqual([])
    }),
  )
})

describe("overrides: strings verbatim, lists split on commas", () => {
  it.effect("a string key takes the value as written, never read as YAML", () =>
    Effect.gen(function* () {
      const { settings } = yield* Config.load({ env: { NOVACRON__SYSTEM__NODE_ID: "123" } })
      expect(settings.system.node_id).toBe("123")
    }),
  )

  it.effect("list items of strings are trimmed and stay strings", () =>
    Effect.gen(function* () {
      expect(yield* problems({ env: { NOVACRON__NETWORK__PEERS: " 10.0.0.1:7700 , 123 " } })).toEqual([
        'invalid | network.peers[1] = "123" (env NOVACRON__NETWORK__PEERS): expected "host:port" or "node-id@host:port", got 123',
      ])
      const { settings } = yield* Config.load({ env: { NOVACRON__NETWORK__PEERS: " 10.0.0.1:7700 ,n2@h:1 " } })
      expect(settings.network.peers).toEqual(["10.0.0.1:7700", "n2@h:1"])
    }),
  )

  it.effect("a list value starting with [ after blanks is read as YAML; an empty value is the empty list", () =>
    Effect.gen(function* () {
      const flow = yield* Config.load({ env: { NOVACRON__NETWORK__PEERS: '  ["10.0.0.1:7700", "h:2"]' } })
      expect(flow.settings.network.peers).toEqual(["10.0.0.1:7700", "h:2"])
      const path = file("one-peer", "network:\n  peers: ['10.0.0.1:7700']\n")
      const emptied = yield* Config.load({ file: path, env: { NOVACRON__NETWORK__PEERS: "" } })
      expect(emptied.settings.network.peers).toEqual([])
      const blank = yield* Config.load({ file: path, env: { NOVACRON__NETWORK__PEERS: "   " } })
      expect(blank.settings.network.peers).toEqual([])
    }),
  )

  it.effect("a list set by a flag replaces the file's items: their problems are the flag's, not the file lines'", () =>
    Effect.gen(function* () {
      const path = file("bad-peer", "network:\n  peers:\n    - 10.0.0.1:7700\n    - x\n")
      expect(yield* problems({ file: path })).toEqual([
        'invalid | network.peers[1] = "x" (bad-peer.yaml:4): expected "host:port" or "node-id@host:port", got x',
      ])
      expect(yield* problems({ file: path, flags: set("network.peers=bad,10.0.0.1:7700") })).toEqual([
        'invalid | network.peers[0] = "bad" (flag --set network.peers): expected "host:port" or "node-id@host:port", got bad',
      ])
    }),
  )

  it.effect("an item at index 10 or more is traced back to the variable that set the list", () =>
    Effect.gen(function* () {
      const peers = [...Array.from({ length: 10 }, (_, i) => `10.0.0.${i}:7700`), "bad"].join(",")
      expect(yield* problems({ env: { NOVACRON__NETWORK__PEERS: peers } })).toEqual([
        'invalid | network.peers[10] = "bad" (env NOVACRON__NETWORK__PEERS): expected "host:port" or "node-id@host:port", got bad',
      ])
    }),
  )
})

describe("issues: kinds, order and no double reports", () => {
  it.effect("every schema problem is reported, with kind invalid", () =>
    Effect.gen(function* () {
      expect(yield* problems({ flags: set("system.log_level=x", "logging.format=y") })).toEqual([
        'invalid | system.log_level = "x" (flag --set system.log_level): expected one of "debug", "info", "warn", "error"',
        'invalid | logging.format = "y" (flag --set logging.format): expected one of "auto", "json", "pretty"',
      ])
    }),
  )

  it.effect("environment issues are ordered by variable name", () =>
    Effect.gen(function* () {
      const expected = [
        'invalid | logging.format = "y" (env NOVACRON__LOGGING__FORMAT): expected one of "auto", "json", "pretty"',
        'invalid | system.log_level = "x" (env NOVACRON__SYSTEM__LOG_LEVEL): expected one of "debug", "info", "warn", "error"',
        "invalid | system.max_concurrency = 0 (env NOVACRON__SYSTEM__MAX_CONCURRENCY): expected an integer 1..1024",
      ]
      const a = {
        NOVACRON__SYSTEM__LOG_LEVEL: "x",
        NOVACRON__LOGGING__FORMAT: "y",
        NOVACRON__SYSTEM__MAX_CONCURRENCY: "0",
      }
      const b = {
        NOVACRON__SYSTEM__MAX_CONCURRENCY: "0",
        NOVACRON__LOGGING__FORMAT: "y",
        NOVACRON__SYSTEM__LOG_LEVEL: "x",
      }
      expect(yield* problems({ env: a })).toEqual(expected)
      expect(yield* problems({ env: b })).toEqual(expected)
    }),
  )

  it.effect("a value the schema refused is not reported again by a cross-field rule", () =>
    Effect.gen(function* () {
      expect(
        yield* problems({ flags: set("dwcp.transport.min_streams=5000", "dwcp.transport.max_streams=4") }),
      ).toEqual([
        "invalid | dwcp.transport.min_streams = 5000 (flag --set dwcp.transport.min_streams): expected an integer 1..256",
      ])
      expect(yield* problems({ flags: set("dwcp.transport.min_streams=8", "dwcp.transport.max_streams=4") })).toEqual([
        "rule | dwcp.transport.min_streams = 8 (flag --set dwcp.transport.min_streams): must be <= dwcp.transport.max_streams (4)",
      ])
    }),
  )

  it.effect("a section given a scalar wants a mapping, a list given a scalar wants a list", () =>
    Effect.gen(function* () {
      expect(yield* problems({ file: file("logging-scalar", "logging: 5\n") })).toEqual([
        "invalid | logging = 5 (logging-scalar.yaml:1): expected a mapping of keys",
      ])
      expect(yield* problems({ file: file("peers-scalar", "network:\n  peers: 5\n") })).toEqual([
        "invalid | network.peers = 5 (peers-scalar.yaml:2): expected a list",
      ])
    }),
  )
})

describe("TLS files and storage URLs", () => {
  it.effect("with TLS on, each unreadable certificate or key file is named", () =>
    Effect.gen(function* () {
      expect(
        yield* problems({
          flags: set("security.cert_file=/nonexistent/c.pem", "security.key_file=/nonexistent/k.pem"),
        }),
      ).toEqual([
        'rule | security.cert_file = "/nonexistent/c.pem" (flag --set security.cert_file): cannot read /nonexistent/c.pem (ENOENT); TLS is on (network.enable_tls)',
        'rule | security.key_file = "/nonexistent/k.pem" (flag --set security.key_file): cannot read /nonexistent/k.pem (ENOENT); TLS is on (network.enable_tls)',
      ])
    }),
  )

  it.effect("redis URLs take redis:// as well as rediss://, and the scheme must start the value", () =>
    Effect.gen(function* () {
      expect(
        yield* problems({ flags: set("storage.redis_url=redis://h", "storage.cache_redis_url=xrediss://h") }),
      ).toEqual([
        'rule | storage.cache_redis_url = "xrediss://h" (flag --set storage.cache_redis_url): expected a redis:// or rediss:// URL',
      ])
      const { settings } = yield* Config.load({
        env: {},
        flags: set("storage.redis_url=redis://h:6379", "storage.cache_redis_url=redis://c:6379"),
      })
      expect([settings.storage.redis_url, settings.storage.cache_redis_url]).toEqual([
        "redis://h:6379",
        "redis://c:6379",
      ])
    }),
  )
})

describe("a loaded configuration hides its redacting views", () => {
  it.effect("toJSON and the inspect hook are not enumerable properties", () =>
    Effect.gen(function* () {
      const loaded = yield* Config.load({ env: {} })
      expect(Object.keys(loaded).sort()).toEqual(["encoded", "file", "notes", "provenance", "settings"])
      expect(Object.getOwnPropertyDescriptor(loaded, Symbol.for("nodejs.util.inspect.custom"))?.enumerable).toBe(false)
      expect(Object.getOwnPropertySymbols({ ...loaded })).toEqual([])
    }),
  )
})

describe("design key names (aliases) set the key that does the work", () => {
  it.effect("the design name sets its target, which remembers where it was written", () =>
    Effect.gen(function* () {
      const metrics = yield* Config.load({
        file: file("alias-metrics", "monitoring:\n  enable_metrics: false\n"),
        env: {},
      })
      expect(metrics.settings.monitoring.enabled).toBe(false)
      expect(Origin.render(metrics.provenance.get("monitoring.enabled")!)).toBe("alias-metrics.yaml:2")
      const algo = yield* Config.load({
        file: file("alias-congestion", "dwcp:\n  transport:\n    congestion_algo: adaptive\n"),
        env: {},
      })
      expect(algo.settings.dwcp.transport.congestion_algorithm).toBe("auto")
      const url = yield* Config.load({
        file: file("alias-connection", "storage:\n  backend: postgres\n  connection_string: postgres://db/x\n"),
        env: {},
      })
      expect(url.settings.storage.postgres_url).toBe("postgres://db/x")
      expect(Origin.render(url.provenance.get("storage.postgres_url")!)).toBe("alias-connection.yaml:3")
    }),
  )

  it.effect("an invalid design value is reported under the design name", () =>
    Effect.gen(function* () {
      expect(yield* problems({ file: file("alias-invalid", "monitoring:\n  enable_metrics: yes\n") })).toEqual([
        'invalid | monitoring.enable_metrics = "yes" (alias-invalid.yaml:2): expected true or false',
      ])
    }),
  )

  it.effect("both names in one layer must agree; agreeing is fine", () =>
    Effect.gen(function* () {
      expect(
        yield* problems({ file: file("alias-conflict", "monitoring:\n  enabled: true\n  enable_metrics: false\n") }),
      ).toEqual([
        "rule | monitoring.enable_metrics = false (alias-conflict.yaml:3): conflicts with monitoring.enabled = true; set only one",
      ])
      const agree = yield* Config.load({
        file: file("alias-agree", "monitoring:\n  enabled: false\n  enable_metrics: false\n"),
        env: {},
      })
      expect(agree.settings.monitoring.enabled).toBe(false)
    }),
  )

  it.effect("the later layer wins, whichever name it uses", () =>
    Effect.gen(function* () {
      const flagTarget = yield* Config.load({
        file: file("alias-under-flag", "monitoring:\n  enable_metrics: false\n"),
        env: {},
        flags: set("monitoring.enabled=true"),
      })
      expect(flagTarget.settings.monitoring.enabled).toBe(true)
      expect(Origin.render(flagTarget.provenance.get("monitoring.enabled")!)).toBe("flag --set monitoring.enabled")
      const flagAlias = yield* Config.load({
        file: file("target-under-flag", "monitoring:\n  enabled: true\n"),
        env: {},
        flags: set("monitoring.enable_metrics=false"),
      })
      expect(flagAlias.settings.monitoring.enabled).toBe(false)
      expect(Origin.render(flagAlias.provenance.get("monitoring.enabled")!)).toBe(
        "flag --set monitoring.enable_metrics",
      )
    }),
  )

  it.effect("enable_auth: false means auth_method none; true only contradicts none", () =>
    Effect.gen(function* () {
      const off = yield* Config.load({ file: file("auth-off", "security:\n  enable_auth: false\n"), env: {} })
      expect(off.settings.security.auth_method).toBe("none")
      expect(Origin.render(off.provenance.get("security.auth_method")!)).toBe("auth-off.yaml:2")
      const on = yield* Config.load({ file: file("auth-on", "security:\n  enable_auth: true\n"), env: {} })
      expect(on.settings.security.auth_method).toBe("mtls")
      expect(Origin.render(on.provenance.get("security.auth_method")!)).toBe("default")
      expect(
        yield* problems({ file: file("auth-contradicts", "security:\n  enable_auth: true\n  auth_method: none\n") }),
      ).toEqual([
        'rule | security.enable_auth = true (auth-contradicts.yaml:2): contradicts security.auth_method = "none"',
      ])
    }),
  )

  it.effect("rule issues and notes on a target name the key the operator wrote", () =>
    Effect.gen(function* () {
      const tls = file(
        "alias-tls",
        "network:\n  tls_cert_path: /nonexistent/c.pem\n  tls_key_path: /nonexistent/k.pem\n",
      )
      expect(yield* problems({ file: tls })).toEqual([
        'rule | network.tls_cert_path = "/nonexistent/c.pem" (alias-tls.yaml:2): cannot read /nonexistent/c.pem (ENOENT); TLS is on (network.enable_tls)',
        'rule | network.tls_key_path = "/nonexistent/k.pem" (alias-tls.yaml:3): cannot read /nonexistent/k.pem (ENOENT); TLS is on (network.enable_tls)',
      ])
      const bft = yield* Config.load({
        file: file("alias-bft", "dwcp:\n  consensus:\n    byzantine_tolerance: true\n"),
        env: {},
      })
      expect(bft.notes.map(Config.renderNote)).toEqual([
        expect.stringMatching(
          /^dwcp\.consensus\.byzantine_tolerance \(alias-bft\.yaml:3\): accepted, not in effect yet: /,
        ),
      ])
      // Defaults are not notes: nothing was set.
      expect((yield* Config.load({ env: {} })).notes).toEqual([])
    }),
  )
})
