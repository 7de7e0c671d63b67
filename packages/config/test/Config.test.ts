import { mkdtempSync, writeFileSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { basename, join } from "node:path"
import { inspect } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { Boot, Component } from "@novacron/init"
import { Cause, Context, Duration, Effect, Exit, Layer, Logger, Schema } from "effect"
import { stringify } from "yaml"
import { Config, ConfigError, Flags, Origin, Redact, Settings } from "../src/index.js"

const dir = mkdtempSync(join(tmpdir(), "novacron-config-"))
let n = 0
const file = (text: string, ext = "yaml") => {
  const path = join(dir, `c${n++}.${ext}`)
  writeFileSync(path, text)
  return path
}

/** Loads and returns the rendered issues (fails the test if loading succeeds). */
const problems = (options: Config.Options) =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(Config.load({ env: {}, ...options }))
    return error.issues.map(ConfigError.renderIssue)
  })

describe("defaults", () => {
  it.effect("decode {} gives the documented defaults", () =>
    Effect.gen(function* () {
      const { settings, provenance } = yield* Config.load({ env: {} })
      expect(settings.system.node_id).toBe(hostname())
      expect(settings.system.data_dir).toBe("./.novacron")
      expect(settings.system.resource_profile).toBe("minimal")
      expect(Duration.toMillis(settings.system.shutdown_timeout)).toBe(30_000)
      expect(Duration.toMillis(settings.dwcp.consensus.heartbeat_interval)).toBe(100)
      expect(settings.network.max_frame_size).toBe(16_777_216)
      expect(settings.dwcp.transport).toMatchObject({ min_streams: 4, max_streams: 256, initial_streams: 8 })
      expect([...provenance.values()].every((o) => o._tag === "Default")).toBe(true)
      expect(provenance.get("dwcp.compression.level")).toEqual(Origin.Origin.Default())
    }),
  )

  it.effect("round trip: the defaults written as YAML and as JSON load back to the same configuration", () =>
    Effect.gen(function* () {
      const defaults = Settings.defaults()
      const encoded = Schema.encodeSync(Settings.Settings)(defaults)
      expect(encoded.system?.shutdown_timeout).toBe("30s")
      expect(encoded.dwcp?.consensus?.heartbeat_interval).toBe("100ms")
      for (const path of [file(stringify(encoded)), file(JSON.stringify(encoded, null, 2), "json")]) {
        const loaded = yield* Config.load({ file: path, env: {} })
        expect(loaded.settings).toEqual(defaults)
        expect(loaded.encoded).toEqual(encoded)
        // Every value now comes from the file, with a line number.
        expect([...loaded.provenance.values()].every((o) => o._tag === "File" && o.line > 0)).toBe(true)
      }
    }),
  )
})

