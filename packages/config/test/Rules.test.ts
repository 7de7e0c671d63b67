// Rules and defaults that mutation testing (issue 29) showed no test pinned down.
import { readFileSync } from "node:fs"
import { hostname } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Config, ConfigError } from "../src/index.js"

const problems = (flags: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.map(Effect.flip(Config.load({ env, flags })), (e) => e.issues.map(ConfigError.renderIssue))

const set = (...pairs: ReadonlyArray<string>) => pairs.flatMap((p) => ["--set", p])

describe("defaults", () => {
  it.effect("render of an empty configuration is exactly the README's defaults block", () =>
    Effect.gen(function* () {
      const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8")
      const block = /## Defaults[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1]
      expect(block).toBeDefined()
      const expected = block!.replace("node_id: my-host # default: the host name", `node_id: ${hostname()}`)
      expect(Config.render(yield* Config.load({ env: {} }))).toBe(expected)
    }),
  )

  it.effect("boolean defaults", () =>
    Effect.gen(function* () {
      const { settings: s } = yield* Config.load({ env: {} })
      expect([s.monitoring.enabled, s.monitoring.tracing, s.network.enable_tls]).toEqual([true, false, true])
      expect([s.dwcp.transport.enable_rdma, s.dwcp.compression.enable_delta, s.dwcp.enable_auto_detection]).toEqual([
        true,
        true,
        true,
      ])
      expect([
        s.dwcp.enable_v3_transport,
        s.dwcp.enable_v3_compression,
        s.dwcp.enable_v3_prediction,
        s.dwcp.enable_v3_state_sync,
        s.dwcp.enable_v3_consensus,
        s.dwcp.enable_v3_placement,
      ]).toEqual([false, false, false, false, false, false])
    }),
  )
})

describe("storage URLs", () => {
  it.effect("each URL key checks its scheme, anchored at both ends", () =>
    Effect.gen(function* () {
      expect(
        yield* problems(
          set(
            "storage.postgres_url=mysql://db/x",
            "storage.redis_url=xredis://cache",
            "storage.cache_redis_url=redis://cache:6379 extra",
          ),
        ),
      ).toEqual([
        'storage.postgres_url = "mysql://db/x" (flag --set storage.postgres_url): expected a postgres:// URL',
        'storage.redis_url = "xredis://cache" (flag --set storage.redis_url): expected a redis:// or rediss:// URL',
        'storage.cache_redis_url = "<redacted>" (flag --set storage.cache_redis_url): expected a redis:// or rediss:// URL',
      ])
      expect(yield* problems(set("storage.postgres_url=xpostgres://db/x", "storage.redis_url=redis://a b"))).toEqual([
        'storage.postgres_url = "xpostgres://db/x" (flag --set storage.postgres_url): expected a postgres:// URL',
        'storage.redis_url = "<redacted>" (flag --set storage.redis_url): expected a redis:// or rediss:// URL',
      ])
      expect(yield* problems(set("storage.postgres_url=postgres://db/x y"))).toHaveLength(1)
      const ok = yield* Config.load({
        env: {},
        flags: set(
          "storage.backend=redis",
          "storage.postgres_url=postgresql://db/x",
          "storage.redis_url=rediss://cache:6380",
          "storage.cache_redis_url=redis://cache",
        ),
      })
      expect(ok.settings.storage.redis_url).toBe("rediss://cache:6380")
      expect(yield* problems(set("storage.backend=redis"))).toEqual([
        'storage.redis_url = "" (default): must be set when storage.backend is "redis"',
      ])
    }),
  )
})

describe("cross-field rules at their edges", () => {
  it.effect("initial_streams above max_streams; min equal to max is fine", () =>
    Effect.gen(function* () {
      expect(
        yield* problems(
          set("dwcp.transport.min_streams=4", "dwcp.transport.max_streams=8", "dwcp.transport.initial_streams=9"),
        ),
      ).toEqual([
        "dwcp.transport.initial_streams = 9 (flag --set dwcp.transport.initial_streams): must be between min_streams (4) and max_streams (8)",
      ])
      const { settings } = yield* Config.load({
        env: {},
        flags: set("dwcp.transport.min_streams=8", "dwcp.transport.max_streams=8", "dwcp.transport.initial_streams=8"),
      })
      expect(settings.dwcp.transport).toMatchObject({ min_streams: 8, max_streams: 8, initial_streams: 8 })
      const lowEdge = yield* Config.load({ env: {}, flags: set("dwcp.transport.initial_streams=4") })
      expect(lowEdge.settings.dwcp.transport.initial_streams).toBe(4)
      const highEdge = yield* Config.load({ env: {}, flags: set("dwcp.transport.initial_streams=256") })
      expect(highEdge.settings.dwcp.transport.initial_streams).toBe(256)
    }),
  )

  it.effect("cert_file is required when key_file is set", () =>
    Effect.gen(function* () {
      const key = join(import.meta.dirname, "..", "README.md")
      expect(yield* problems(set(`security.key_file=${key}`))).toEqual([
        'security.cert_file = "" (default): must be set when security.key_file is set (leave both empty to issue a node certificate)',
      ])
      // Without TLS neither file is needed (and mtls is not allowed).
      const plain = yield* Config.load({
        env: {},
        flags: set(`security.key_file=/nonexistent`, "network.enable_tls=false", "security.auth_method=none"),
      })
      expect(plain.settings.network.enable_tls).toBe(false)
    }),
  )

  it.effect("a heartbeat equal to the election timeout is refused; one just shorter is fine", () =>
    Effect.gen(function* () {
      expect(
        yield* problems(set("dwcp.consensus.heartbeat_interval=1s", "dwcp.consensus.election_timeout=1000ms")),
      ).toEqual([
        'dwcp.consensus.heartbeat_interval = "1s" (flag --set dwcp.consensus.heartbeat_interval): must be shorter than dwcp.consensus.election_timeout (1000ms)',
      ])
      const ok = yield* Config.load({ env: {}, flags: set("dwcp.consensus.heartbeat_interval=999ms") })
      expect(ok.settings.dwcp.consensus.heartbeat_interval).toBeDefined()
    }),
  )

  // @novacron/dwcp-hde owns the level: 0..22 as the design's table says (0: zstd's default), lz4 0..12.
  it.effect("compression level ranges per algorithm, at their edges; 0 is zstd's default", () =>
    Effect.gen(function* () {
      for (const [algorithm, level] of [
        ["lz4", 0],
        ["lz4", 12],
        ["zstd", 0],
        ["zstd", 22],
        ["adaptive", 1],
        ["none", 1],
        ["none", 22],
      ] as const) {
        const { settings } = yield* Config.load({
          env: {},
          flags: set(`dwcp.compression.algorithm=${algorithm}`, `dwcp.compression.level=${level}`),
        })
        expect(settings.dwcp.compression.level).toBe(level)
      }
      expect(yield* problems(set("dwcp.compression.algorithm=lz4", "dwcp.compression.level=13"))).toEqual([
        'dwcp.compression.level = 13 (flag --set dwcp.compression.level): expected an integer 0..12 for algorithm "lz4"',
      ])
      expect(yield* problems(set("dwcp.compression.level=23"))).toEqual([
        "dwcp.compression.level = 23 (flag --set dwcp.compression.level): expected an integer 0..22",
      ])
      expect(yield* problems(set("dwcp.compression.level=-1"))).toHaveLength(1)
    }),
  )

  it.effect("ports: 0 may repeat, a disabled metrics endpoint does not conflict, and tokens", () =>
    Effect.gen(function* () {
      const zero = yield* Config.load({
        env: {},
        flags: ["--bind-port", "0", "--health-check-port", "0", "--metrics-port", "0"],
      })
      expect(zero.settings.network.bind_port).toBe(0)
      const off = yield* Config.load({
        env: {},
        flags: set("monitoring.enabled=false", "monitoring.metrics_port=7700"),
      })
      expect(off.settings.monitoring.metrics_port).toBe(7700)
      expect(yield* problems(set("security.auth_method=token"))).toEqual([
        'security.tokens = [] (default): must list at least one token when security.auth_method is "token"',
      ])
    }),
  )

  it.effect("forced_mode may be set with auto-detection off", () =>
    Effect.gen(function* () {
      const { settings } = yield* Config.load({
        env: {},
        flags: set("dwcp.enable_auto_detection=false", "dwcp.forced_mode=hybrid"),
      })
      expect(settings.dwcp.forced_mode).toBe("hybrid")
    }),
  )
})
