import { execFile } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { join } from "node:path"
import { Readable, Writable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { promisify } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { Boot, Component } from "@novacron/init"
import { Chunk, Effect, Exit, Stream } from "effect"
import { Hde, HdeComponent, HdeSettings, NodeStreams } from "../src/index.js"
import { STREAM_HEADER_SIZE } from "../src/internal/format.js"
import { memoryImage, text } from "./fixtures.js"

const settings = (s: Partial<HdeSettings.CompressionSettings> = {}) => ({
  ...HdeSettings.defaults,
  workers: 2,
  algorithm: "zstd" as const,
  chunk_size: 4096,
  ...s,
})

describe("worker pool", () => {
  it.scoped("back-pressure: a stalled consumer stops the encoder from pulling input", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings(), { inflight: 3 })
      let pulled = 0
      const source = Stream.fromIterable(Array.from({ length: 400 }, (_, i) => text(4096 + i))).pipe(
        Stream.tap(() => Effect.sync(() => pulled++)),
      )
      const pull = yield* Stream.toPull(hde.encodeStream()(source))
      let emitted = 0
      const marks: Array<number> = []
      for (let i = 0; i < 20; i++) {
        emitted += Chunk.size(yield* pull)
        // Let the pipeline run as far as it can while we hold off.
        for (let k = 0; k < 50; k++) yield* Effect.yieldNow()
        yield* Effect.promise(() => new Promise((r) => setImmediate(r)))
        marks.push(pulled)
      }
      // 20 pulls emitted ≤ 20 frames; the source was read only a bounded distance ahead
      // (in-flight chunks, whose tickets wait in the queue, + the rechunker's input element).
      expect(emitted).toBeLessThanOrEqual(20)
      expect(pulled).toBeLessThan(emitted + 3 * 2 + 8)
      expect(pulled).toBeLessThan(400)
    }),
  )

  it.scoped("uses every worker and keeps frames in order", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings({ chunk_size: 16384 }))
      const data = memoryImage(256)
      const encoded = yield* hde.encode(data)
      expect((yield* hde.decode(encoded)).equals(data)).toBe(true)
      expect((yield* hde.stats).workers).toBe(2)
    }),
  )

  it.scoped("a transfer abandoned midway does not disturb the next one", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings({ chunk_size: 16384 }))
      const data = memoryImage(256)
      // The consumer stops after 3 frames: the chunks still in flight are dropped.
      for (let k = 0; k < 5; k++) {
        const head = yield* Stream.runCollect(hde.encodeStream()(Stream.make(data)).pipe(Stream.take(3)))
        expect(head.length).toBe(3)
      }
      const encoded = yield* hde.encode(data)
      expect((yield* hde.decode(encoded)).equals(data)).toBe(true)
    }),
  )

  it.scoped("a worker that cannot start fails the transfer with EncodeError, not the process", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings(), { worker: { entry: "throw new Error('boom')", eval: true } })
      const exit = yield* Effect.exit(hde.encode(text(10_000)))
      expect(Exit.isFailure(exit) && String(exit.cause)).toContain("EncodeError")
    }),
  )

  it.scoped("a worker that dies mid-transfer fails that transfer with EncodeError", () =>
    Effect.gen(function* () {
      const dies = "require('node:worker_threads').parentPort.on('message', () => process.exit(3))"
      const hde = yield* Hde.make(settings(), { worker: { entry: dies, eval: true } })
      const exit = yield* Effect.exit(hde.encode(text(50_000)))
      expect(Exit.isFailure(exit) && String(exit.cause)).toContain("worker exited with code 3")
    }),
  )

  it.scoped("the pool's threads end with the scope", () =>
    Effect.gen(function* () {
      const hde = yield* Effect.scoped(Hde.make(settings()))
      const exit = yield* Effect.exit(hde.encode(text(10_000)))
      expect(Exit.isFailure(exit) && String(exit.cause)).toContain("pool closed")
    }),
  )

  it.scopedLive(
    "the built package (dist, plain JS) starts its workers too",
    () =>
      Effect.gen(function* () {
        const pkg = join(import.meta.dirname, "..")
        // The package's own tsup entries, into a scratch dir inside the package (so that its
        // node_modules resolve), without .d.ts; then a plain node process uses the bundle.
        const dist = mkdtempSync(join(pkg, ".dist-test-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dist, { recursive: true, force: true })))
        const { entry } = yield* Effect.promise(() => import("../tsup.config.js"))
        const run = (file: string, args: ReadonlyArray<string>, cwd: string) =>
          Effect.promise(() => promisify(execFile)(file, [...args], { cwd, encoding: "utf8" }))
        const tsup = join(pkg, "node_modules/tsup/dist/cli-default.js")
        yield* run(
          process.execPath,
          [
            tsup,
            "--no-config",
            ...Object.entries(entry).map(([k, v]) => `--entry.${k}=${v}`),
            "--format=esm",
            "--target=node20",
            `--out-dir=${dist}`,
            "--silent",
          ],
          pkg,
        )
        const script = `
          import { Effect } from "effect"
          import { Hde, HdeSettings } from "./index.js"
          const data = Buffer.from("dist ".repeat(50000))
          const r = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
            const hde = yield* Hde.make({ ...HdeSettings.defaults, workers: 2, chunk_size: 65536 })
            const back = yield* hde.decode(yield* hde.encode(data))
            return { same: back.equals(data), stats: yield* hde.stats }
          })))
          console.log(JSON.stringify({ same: r.same, chunks: r.stats.chunks, workers: r.stats.workers }))
        `
        const { stdout } = yield* run(process.execPath, ["--input-type=module", "-e", script], dist)
        expect(JSON.parse(stdout)).toEqual({ same: true, chunks: 4, workers: 2 })
      }),
    60_000,
  )
})