describe("precedence: defaults < file < env < flags", () => {
  const yaml = file("system:\n  node_id: from-file\n  log_level: warn\ndwcp:\n  compression:\n    level: 7\n")

  it.effect("each layer wins over the one below and says so", () =>
    Effect.gen(function* () {
      const fileOnly = yield* Config.load({ file: yaml, env: {} })
      expect(fileOnly.settings.system.log_level).toBe("warn")
      expect(fileOnly.provenance.get("system.log_level")).toEqual(
        Origin.Origin.File({ file: basename(yaml), line: 3, column: 3 }),
      )
      expect(fileOnly.settings.dwcp.compression.level).toBe(7)
      expect(Origin.render(fileOnly.provenance.get("dwcp.compression.level")!)).toBe(`${basename(yaml)}:6`)

      const env = { NOVACRON_LOG_LEVEL: "error", NOVACRON__DWCP__COMPRESSION__LEVEL: "9" }
      const withEnv = yield* Config.load({ file: yaml, env })
      expect(withEnv.settings.system.log_level).toBe("error")
      expect(withEnv.settings.dwcp.compression.level).toBe(9)
      expect(Origin.render(withEnv.provenance.get("system.log_level")!)).toBe("env NOVACRON_LOG_LEVEL")
      expect(Origin.render(withEnv.provenance.get("dwcp.compression.level")!)).toBe(
        "env NOVACRON__DWCP__COMPRESSION__LEVEL",
      )
      expect(withEnv.settings.system.node_id).toBe("from-file")

      const flags = ["--log-level", "debug", "--set", "dwcp.compression.level=11"]
      const withFlags = yield* Config.load({ file: yaml, env, flags })
      expect(withFlags.settings.system.log_level).toBe("debug")
      expect(withFlags.settings.dwcp.compression.level).toBe(11)
      expect(Origin.render(withFlags.provenance.get("system.log_level")!)).toBe("flag --log-level")
      expect(Origin.render(withFlags.provenance.get("dwcp.compression.level")!)).toBe(
        "flag --set dwcp.compression.level",
      )
      expect(Origin.render(withFlags.provenance.get("system.data_dir")!)).toBe("default")
    }),
  )

  it.effect("the five named variables, the general scheme winning over them, and --config", () =>
    Effect.gen(function* () {
      const { settings, provenance } = yield* Config.load({
        env: {
          NOVACRON_NODE_ID: "n7",
          NOVACRON_DATA_DIR: "/var/lib/novacron",
          NOVACRON_DWCP_MODE: "internet",
          NOVACRON_LISTEN_ADDRESS: "0.0.0.0",
          NOVACRON_LOG_LEVEL: "warn",
          NOVACRON__SYSTEM__LOG_LEVEL: "error",
          NOVACRON__NETWORK__PEERS: "10.0.0.1:7700,10.0.0.2:7700",
          NOVACRON__NETWORK__ENABLE_TLS: "false",
          NOVACRON__SECURITY__AUTH_METHOD: "none",
        },
        flags: ["--config", yaml],
      })
      expect(settings.system.node_id).toBe("n7")
      expect(settings.system.data_dir).toBe("/var/lib/novacron")
      expect(settings.dwcp.forced_mode).toBe("internet")
      expect(settings.network.listen_address).toBe("0.0.0.0")
      expect(settings.system.log_level).toBe("error")
      expect(Origin.render(provenance.get("system.log_level")!)).toBe("env NOVACRON__SYSTEM__LOG_LEVEL")
      expect(settings.network.peers).toEqual(["10.0.0.1:7700", "10.0.0.2:7700"])
      expect(settings.network.enable_tls).toBe(false)
      expect(settings.dwcp.compression.level).toBe(7)
    }),
  )

  it("Flags.parse leaves unrelated arguments alone", () => {
    const parsed = Flags.parse(["start", "--verbose", "-c", "x.yaml", "--dwcp-mode=hybrid", "--set", "a.b=c=d"])
    expect(parsed.file).toBe("x.yaml")
    expect(parsed.overrides.map((o) => [o.path, o.value])).toEqual([
      ["dwcp.forced_mode", "hybrid"],
      ["a.b", "c=d"],
    ])
  })
})

