// The end-to-end digest and the per-frame checksum (issue 23): which digest where, what a corrupted
// byte or a mismatching file does, and what a peer on the previous wire version is told.
import { readFile, writeFile } from "node:fs/promises"
import * as net from "node:net"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Wire } from "@novacron/wire"
import { Effect, Either, Queue, Redacted } from "effect"
import { Frame, Receiver, Sender, Source } from "../src/index.js"
import { sign, signFin } from "../src/internal/auth.js"
import { acquire, payload, settings, sha, tmp, xxh } from "./helpers.js"
import { startProxy } from "./proxy.js"

const token = "correct horse battery staple"

/**
 * Connects, writes `bytes`, and collects every frame back (decoded with `decoder`) until closed or
 * 3 s; `reply` may answer each.
 */
const talk = (
  port: number,
  bytes: Buffer,
  decoder: { push(b: Buffer): Array<Frame.Frame> } = new Frame.Decoder(1 << 20),
  reply?: (f: Frame.Frame) => Buffer | undefined,
) =>
  Effect.async<Array<Frame.Frame>>((resume) => {
    const frames: Array<Frame.Frame> = []
    const socket = net.connect({ host: "127.0.0.1", port }, () => socket.write(bytes))
    const t = setTimeout(() => socket.destroy(), 3000)
    socket.on("data", (c: Buffer) => {
      for (const f of decoder.push(c)) {
        frames.push(f)
        if (f.type === Frame.FrameType.DONE) socket.end()
        const answer = reply?.(f)
        if (answer) socket.write(answer)
      }
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      clearTimeout(t)
      resume(Effect.succeed(frames))
    })
  })

const json = (f: Frame.Frame | undefined) => (f ? (JSON.parse(f.payload.toString()) as Record<string, unknown>) : {})

