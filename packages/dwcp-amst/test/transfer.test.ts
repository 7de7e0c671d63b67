import { execFileSync } from "node:child_process"
import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { Receiver, Sender, Source } from "../src/index.js"
import { acquire, digestOf, payload, settings, tmp, xxh } from "./helpers.js"
import { seeded, startProxy } from "./proxy.js"

describe("transfer", () => {
  it.live("moves a buffer over several streams with equal hashes and progress to the end", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir })
      const data = payload(3 * 1024 * 1024 + 123, 1)
      const progress: Array<Sender.Progress> = []
      const r = yield* Sender.send({
        host: rx.host,
        port: rx.port,
        source: Source.fromBuffer(data, "image.raw"),
        settings: settings(),
        onProgress: (p) => progress.push(p),
      })
      const done = yield* rx.awaitCompleted(r.transferId)
      expect(r.digest).toBe(digestOf(data, r.integrity))
      expect(done.digest).toBe(digestOf(data, done.integrity))
      const written = yield* Effect.promise(() => readFile(join(dir, "image.raw")))
      expect(written.equals(data)).toBe(true)
      expect(r.maxStreamsUsed).toBeGreaterThanOrEqual(2)
      const last = progress.at(-1)!
      expect(last.bytes).toBe(data.length)
      expect(last.eta).toBe(0)
      expect(progress.every((p, i) => i === 0 || p.bytes >= progress[i - 1]!.bytes)).toBe(true)
    }).pipe(Effect.scoped),
  )

  it.live("moves an empty file and a file from disk", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const src = yield* tmp
      const rx = yield* Receiver.listen({ dir })
      const empty = yield* Sender.send({
        host: rx.host,
        port: rx.port,
        source: Source.fromBuffer(Buffer.alloc(0), "empty"),
        settings: settings(),
      })
      expect(empty.digest).toBe(digestOf(Buffer.alloc(0), empty.integrity))
      const data = payload(700_001, 2)
      const path = join(src, "disk.img")
      yield* Effect.promise(() => import("node:fs/promises").then((fs) => fs.writeFile(path, data)))
      const r = yield* Effect.scoped(
        Effect.flatMap(Source.fromFile(path), (source) =>
          Sender.send({ host: rx.host, port: rx.port, source, settings: settings() }),
        ),
      )
      expect((yield* Effect.promise(() => readFile(join(dir, "disk.img")))).equals(data)).toBe(true)
      expect(r.digest).toBe(digestOf(data, r.integrity))
    }).pipe(Effect.scoped),
  )

  it.live("keeps integrity when streams have different delays (chunks arrive out of order)", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir, window: 1024 * 1024 })
      const proxy = yield* acquire(() => startProxy({ target: rx.port, delayMs: (id) => [0, 7, 19, 31][id % 4]! }))
      const data = payload(4 * 1024 * 1024, 3)
      const r = yield* Sender.send({
        host: "127.0.0.1",
        port: proxy.port,
        source: Source.fromBuffer(data, "reorder.bin"),
        settings: settings(),
        streams: 4,
      })
      const done = yield* rx.awaitCompleted(r.transferId)
      expect(done.digest).toBe(digestOf(data, done.integrity))
      expect((yield* Effect.promise(() => readFile(join(dir, "reorder.bin")))).equals(data)).toBe(true)
    }).pipe(Effect.scoped),
  )

  it.live("sends on the first stream while the others are still connecting", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir })
      // Every connection but the first answers its HELLO after 2 × 1.5 s.
      const proxy = yield* acquire(() => startProxy({ target: rx.port, delayMs: (id) => (id === 0 ? 0 : 1500) }))
      const data = payload(1024 * 1024, 9)
      const r = yield* Sender.send({
        host: "127.0.0.1",
        port: proxy.port,
        source: Source.fromBuffer(data, "early.bin"),
        settings: settings(),
        streams: 4,
      })
      expect(r.digest).toBe(digestOf(data, r.integrity))
      expect(yield* rx.awaitCompleted(r.transferId)).toMatchObject({
        digest: digestOf(data, r.integrity),
        integrity: r.integrity,
      })
      expect(r.durationMs).toBeLessThan(1500)
    }).pipe(Effect.scoped),
  )

  it.live("re-sends a killed stream's chunks on the others", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir })
      let killed = false
      const proxy = yield* acquire(() =>
        startProxy({
          target: rx.port,
          delayMs: (id) => (id === 1 ? 20 : 0),
          // Whichever later stream first carries 100 kB dies: the first stream starts sending before
          // the others connect, so on a busy machine a given one may carry nothing.
          onForward: (link) => {
            if (!killed && link.id !== 0 && link.forwarded > 100_000) {
              killed = true
              link.kill()
            }
          },
        }),
      )
      const data = payload(16 * 1024 * 1024, 4)
      const events: Array<Sender.SenderEvent> = []
      const r = yield* Sender.send({
        host: "127.0.0.1",
        port: proxy.port,
        source: Source.fromBuffer(data, "killed.bin"),
        settings: settings(),
        streams: 4,
        onEvent: (e) => events.push(e),
      })
      expect(killed).toBe(true)
      expect(r.deadStreams).toBeGreaterThanOrEqual(1)
      expect(r.resentChunks).toBeGreaterThan(0)
      expect(r.sessions).toBe(1)
      expect(events.some((e) => e._tag === "StreamDied" && e.unacked > 0)).toBe(true)
      expect(yield* rx.awaitCompleted(r.transferId)).toMatchObject({
        digest: digestOf(data, r.integrity),
        integrity: r.integrity,
      })
    }).pipe(Effect.scoped),
  )

  it.live("drops a stalled stream (black hole) and finishes on the others", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir })
      let stalled = false
      const proxy = yield* acquire(() =>
        startProxy({
          target: rx.port,
          onForward: (link) => {
            if (!stalled && link.id === 2 && link.forwarded > 200_000) {
              stalled = true
              link.stall()
            }
          },
        }),
      )
      const data = payload(3 * 1024 * 1024, 5)
      const events: Array<Sender.SenderEvent> = []
      const r = yield* Sender.send({
        host: "127.0.0.1",
        port: proxy.port,
        source: Source.fromBuffer(data, "stall.bin"),
        settings: settings(),
        streams: 4,
        stallTimeout: 400,
        onEvent: (e) => events.push(e),
      })
      expect(stalled).toBe(true)
      expect(events.some((e) => e._tag === "StreamDied" && e.cause.startsWith("stalled"))).toBe(true)
      expect(yield* rx.awaitCompleted(r.transferId)).toMatchObject({
        digest: digestOf(data, r.integrity),
        integrity: r.integrity,
      })
    }).pipe(Effect.scoped),
  )

  it.live("resumes from the acknowledged offset after every stream is cut", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir })
      let cut = false
      const proxy = yield* acquire(() =>
        startProxy({
          target: rx.port,
          onForward: (_link, p) => {
            const total = p.links.reduce((n, l) => n + l.forwarded, 0)
            if (!cut && total > 1_500_000) {
              cut = true
              p.killAll()
            }
          },
        }),
      )
      const data = payload(4 * 1024 * 1024, 6)
      const events: Array<Sender.SenderEvent> = []
      const r = yield* Sender.send({
        host: "127.0.0.1",
        port: proxy.port,
        source: Source.fromBuffer(data, "resume.bin"),
        settings: settings(),
        streams: 3,
        reconnectDelay: 20,
        onEvent: (e) => events.push(e),
      })
      expect(cut).toBe(true)
      expect(r.sessions).toBe(2)
      const resumed = events.find((e) => e._tag === "Resumed")
      expect(resumed?._tag === "Resumed" && resumed.offset > 0 && resumed.offset < data.length).toBe(true)
      expect(yield* rx.awaitCompleted(r.transferId)).toMatchObject({
        digest: digestOf(data, r.integrity),
        integrity: r.integrity,
      })
      expect((yield* Effect.promise(() => readFile(join(dir, "resume.bin")))).equals(data)).toBe(true)
    }).pipe(Effect.scoped),
  )

  it.live("resumes from the receiver's persisted progress after the sender gave up and the receiver restarted", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const data = payload(4 * 1024 * 1024, 7)
      const source = Source.fromBuffer(data, "restart.bin")
      const first = yield* Effect.scoped(
        Effect.gen(function* () {
          let written = 0
          const rx = yield* Receiver.listen({ dir, persistEvery: 256 * 1024, onProgress: (p) => (written = p.bytes) })
          const proxy = yield* acquire(() =>
            startProxy({
              target: rx.port,
              onForward: (_l, p) => {
                if (written > 1_500_000) {
                  p.refuse(true)
                  p.killAll()
                }
              },
            }),
          )
          return yield* Effect.either(
            Sender.send({
              host: "127.0.0.1",
              port: proxy.port,
              source,
              settings: settings(),
              maxReconnects: 1,
              reconnectDelay: 10,
            }),
          )
        }),
      )
      expect(Either.isLeft(first)).toBe(true)
      const err = Either.getLeft(first).pipe((o) => (o._tag === "Some" ? o.value : undefined))!
      expect(err.reason).toBe("gave-up")
      expect(err.acknowledged).toBeGreaterThan(0)
      // A new receiver process on the same directory: only the persisted progress survives.
      const rx = yield* Receiver.listen({ dir })
      const r = yield* Sender.send({ host: rx.host, port: rx.port, source, settings: settings() })
      expect(r.resumedFrom).toBeGreaterThan(0)
      expect(r.resumedFrom).toBeLessThanOrEqual(err.acknowledged)
      const done = yield* rx.awaitCompleted(r.transferId)
      expect(done.resumedFrom).toBe(r.resumedFrom)
      expect(done.digest).toBe(digestOf(data, done.integrity))
      expect((yield* Effect.promise(() => readFile(join(dir, "restart.bin")))).equals(data)).toBe(true)
    }).pipe(Effect.scoped),
  )

  it.live("survives random connection kills and delays (seeded chaos) with equal hashes", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir, window: 2 * 1024 * 1024 })
      const rnd = seeded(42)
      let kills = 0
      const proxy = yield* acquire(() =>
        startProxy({
          target: rx.port,
          delayMs: () => Math.floor(rnd() * 15),
          onForward: (link) => {
            if (kills < 6 && rnd() < 0.01) {
              kills++
              link.kill()
            }
          },
        }),
      )
      const data = payload(6 * 1024 * 1024 + 17, 8)
      // From a file: its chunk buffers are reused once acked, which must never touch a chunk that a
      // killed stream left to be re-sent (a reused buffer would be caught by the digest).
      const srcDir = yield* tmp
      yield* Effect.promise(() => writeFile(join(srcDir, "chaos.bin"), data))
      const r = yield* Sender.send({
        host: "127.0.0.1",
        port: proxy.port,
        source: yield* Source.fromFile(join(srcDir, "chaos.bin")),
        settings: settings(),
        controlInterval: 100,
        reconnectDelay: 10,
        stallTimeout: 2000,
      })
      expect(kills).toBeGreaterThan(0)
      expect(r.deadStreams).toBeGreaterThan(0)
      expect(yield* rx.awaitCompleted(r.transferId)).toMatchObject({
        digest: digestOf(data, r.integrity),
        integrity: r.integrity,
      })
      expect((yield* Effect.promise(() => readFile(join(dir, "chaos.bin")))).equals(data)).toBe(true)
    }).pipe(Effect.scoped),
  )

  it.live("runs the socket hook on every connection and paces chunks through the pace hook", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir })
      const data = payload(1024 * 1024, 12)
      const sockets = new Set<unknown>()
      const unpaced = yield* Sender.send({
        host: rx.host,
        port: rx.port,
        source: Source.fromBuffer(data, "hook.bin"),
        transferId: Sender.randomTransferId(),
        settings: settings(),
        streams: 3,
        onSocket: (s) =>
          Effect.sync(() => {
            expect(s.remotePort).toBe(rx.port)
            sockets.add(s)
          }),
      })
      expect(sockets.size).toBe(3)
      expect(unpaced.digest).toBe(digestOf(data, unpaced.integrity))
      // A token bucket at 4 MiB/s with a 64 KiB burst: 1 MiB cannot take less than about 240 ms.
      const rate = 4 * 1024 * 1024
      let tokens = 64 * 1024
      let last = performance.now()
      let paced = 0
      const pace = (n: number) =>
        Effect.gen(function* () {
          paced += n
          for (;;) {
            const now = performance.now()
            tokens = Math.min(64 * 1024, tokens + ((now - last) / 1000) * rate)
            last = now
            if (tokens >= n) {
              tokens -= n
              return
            }
            yield* Effect.sleep(((n - tokens) / rate) * 1000)
          }
        })
      const paced1 = yield* Sender.send({
        host: rx.host,
        port: rx.port,
        source: Source.fromBuffer(data, "paced.bin"),
        settings: settings(),
        streams: 3,
        pace,
      })
      expect(paced).toBeGreaterThanOrEqual(data.length)
      // The bucket's own bound, not a multiple of the unpaced run (which a busy machine slows too).
      expect(paced1.durationMs).toBeGreaterThanOrEqual(((data.length - 64 * 1024) / rate) * 1000 - 5)
      expect(paced1.digest).toBe(digestOf(data, paced1.integrity))
      // A hook that rejects drops the connection: with no stream left the send fails to connect.
      const refused = yield* Effect.either(
        Sender.send({
          host: rx.host,
          port: rx.port,
          source: Source.fromBuffer(data, "nohook.bin"),
          settings: settings(),
          maxReconnects: 0,
          onSocket: () => Effect.fail(new Error("no congestion control")),
        }),
      )
      expect(Either.isLeft(refused) && /socket hook failed/.test(refused.left.message)).toBe(true)
    }).pipe(Effect.scoped),
  )

  it.live("works over TLS", () =>
    Effect.gen(function* () {
      const certs = yield* tmp
      const key = join(certs, "key.pem")
      const cert = join(certs, "cert.pem")
      execFileSync(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-days",
          "1",
          "-subj",
          "/CN=localhost",
          "-addext",
          "subjectAltName=DNS:localhost,IP:127.0.0.1",
          "-keyout",
          key,
          "-out",
          cert,
        ],
        { stdio: "ignore" },
      )
      const pem = (p: string) => Effect.promise(() => readFile(p))
      const [k, c] = [yield* pem(key), yield* pem(cert)]
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir, tls: { key: k, cert: c } })
      const data = payload(2 * 1024 * 1024, 9)
      const r = yield* Sender.send({
        host: "127.0.0.1",
        port: rx.port,
        tls: { ca: c, servername: "localhost" },
        source: Source.fromBuffer(data, "tls.bin"),
        settings: settings(),
      })
      // TLS authenticates every byte: the end-to-end check is XXH3.
      expect(r).toMatchObject({ integrity: "xxh3-64", digest: xxh(data) })
      expect(yield* rx.awaitCompleted(r.transferId)).toMatchObject({
        digest: digestOf(data, r.integrity),
        integrity: r.integrity,
      })
      // A client that does not trust the certificate cannot connect.
      const bad = yield* Effect.either(
        Sender.send({
          host: "127.0.0.1",
          port: rx.port,
          tls: { servername: "localhost" },
          source: Source.fromBuffer(data, "tls2.bin"),
          settings: settings(),
          maxReconnects: 0,
        }),
      )
      expect(Either.isLeft(bad) && bad.left.reason === "connect").toBe(true)
    }).pipe(Effect.scoped),
  )
})
