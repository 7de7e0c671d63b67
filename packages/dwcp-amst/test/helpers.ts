import { createHash } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { xxh3 } from "@node-rs/xxhash"
import { Effect } from "effect"
import { TransportSettings } from "../src/index.js"
import { seeded } from "./proxy.js"

export const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

/** XXH3-64 in one call (the engines hash incrementally), hex. */
export const xxh = (b: Uint8Array) => xxh3.xxh64(b).toString(16).padStart(16, "0")

/** The expected end-to-end digest of `b` by algorithm. */
export const digestOf = (b: Uint8Array, integrity: "sha256" | "xxh3-64") => (integrity === "sha256" ? sha(b) : xxh(b))

/** Pseudo-random bytes from a seed (incompressible, reproducible). */
export const payload = (n: number, seed: number) => {
  const r = seeded(seed)
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32LE((r() * 2 ** 32) >>> 0, i)
  for (let i = n - (n % 4); i < n; i++) b[i] = (r() * 256) | 0
  return b
}

export const tmp = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "amst-"))),
  (d) => Effect.promise(() => rm(d, { recursive: true, force: true })),
)

/** Small chunks so a few MiB make hundreds of frames. */
export const settings = (
  over: Partial<TransportSettings.TransportSettings> = {},
): TransportSettings.TransportSettings => ({
  ...TransportSettings.defaults,
  chunk_size: 64 * 1024,
  min_streams: 2,
  max_streams: 8,
  initial_streams: 4,
  ...over,
})

export const acquire = <A>(start: () => Promise<A & { close(): Promise<void> }>) =>
  Effect.acquireRelease(Effect.promise(start), (p) => Effect.promise(() => p.close()))
