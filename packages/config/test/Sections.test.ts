// Issue 16: one owner per setting. What the loader accepts, every package that consumes a section
// decodes to the same values: the embedded defaults, the design's example, and values at the bounds
// where the config's copy and the package's used to disagree.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as CacheSettings from "@novacron/cache/CacheSettings"
import * as ClusterSettings from "@novacron/cluster/ClusterSettings"
import * as StorageSettings from "@novacron/database/StorageSettings"
import * as TransportSettings from "@novacron/dwcp-amst/TransportSettings"
import * as HdeSettings from "@novacron/dwcp-hde/HdeSettings"
import * as PlacementSettings from "@novacron/dwcp-itp/PlacementSettings"
import * as DetectionSettings from "@novacron/environment/DetectionSettings"
import * as SystemSettings from "@novacron/init/SystemSettings"
import { Logging } from "@novacron/logging"
import * as LoggingSettings from "@novacron/logging/LoggingSettings"
import * as NetworkSettings from "@novacron/network/NetworkSettings"
import { ResourceValidator } from "@novacron/resources"
import * as ResourceSettings from "@novacron/resources/ResourceSettings"
import * as SecuritySettings from "@novacron/security/SecuritySettings"
import { Effect, Either, Schema } from "effect"
import { Config, Settings } from "../src/index.js"

const dir = mkdtempSync(join(tmpdir(), "novacron-sections-"))
const write = (name: string, text: string) => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}
const example = readFileSync(join(import.meta.dirname, "..", "..", "..", "examples", "novacron.yaml"), "utf8")
  .replace("/etc/novacron/certs/server.crt", write("server.crt", "cert"))
  .replace("/etc/novacron/certs/server.key", write("server.key", "key"))

/** Decodes each file-form section through its package's schema and compares with the loader's values. */
const throughEveryPackage = (loaded: Config.Loaded) => {
  const { settings: s, encoded: e } = loaded
  expect(s.network).toEqual(NetworkSettings.decode(e.network))
  expect(s.dwcp.transport).toMatchObject(
    Schema.decodeUnknownSync(TransportSettings.TransportSettings)(e.dwcp?.transport),
  )
  expect(s.dwcp.compression).toMatchObject(
    Schema.decodeUnknownSync(HdeSettings.CompressionSettings)(e.dwcp?.compression),
  )
  expect(s.cluster).toEqual(ClusterSettings.decode(e.cluster))
  // The loader adds the design keys a package does not act on yet (stream_timeout, enable_ml_model,
  // enable_cache, enable_encryption): the package's own keys decode to the same values.
  expect(s.storage).toMatchObject(StorageSettings.decode(e.storage))
  expect(s.security).toEqual(SecuritySettings.decode(e.security))
  expect(s.storage).toMatchObject(CacheSettings.decode(e.storage))
  expect(s.system).toMatchObject(SystemSettings.decode(e.system))
  expect(s.system).toMatchObject(ResourceSettings.decode(e.system))
  expect(s.logging).toEqual(LoggingSettings.decode(e.logging))
  expect(s.dwcp.placement).toEqual(Schema.decodeUnknownSync(PlacementSettings.PlacementSection)(e.dwcp?.placement))
  expect(s.dwcp).toMatchObject(Schema.decodeUnknownSync(DetectionSettings.DetectionSettings)(e.dwcp))
  // The runtime settings the host builds from these sections decode to the same values too.
  const system = { data_dir: s.system.data_dir, log_level: e.system?.log_level }
  expect(Schema.decodeUnknownSync(Logging.Settings)({ ...e.logging, ...system })).toEqual({ ...s.logging, ...system })
  expect(Schema.decodeUnknownSync(ResourceValidator.Settings)({ ...e.system })).toMatchObject(
    ResourceSettings.decode(e.system),
  )
}