describe("validation reports every problem at once, with exact messages", () => {
  it.effect("type, range, enum, duration, pattern, unknown keys, rules: all in one error, in file order", () =>
    Effect.gen(function* () {
      const path = file(
        [
          "system:",
          "  log_level: verbose",
          "  max_concurrency: 0",
          "dwcp:",
          "  transprot:",
          "    min_streams: 4",
          "  forced_mode: cloud",
          "  detection_interval: 30 seconds",
          "  compression:",
          "    algorithm: lz4",
          "    level: 15",
          "  transport:",
          "    min_streams: 64",
          "    max_streams: 8",
          "network:",
          "  bind_port: 7780",
          '  peers: ["a:1", "bad peer"]',
          "security:",
          "  peers: []",
        ].join("\n"),
      )
      const name = path.split("/").at(-1)!
      expect(yield* problems({ file: path })).toEqual([
        `system.log_level = "verbose" (${name}:2): expected one of "debug", "info", "warn", "error"`,
        `system.max_concurrency = 0 (${name}:3): expected an integer 1..1024`,
        `dwcp.transprot (${name}:5): unknown key; did you mean "transport"?`,
        `dwcp.forced_mode = "cloud" (${name}:7): expected one of "", "datacenter", "internet", "hybrid"`,
        `dwcp.detection_interval = "30 seconds" (${name}:8): expected a duration such as "500ms", "30s", "5m" or "1h"`,
        `dwcp.compression.level = 15 (${name}:11): expected an integer 0..12 for algorithm "lz4"`,
        `dwcp.transport.min_streams = 64 (${name}:13): must be <= dwcp.transport.max_streams (8)`,
        `network.bind_port = 7780 (${name}:16): port 7780 is also used by system.health_check_port; non-zero ports must be distinct`,
        `network.peers[1] = "bad peer" (${name}:17): expected "host:port" or "node-id@host:port", got bad peer`,
        `security.peers (${name}:19): unknown key; did you mean "network.peers"?`,
      ])
    }),
  )

  it.effect("wrong shapes: a scalar for a section, a scalar for a list, a list item missing fields", () =>
    Effect.gen(function* () {
      const path = file(
        "system: 5\nnetwork:\n  peers: a:1\nsecurity:\n  tokens:\n    - name: x\n  trusted_nodes: [1]\n",
      )
      const name = basename(path)
      expect(yield* problems({ file: path })).toEqual([
        `system = 5 (${name}:1): expected a mapping of keys`,
        `network.peers = "a:1" (${name}:3): expected a list`,
        `security.tokens[0].role (${name}:6): is required`,
        `security.tokens[0].sha256 (${name}:6): is required`,
        `security.trusted_nodes[0] = 1 (${name}:7): expected "sha256:<64 hex digits>", "cn:<common name>", or a bare fingerprint or common name`,
      ])
    }),
  )

  it.effect("a scalar for a section whose defaults a rule reads is one issue, at the section", () =>
    Effect.gen(function* () {
      // The rules once merged 5 over the network defaults, lost enable_tls and blamed security's mTLS.
      const path = file("network: 5\n")
      expect(yield* problems({ file: path })).toEqual([`network = 5 (${basename(path)}:1): expected a mapping of keys`])
    }),
  )

  it.effect("a missing file and a YAML syntax error", () =>
    Effect.gen(function* () {
      expect(yield* problems({ file: join(dir, "absent.yaml") })).toEqual([
        `absent.yaml:0: cannot read configuration file ${join(dir, "absent.yaml")} (ENOENT)`,
      ])
      const bad = file("system:\n  node_id: a\n  node_id: b\n")
      const [issue] = yield* problems({ file: bad })
      expect(issue).toBe(`${bad.split("/").at(-1)}:3: syntax error: Map keys must be unique`)
    }),
  )

  it.effect("a JSON file reports lines too", () =>
    Effect.gen(function* () {
      const path = file('{\n  "system": {\n    "log_level": 3\n  }\n}\n', "json")
      expect(yield* problems({ file: path })).toEqual([
        `system.log_level = 3 (${path.split("/").at(-1)}:3): expected one of "debug", "info", "warn", "error"`,
      ])
    }),
  )

  it.effect("env and flag problems name the variable and the flag", () =>
    Effect.gen(function* () {
      expect(
        yield* problems({
          env: { NOVACRON__DWCP__COMPRESION__LEVEL: "3", NOVACRON_LOG_LEVEL: "loud", NOVACRON__DWCP: "x" },
          flags: ["--set", "dwcp.transport.max_streams=lots", "--set", "oops", "--bind-port", "70000"],
        }),
      ).toEqual([
        'system.log_level = "loud" (env NOVACRON_LOG_LEVEL): expected one of "debug", "info", "warn", "error"',
        "dwcp (env NOVACRON__DWCP): is a section; set one of its keys",
        'dwcp.compresion.level (env NOVACRON__DWCP__COMPRESION__LEVEL): unknown key; did you mean "dwcp.compression"?',
        "flag --set oops: expected --set key.path=value",
        "network.bind_port = 70000 (flag --bind-port): expected a port 0..65535 (0 = any free port)",
        'dwcp.transport.max_streams = "lots" (flag --set dwcp.transport.max_streams): expected an integer 1..256',
      ])
    }),
  )

  it.effect("malformed YAML in an override is reported as a value, not thrown", () =>
    Effect.gen(function* () {
      expect(
        yield* problems({ env: { NOVACRON__SECURITY__TOKENS: "{name: [", NOVACRON__NETWORK__MAX_CONNECTIONS: "[1," } }),
      ).toEqual([
        'network.max_connections = "[1," (env NOVACRON__NETWORK__MAX_CONNECTIONS): must be an integer from 1 to 1000000, got [1,',
        'security.tokens[0] = "{name: [" (env NOVACRON__SECURITY__TOKENS): expected a mapping of keys',
      ])
    }),
  )

  it.effect("cross-field rules", () =>
    Effect.gen(function* () {
      const missing = join(dir, "no-such.pem")
      expect(
        yield* problems({
          flags: [
            ...["--set", "dwcp.transport.initial_streams=2"],
            ...["--set", `security.cert_file=${missing}`],
            ...["--set", "storage.backend=postgres"],
            ...["--set", "dwcp.consensus.heartbeat_interval=2s"],
            ...["--set", "dwcp.enable_auto_detection=false"],
            ...["--set", "monitoring.metrics_port=7700"],
            ...["--set", "dwcp.compression.algorithm=zstd"],
            ...["--set", "dwcp.compression.level=23"],
          ],
        }),
      ).toEqual([
        // A value the schema refuses comes before the cross-field rules.
        "dwcp.compression.level = 23 (flag --set dwcp.compression.level): expected an integer 0..22",
        "dwcp.transport.initial_streams = 2 (flag --set dwcp.transport.initial_streams): must be between min_streams (4) and max_streams (256)",
        "monitoring.metrics_port = 7700 (flag --set monitoring.metrics_port): port 7700 is also used by network.bind_port; non-zero ports must be distinct",
        `security.cert_file = "${missing}" (flag --set security.cert_file): cannot read ${missing} (ENOENT); TLS is on (network.enable_tls)`,
        'dwcp.consensus.heartbeat_interval = "2s" (flag --set dwcp.consensus.heartbeat_interval): must be shorter than dwcp.consensus.election_timeout (1s)',
        'security.key_file = "" (default): must be set when security.cert_file is set (leave both empty to issue a node certificate)',
        'storage.postgres_url = "" (default): must be set when storage.backend is "postgres"',
        'dwcp.forced_mode = "" (default): must be "datacenter", "internet" or "hybrid" when dwcp.enable_auto_detection is false',
      ])
      expect(
        yield* problems({ env: { NOVACRON__NETWORK__ENABLE_TLS: "false", NOVACRON__SECURITY__AUTH_METHOD: "mtls" } }),
      ).toEqual([
        'security.auth_method = "mtls" (env NOVACRON__SECURITY__AUTH_METHOD): "mtls" requires network.enable_tls: true',
      ])
    }),
  )

  it.effect("readable certificate and key pass the TLS rule", () =>
    Effect.gen(function* () {
      const cert = file("cert", "pem")
      const key = file("key", "pem")
      const { settings } = yield* Config.load({
        env: {},
        flags: ["--set", `security.cert_file=${cert}`, "--set", `security.key_file=${key}`],
      })
      expect(settings.security.cert_file).toBe(cert)
    }),
  )

  it.effect("the formatter renders a header and one line per issue", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Config.load({ env: { NOVACRON_LOG_LEVEL: "x", NOVACRON_DWCP_MODE: "y" } }))
      expect(error).toBeInstanceOf(ConfigError.ConfigError)
      expect(ConfigError.format(error)).toBe(
        [
          "invalid configuration (2 problems):",
          '  - dwcp.forced_mode = "y" (env NOVACRON_DWCP_MODE): expected one of "", "datacenter", "internet", "hybrid"',
          '  - system.log_level = "x" (env NOVACRON_LOG_LEVEL): expected one of "debug", "info", "warn", "error"',
        ].join("\n"),
      )
      expect(error.message).toBe(ConfigError.format(error))
    }),
  )
})

