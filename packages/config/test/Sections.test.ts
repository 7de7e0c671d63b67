// Issue 16: one owner per setting. What the loader accepts, every package that consumes a section
// decodes to the same values: the embedded defaults, the design's example, and values at the bounds
// where the config's copy and the package's used to disagree.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { CacheSettings } from "@novacron/cache"
import * as ClusterSettings from "@novacron/cluster/ClusterSettings"
import * as StorageSettings from "@novacron/database/StorageSettings"
import * as TransportSettings from "@novacron/dwcp-amst/TransportSettings"
import * as HdeSettings from "@novacron/dwcp-hde/HdeSettings"
import * as NetworkSettings from "@novacron/network/NetworkSettings"
import * as SecuritySettings from "@novacron/security/SecuritySettings"
import { Effect, Schema } from "effect"
import { Config } from "../src/index.js"

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
  expect(s.security).toMatchObject(SecuritySettings.decode(e.security))
  expect(s.storage).toMatchObject(CacheSettings.decode(e.storage))
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
      ]) {
        const error = yield* Effect.flip(Config.load({ env: {}, flags }))
        expect(error.issues).toHaveLength(1)
        expect(error.issues[0]!.kind).toBe("invalid")
      }
    }),
  )
})
