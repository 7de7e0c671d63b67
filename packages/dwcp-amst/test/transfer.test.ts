import { createHash } from "node:crypto"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Receiver, Sender, Source, TransportSettings } from "../src/index.js"
import { seeded, startProxy } from "./proxy.js"

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")
const payload = (n: number, seed: number) => {
  const r = seeded(seed)
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i += 4) b.writeUInt32LE((r() * 2 ** 32) >>> 0, Math.min(i, n - 4))
  return b
}
const tmp = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "amst-"))),
  (d) => Effect.promise(() => rm(d, { recursive: true, force: true })),
)
const settings = (over: Partial<TransportSettings.TransportSettings> = {}) => ({
  ...TransportSettings.defaults,
  chunk_size: 64 * 1024,
  min_streams: 2,
  max_streams: 8,
  initial_streams: 4,
  ...over,
})

describe("transfer", () => {
  it.live("moves a buffer over several streams with equal hashes", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir })
      const data = payload(3 * 1024 * 1024 + 123, 1)
      const progress: Array<number> = []
      const r = yield* Sender.send({
        host: rx.host,
        port: rx.port,
        source: Source.fromBuffer(data, "image.raw"),
        settings: settings(),
        onProgress: (p) => progress.push(p.bytes),
      })
      const done = yield* rx.awaitCompleted(r.transferId)
      expect(r.sha256).toBe(sha(data))
      expect(done.sha256).toBe(sha(data))
      const written = yield* Effect.promise(() => readFile(join(dir, "image.raw")))
      expect(written.equals(data)).toBe(true)
      expect(r.maxStreamsUsed).toBeGreaterThanOrEqual(2)
      expect(progress.at(-1)).toBe(data.length)
    }).pipe(Effect.scoped),
  )
})