describe("secrets are never printed", () => {
  const secretHash = "ab".repeat(32)
  const yaml = file(
    [
      "storage:",
      "  backend: postgres",
      "  postgres_url: postgres://app:hunter2@db:5432/novacron",
      "  cache_redis_url: redis://:redispw@cache:6379",
      "security:",
      "  auth_method: token",
      "  tokens:",
      `    - { name: ci, role: operator, sha256: ${secretHash} }`,
      // Not 64 hex digits (@novacron/security takes either case; the trailing "z" makes it invalid).
      `    - { name: ci, role: admin, sha256: "${secretHash.toUpperCase()}z" }`,
    ].join("\n"),
  )

  it.effect("not in error messages", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Config.load({ file: yaml, env: {} }))
      const text = ConfigError.format(error)
      expect(text).toContain('security.tokens[1].sha256 = "<redacted>"')
      expect(text).toContain('security.tokens[1].name = "ci"')
      expect(text).not.toContain(secretHash.toUpperCase())
    }),
  )

  it.effect("not when the loaded configuration itself is logged, stringified or inspected", () =>
    Effect.gen(function* () {
      const loaded = yield* Config.load({
        file: yaml,
        env: {},
        flags: ["--set", `security.tokens=[{name: ci, role: admin, sha256: ${secretHash}}]`],
      })
      const logged: Array<string> = []
      yield* Effect.log(loaded).pipe(
        Effect.provide(
          Logger.replace(
            Logger.defaultLogger,
            Logger.map(Logger.jsonLogger, (l) => logged.push(l)),
          ),
        ),
      )
      for (const text of [JSON.stringify(loaded), inspect(loaded, { depth: 10 }), logged.join("")]) {
        expect(text).toContain("postgres://app:***@db:5432/novacron")
        expect(text).not.toContain("hunter2")
        expect(text).not.toContain("redispw")
        expect(text).not.toContain(secretHash)
      }
    }),
  )

  it.effect("not in the rendered configuration, which still shows provenance", () =>
    Effect.gen(function* () {
      const loaded = yield* Config.load({
        file: yaml,
        env: {},
        flags: ["--set", `security.tokens=[{name: ci, role: admin, sha256: ${secretHash}}]`],
      })
      expect(loaded.settings.storage.postgres_url).toBe("postgres://app:hunter2@db:5432/novacron")
      const text = Config.render(loaded, { provenance: true })
      expect(text).not.toContain("hunter2")
      expect(text).not.toContain("redispw")
      expect(text).not.toContain(secretHash)
      expect(text).toContain("postgres_url: postgres://app:***@db:5432/novacron #")
      expect(text).toContain("sha256: <redacted>")
      expect(text).toMatch(/backend: postgres # c\d+\.yaml:2/)
      expect(text).toContain("# flag --set security.tokens")
      expect(Redact.redactUrl("redis://cache:6379")).toBe("redis://cache:6379")
    }),
  )
})