describe("integrity", () => {
  it.live("is XXH3 without authentication or under TLS, SHA-256 over plain TCP with a token", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const data = payload(700_000, 71)
      const plain = yield* Receiver.listen({ dir: join(dir, "plain") })
      const r = yield* Sender.send({
        host: plain.host,
        port: plain.port,
        source: Source.fromBuffer(data, "a.bin"),
        settings: settings(),
      })
      expect(r).toMatchObject({ integrity: "xxh3-64", digest: xxh(data) })
      expect(yield* plain.awaitCompleted(r.transferId)).toMatchObject({ integrity: "xxh3-64", digest: xxh(data) })

      const secured = yield* Receiver.listen({ dir: join(dir, "token"), token: Redacted.make(token) })
      const t = yield* Sender.send({
        host: secured.host,
        port: secured.port,
        source: Source.fromBuffer(data, "b.bin"),
        settings: settings(),
        token: Redacted.make(token),
      })
      expect(t).toMatchObject({ integrity: "sha256", digest: sha(data) })
      expect(yield* secured.awaitCompleted(t.transferId)).toMatchObject({ integrity: "sha256", digest: sha(data) })
      // The receiver holds the line: a sender asking for XXH3 over plain TCP with a token is refused.
      const weak = yield* Effect.either(
        Sender.send({
          host: secured.host,
          port: secured.port,
          source: Source.fromBuffer(data, "c.bin"),
          settings: settings(),
          token: Redacted.make(token),
          integrity: "xxh3-64",
        }),
      )
      expect(Either.isLeft(weak) && weak.left.reason === "remote" && /integrity: xxh3-64/.test(weak.left.message)).toBe(
        true,
      )
    }).pipe(Effect.scoped),
  )

  it.live("a byte corrupted on plain TCP fails its frame's checksum, named at its offset, and is re-sent", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const data = payload(1_000_000, 72)
      const rx = yield* Receiver.listen({ dir })
      // On the first stream: flip one byte 1000 bytes into the first DATA payload.
      let helloLength = -1
      let seen = 0
      let flipped = -1
      const proxy = yield* acquire(() =>
        startProxy({
          target: rx.port,
          transform: (link, chunk) => {
            if (link.id !== 0 || flipped >= 0) return chunk
            if (helloLength < 0) helloLength = Frame.HEADER_SIZE + chunk.readUInt32BE(Frame.LENGTH_OFFSET)
            const target = helloLength + Frame.HEADER_SIZE + 1000
            if (seen + chunk.length > target) {
              const copy = Buffer.from(chunk)
              copy[target - seen]! ^= 0x40
              flipped = target
              seen += chunk.length
              return copy
            }
            seen += chunk.length
            return chunk
          },
        }),
      )
      const r = yield* Sender.send({
        host: "127.0.0.1",
        port: proxy.port,
        source: Source.fromBuffer(data, "flip.bin"),
        settings: settings({ chunk_size: 64 * 1024 }),
        streams: 3,
      })
      expect(flipped).toBeGreaterThan(0)
      const fault = yield* Queue.take(rx.faults)
      expect(fault.error).toMatchObject({ _tag: "FrameError", reason: "BadChecksum", offset: helloLength + 36 })
      expect(r.deadStreams).toBeGreaterThanOrEqual(1)
      expect(r.digest).toBe(xxh(data))
      expect((yield* Effect.promise(() => readFile(join(dir, "flip.bin")))).equals(data)).toBe(true)
    }).pipe(Effect.scoped),
  )

  it.live("a part file changed on disk before a resume ends in hash-mismatch naming both digests", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const data = payload(4 * 1024 * 1024, 73)
      const source = Source.fromBuffer(data, "bad.bin")
      const transferId = Sender.randomTransferId()
      let written = 0
      const rx = yield* Receiver.listen({
        dir,
        persistEvery: 256 * 1024,
        releaseAfter: 50,
        onProgress: (p) => (written = p.bytes),
      })
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
      const first = yield* Effect.either(
        Sender.send({
          host: "127.0.0.1",
          port: proxy.port,
          source,
          transferId,
          settings: settings(),
          maxReconnects: 0,
        }),
      )
      expect(Either.isLeft(first)).toBe(true)
      // Released (file closed): flip a byte the receiver will re-hash from disk on the next HELLO.
      yield* Effect.sleep("300 millis")
      const part = join(dir, ".amst-staging", `${transferId.toString("hex")}.part`)
      const bytes = yield* Effect.promise(() => readFile(part))
      bytes[1000]! ^= 1
      yield* Effect.promise(() => writeFile(part, bytes))
      const second = yield* Effect.either(
        Sender.send({ host: rx.host, port: rx.port, source, transferId, settings: settings() }),
      )
      expect(Either.isLeft(second)).toBe(true)
      const e = Either.getLeft(second).pipe((o) => (o._tag === "Some" ? o.value : undefined))!
      expect(e.reason).toBe("hash-mismatch")
      expect(e.message).toContain(`xxh3-64 mismatch`)
      expect(e.message).toContain(`sender has ${xxh(data)}`)
    }).pipe(Effect.scoped),
  )

  it.live("a chunk read late is hashed from its own bytes, not from a reused chunk buffer", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir })
      const data = payload(2 * 1024 * 1024, 74)
      // Chunk 0 takes 300 ms to read: the other streams' chunks are sent and acked meanwhile, and
      // they wait to be hashed after it, so their buffers must not be reused yet.
      const source: Source.Source = {
        name: "late.bin",
        size: data.length,
        identity: "late",
        read: (offset, length) => Effect.succeed(Buffer.from(data.subarray(offset, offset + length))),
        readInto: (offset, target) =>
          Effect.sync(() => data.copy(target, 0, offset, offset + target.length)).pipe(
            Effect.delay(offset === 0 ? "300 millis" : "0 millis"),
          ),
      }
      const r = yield* Sender.send({
        host: rx.host,
        port: rx.port,
        source,
        settings: settings({ chunk_size: 64 * 1024 }),
        streams: 4,
      })
      expect(r.digest).toBe(xxh(data))
      expect((yield* Effect.promise(() => readFile(join(dir, "late.bin")))).equals(data)).toBe(true)
    }).pipe(Effect.scoped),
  )

  it.live("a FIN over a token connection must carry the token's HMAC of its digest", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir, token: Redacted.make(token) })
      const key = Buffer.from(token)
      const empty = sha(Buffer.alloc(0))
      const session = (id: Buffer, name: string, fin: Record<string, unknown>) => {
        const fields = { name, size: 0, chunkSize: 65536, stream: 0 }
        const ts = Date.now()
        const hello = { ...fields, integrity: "sha256", auth: { ts, mac: sign(key, id.toString("hex"), fields, ts) } }
        const frame = (type: Frame.FrameType, body: unknown) =>
          Frame.encodeToBuffer({ type, transferId: id, seq: 0, offset: 0, payload: Buffer.from(JSON.stringify(body)) })
        return talk(rx.port, frame(Frame.FrameType.HELLO, hello), undefined, (f) =>
          f.type === Frame.FrameType.WELCOME ? frame(Frame.FrameType.FIN, fin) : undefined,
        )
      }
      const forged = yield* session(Buffer.alloc(16, 1), "forged.bin", { digest: empty })
      expect(forged.map((f) => f.type)).toEqual([Frame.FrameType.WELCOME])
      const fault = yield* Queue.take(rx.faults)
      expect(fault.error).toMatchObject({ _tag: "ProtocolError" })
      expect(fault.error.message).toMatch(/FIN digest not authenticated by the token/)
      // With the HMAC: DONE.
      const id = Buffer.alloc(16, 2)
      const mac = signFin(key, id.toString("hex"), "sha256", empty)
      const ok = yield* Effect.fork(session(id, "ok.bin", { digest: empty, mac }))
      expect((yield* rx.awaitCompleted(id.toString("hex"))).digest).toBe(empty)
      const frames = yield* Effect.fromFiber(ok).pipe(Effect.orDie)
      expect(frames.map((f) => f.type)).toContain(Frame.FrameType.DONE)
    }).pipe(Effect.scoped),
  )

  it.live("a sender on wire version 2 is told, in version 2's format, why it is refused", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir })
      const hello: Frame.Frame = {
        type: Frame.FrameType.HELLO,
        transferId: Buffer.alloc(16, 9),
        seq: 0,
        offset: 0,
        payload: Buffer.from(JSON.stringify({ name: "old.bin", size: 10, chunkSize: 4, stream: 0 })),
      }
      const v2 = Wire.decoder(Wire.format({ ...Frame.format, version: 2 }), { maxPayload: 1 << 16 })
      const frames = yield* talk(rx.port, Frame.encodeForPeer(2, hello)!, {
        push: (b) => {
          const { frames, error } = v2.push(b)
          if (error) throw error
          return frames.map((f) => ({ ...hello, type: f.type as Frame.FrameType, payload: f.payload }))
        },
      })
      expect(frames.map((f) => f.type)).toEqual([Frame.FrameType.ERROR])
      expect(json(frames[0])).toMatchObject({
        code: "version",
        message: expect.stringMatching(/version 3, the sender 2/),
      })
      const fault = yield* Queue.take(rx.faults)
      expect(fault.error).toMatchObject({ _tag: "FrameError", reason: "BadVersion", offset: 2 })
      // A version this layout cannot speak for gets nothing back but the close.
      expect(Frame.encodeForPeer(1, hello)).toBeUndefined()
      expect(Frame.encodeForPeer(Frame.VERSION + 1, hello)).toBeUndefined()
    }).pipe(Effect.scoped),
  )
})