describe("every section decodes through the package that owns it", () => {
  it.effect("the embedded defaults", () =>
    Effect.gen(function* () {
      throughEveryPackage(yield* Config.load({ env: {} }))
    }),
  )

  it.effect("the design's example, every key set", () =>
    Effect.gen(function* () {
      throughEveryPackage(yield* Config.load({ file: write("novacron.yaml", example), env: {} }))
    }),
  )

  it.effect("at the bounds where the loader's copy and the package's disagreed", () =>
    Effect.gen(function* () {
      const set = (...pairs: ReadonlyArray<string>) => pairs.flatMap((p) => ["--set", p])
      for (const flags of [
        // The package's upper bounds, which the loader used to refuse.
        set("network.max_frame_size=1073741824", "network.max_connections_per_ip=1000000"),
        set("network.peers=[node-b@10.0.0.2:7700]"),
        set("dwcp.compression.workers=256", "dwcp.compression.chunk_size=67108864"),
        set("dwcp.transport.chunk_size=16777216"),
        set("cluster.token_ttl=168h", "cluster.max_request_bytes=1048576"),
        set("storage.cache_max_entries=100000000"),
        set("logging.max_size=4096", "logging.max_files=100"),
        set("system.min_cpus=4096", "system.max_concurrency=1024"),
        set("dwcp.placement.seed=4294967295", "dwcp.placement.fragmentation_half_life=1000000000"),
        set(`security.tokens=[{name: ci, role: admin, sha256: ${"AB".repeat(32)}}]`, "security.auth_method=token"),
      ]) {
        throughEveryPackage(yield* Config.load({ env: {}, flags }))
      }
      // The package's lower bounds, which the loader used to accept and the package then refused.
      for (const flags of [
        set("dwcp.compression.algorithm=none", "dwcp.compression.level=23"),
        set("dwcp.compression.workers=257"),
        set("dwcp.compression.chunk_size=1024"),
        set("dwcp.transport.chunk_size=1024"),
        set("network.conn_timeout=1h"),
        set("storage.cache_max_entries=100000001"),
        // The packages' own copies used to accept these (a negative seed, an unbounded half-life,
        // a 1-byte rotation size); the config refused them.
        set("dwcp.placement.seed=-1"),
        set("dwcp.placement.fragmentation_half_life=1000000001"),
        set("logging.max_size=4095"),
        set("system.min_cpus=4097"),
      ]) {
        const error = yield* Effect.flip(Config.load({ env: {}, flags }))
        expect(error.issues).toHaveLength(1)
        expect(error.issues[0]!.kind).toBe("invalid")
      }
    }),
  )
})

describe("one owner per key", () => {
  it("the loader's schema for each key is the owning package's, not a copy", () => {
    const system = Settings.System.fields
    for (const [key, field] of Object.entries(SystemSettings.SystemSettings.fields)) {
      expect([key, system[key as keyof typeof system]]).toEqual([key, field])
    }
    expect(system.log_level).toBe(LoggingSettings.SystemLogLevel.fields.log_level)
    for (const key of ["resource_profile", "min_cpus", "min_memory", "min_disk"] as const) {
      expect(system[key]).toBe(ResourceSettings.ResourceSettings.fields[key])
    }
    expect(Settings.Logging).toBe(LoggingSettings.LoggingSettings)
    expect(Settings.Placement).toBe(PlacementSettings.PlacementSection)
    expect(Settings.Dwcp.fields.enable_v3_placement).toBe(
      PlacementSettings.PlacementSettings.fields.enable_v3_placement,
    )
    for (const key of ["enable_auto_detection", "forced_mode", "detection_interval"] as const) {
      expect(Settings.Dwcp.fields[key]).toBe(DetectionSettings.DetectionSettings.fields[key])
    }
  })

  it("the packages' runtime settings refuse what the loader refuses (they used to keep looser copies)", () => {
    const refused = (schema: Schema.Schema.AnyNoContext, raw: unknown) =>
      Either.isLeft(Schema.decodeUnknownEither(schema)(raw))
    expect(refused(Logging.Settings, { max_size: 4095 })).toBe(true)
    expect(refused(Logging.Settings, { max_files: 0 })).toBe(true)
    expect(refused(PlacementSettings.PlacementSettings, { placement: { seed: -1 } })).toBe(true)
    expect(refused(PlacementSettings.PlacementSettings, { placement: { fragmentation_half_life: 1e9 + 1 } })).toBe(true)
    expect(refused(ResourceValidator.Settings, { min_cpus: 4097 })).toBe(true)
    expect(refused(ResourceValidator.Settings, { min_memory: -1 })).toBe(true)
    expect(refused(Logging.Settings, {})).toBe(false)
  })

  it("the design's keys not in effect yet are owned by the package that will act on them", () => {
    expect(Settings.Security).toBe(SecuritySettings.SecuritySettings)
    expect(SecuritySettings.decode({})).toMatchObject({ enable_encryption: true, encryption_algo: "aes-256-gcm" })
    expect(CacheSettings.decode({}).enable_cache).toBe(true)
  })

  it("the cache keys of storage belong to the cache alone", () => {
    const storage = Settings.Storage.fields
    for (const key of ["cache_ttl", "cache_max_entries", "cache_redis_url", "enable_cache"] as const) {
      expect(storage[key]).toBe(CacheSettings.CacheSettings.fields[key])
      expect(Object.keys(StorageSettings.StorageSettings.fields)).not.toContain(key)
    }
  })
})