describe("as a layer and an @novacron/init component", () => {
  it.scoped("the layer builds and serves the configuration", () =>
    Effect.gen(function* () {
      const ctx = yield* Layer.build(Config.layer({ env: { NOVACRON_NODE_ID: "layered" } }))
      expect(Context.get(ctx, Config.NovacronConfig).settings.system.node_id).toBe("layered")
    }),
  )

  it.live("boots under the real kernel; a bad configuration halts the boot with the formatted issues", () =>
    Effect.gen(function* () {
      const good = yield* Effect.scoped(
        Effect.gen(function* () {
          const node = yield* Boot.boot([
            Component.place(Config.component({ env: { NOVACRON_NODE_ID: "booted" } }), {
              phase: "pre-init",
              criticality: "CRITICAL",
            }),
          ])
          const health = yield* node.health
          return {
            id: Context.get(node.context as Context.Context<Config.NovacronConfig>, Config.NovacronConfig).settings
              .system.node_id,
            health,
          }
        }),
      )
      expect(good.id).toBe("booted")
      // "unhealthy" contains "healthy": compare the status itself.
      expect(good.health.components.find((c) => c.name === "config")).toMatchObject({ health: "healthy" })
      const bad = yield* Effect.scoped(
        Boot.boot([
          Component.place(Config.component({ env: { NOVACRON_LOG_LEVEL: "loud" } }), {
            phase: "pre-init",
            criticality: "CRITICAL",
          }),
        ]),
      ).pipe(Effect.exit)
      expect(Exit.isFailure(bad)).toBe(true)
      // The kernel's error carries the formatted issue list.
      expect(Exit.isFailure(bad) && Cause.pretty(bad.cause)).toContain(
        'system.log_level = "loud" (env NOVACRON_LOG_LEVEL)',
      )
    }),
  )
})

describe("redaction of URLs (config print)", () => {
  it("masks a password holding @ or /, credential query parameters, and whatever does not parse", () => {
    expect(Redact.redactUrl("postgres://app:p@ss@db:5432/w0rd")).toBe("postgres://app:***@db:5432/w0rd")
    // An unencoded "/" ends the authority: it does not parse, so nothing of it is shown.
    expect(Redact.redactUrl("postgres://app:ss/w0rd@db/x")).toBe(Redact.mask)
    // This one parses (host "ss", path "/w0rd@db/x"): the "@" after the authority still masks it whole.
    expect(Redact.redactUrl("postgres://app:p@ss/w0rd@db/x")).toBe(Redact.mask)
    expect(Redact.redactUrl("rediss://cache:6380/0?password=Qu3ryS3cret&db=1")).toBe(
      "rediss://cache:6380/0?password=***&db=1",
    )
    for (const param of ["pass", "pwd", "secret", "token", "key", "auth", "sslpassword", "access_token", "API_KEY"]) {
      const out = Redact.redactUrl(`postgres://db/x?${param}=S3cretValue&sslmode=require`)
      expect(out).toBe(`postgres://db/x?${param}=***&sslmode=require`)
    }
    expect(Redact.redactUrl("redis://:redispw@cache:6379")).toBe("redis://:***@cache:6379")
    expect(Redact.redactUrl("redis://user@cache:6379")).toBe("redis://user@cache:6379")
    expect(Redact.redactUrl("not a url with hunter2")).toBe(Redact.mask)
    expect(Redact.redactUrl("")).toBe("")
  })

  it.effect("config print shows neither form of leaked password", () =>
    Effect.gen(function* () {
      const loaded = yield* Config.load({
        env: {},
        flags: [
          ...["--set", "storage.postgres_url=postgres://app:Sl@sh/Pw0rd@db:5432/novacron"],
          ...["--set", "storage.cache_redis_url=rediss://cache:6380?password=Qu3ryS3cret"],
        ],
      })
      const text = Config.render(loaded)
      expect(text).toContain(`postgres_url: ${Redact.mask}`)
      expect(text).toContain("cache_redis_url: rediss://cache:6380?password=***")
      for (const secret of ["Sl@sh", "Pw0rd", "Qu3ryS3cret"]) expect(text).not.toContain(secret)
    }),
  )
})