describe("Node streams", () => {
  it.scoped("pipeline through encoder and decoder", () =>
    Effect.gen(function* () {
      const hde = yield* Hde.make(settings({ chunk_size: 65536 }))
      const data = memoryImage(64)
      const collect = (into: Array<Buffer>) =>
        new Writable({
          write(c, _e, cb) {
            into.push(c)
            cb()
          },
        })
      const frames: Array<Buffer> = []
      const pieces = Array.from({ length: 32 }, (_, i) => data.subarray(i * 8192, (i + 1) * 8192))
      yield* Effect.promise(() => pipeline(Readable.from(pieces), NodeStreams.encoder(hde), collect(frames)))
      const back: Array<Buffer> = []
      yield* Effect.promise(() => pipeline(Readable.from(frames), NodeStreams.decoder(hde), collect(back)))
      expect(Buffer.concat(back).equals(data)).toBe(true)
      const bad = Buffer.concat(frames)
      bad[100] = (bad[100] ?? 0) ^ 1
      const failed = yield* Effect.promise(() =>
        pipeline(Readable.from([bad]), NodeStreams.decoder(hde), collect([])).then(
          () => undefined,
          (e: unknown) => e,
        ),
      )
      // Byte 100 is in the first chunk's payload: its checksum (header byte 24) does not match.
      expect(String(failed)).toContain(`hde frame: BadChecksum at byte ${STREAM_HEADER_SIZE + 24}:`)
    }),
  )
})

describe("@novacron/init component", () => {
  it.scoped("boots from dwcp.compression settings, is healthy, serves, and stops with the boot", () =>
    Effect.gen(function* () {
      const s = yield* HdeSettings.decode({ algorithm: "lz4", workers: 1, chunk_size: 65536 })
      const spec = HdeComponent.component(s)
      // A bare spec: the host's boot table owns its placement.
      expect([spec.name, "phase" in spec, "criticality" in spec]).toEqual(["dwcp-hde", false, false])
      const node = yield* Boot.boot([Component.place(spec, { phase: "services", criticality: "DEGRADED" })])
      const health = yield* node.health
      // Exact values: a substring match on "healthy" would also pass on "unhealthy".
      expect(health.status).toBe("healthy")
      expect(health.components.find((c) => c.name === "dwcp-hde")?.health).toBe("healthy")
      const hde = yield* Effect.provide(Hde.Hde, node.context as never) as Effect.Effect<Hde.Hde>
      const data = text(100_000)
      expect((yield* hde.decode(yield* hde.encode(data))).equals(data)).toBe(true)
      expect(Object.keys((yield* hde.stats).codecs)).toEqual(["lz4"])
      yield* node.shutdown
      const exit = yield* Effect.exit(hde.encode(data))
      expect(Exit.isFailure(exit)).toBe(true)
    }),
  )
})