describe("bounds owned by the consumers of the configuration", () => {
  // @novacron/network owns the network section: 1 KiB..1 GiB frames, 100ms..10m to connect.
  it.effect("max_frame_size 1 KiB..1 GiB, conn_timeout 100ms..10m, cache_max_entries >= 1, each named by path", () =>
    Effect.gen(function* () {
      expect(
        yield* problems({
          flags: [
            ...["--set", "network.max_frame_size=99999999999"],
            ...["--set", "network.conn_timeout=0ms"],
            ...["--set", "storage.cache_max_entries=0"],
          ],
        }),
      ).toEqual([
        'network.conn_timeout = "0ms" (flag --set network.conn_timeout): must be between 100ms and 10m (a duration such as "500ms", "30s" or "5m")',
        "network.max_frame_size = 99999999999 (flag --set network.max_frame_size): must be an integer from 1024 to 1073741824, got 99999999999",
        "storage.cache_max_entries = 0 (flag --set storage.cache_max_entries): expected an integer 1..100000000",
      ])
      expect(
        yield* problems({
          flags: [
            ...["--set", "network.max_frame_size=1023", "--set", "network.conn_timeout=99ms"],
            ...["--set", "network.max_connections_per_ip=0"],
          ],
        }),
      ).toHaveLength(3)
      expect(
        yield* problems({
          flags: ["--set", "network.max_frame_size=1073741825", "--set", "network.conn_timeout=601s"],
        }),
      ).toHaveLength(2)
      const edge = yield* Config.load({
        env: {},
        flags: [
          ...["--set", "network.max_frame_size=1073741824", "--set", "network.conn_timeout=100ms"],
          ...["--set", "storage.cache_max_entries=1"],
        ],
      })
      expect(edge.settings.network.max_frame_size).toBe(1_073_741_824)
      expect(Duration.toMillis(edge.settings.network.conn_timeout)).toBe(100)
      const slow = yield* Config.load({ env: {}, flags: ["--set", "network.conn_timeout=10m"] })
      expect(Duration.toMinutes(slow.settings.network.conn_timeout)).toBe(10)
      expect(edge.settings.storage.cache_max_entries).toBe(1)
      const low = yield* Config.load({ env: {}, flags: ["--set", "network.max_frame_size=1024"] })
      expect(low.settings.network.max_frame_size).toBe(1024)
    }),
  )

  it.effect("trusted_nodes takes sha256:<hex>, cn:<name> and the bare forms; a bad fingerprint names its index", () =>
    Effect.gen(function* () {
      const print = "AB:".repeat(31) + "AB"
      const { settings } = yield* Config.load({
        env: {},
        flags: ["--set", `security.trusted_nodes=[sha256:${"ab".repeat(32)}, "sha256:${print}", cn:node-b, node-c]`],
      })
      expect(settings.security.trusted_nodes).toHaveLength(4)
      const issues = yield* problems({
        flags: ["--set", `security.trusted_nodes=[sha256:abc, "cn:", " ", cn:ok, "sha256:${"a".repeat(65)}"]`],
      })
      expect(issues.map((i) => i.split(" = ")[0])).toEqual([
        "security.trusted_nodes[0]",
        "security.trusted_nodes[1]",
        "security.trusted_nodes[2]",
        "security.trusted_nodes[4]",
      ])
    }),
  )
})
