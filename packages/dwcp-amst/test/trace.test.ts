// Trace context in the HELLO: the sender's span reaches the receiver with the transfer, an
// old-format HELLO (no traceparent) is still welcomed, and a bad traceparent is dropped, not refused.
import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { Frame, Receiver, Sender, Source } from "../src/index.js"
import { payload, settings, tmp } from "./helpers.js"

const firstFrame = (port: number, bytes: Buffer) =>
  Effect.async<Frame.Frame | undefined>((resume) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => socket.write(bytes))
    const d = new Frame.Decoder(1 << 20)
    socket.on("data", (c: Buffer) => {
      const [f] = d.push(c)
      if (f) {
        socket.destroy()
        resume(Effect.succeed(f))
      }
    })
    socket.on("error", () => {})
    socket.on("close", () => resume(Effect.succeed(undefined)))
  })

const hello = (id: number, fields: Record<string, unknown>) => {
  const transferId = Buffer.alloc(16, 0)
  transferId.writeUInt32BE(id)
  return Frame.encodeToBuffer({
    type: Frame.FrameType.HELLO,
    transferId,
    seq: 0,
    offset: 0,
    payload: Buffer.from(
      JSON.stringify({ name: `t-${id}.bin`, size: 1 << 20, chunkSize: 65536, stream: 0, ...fields }),
    ),
  })
}

describe("trace context in the HELLO", () => {
  it.live("a transfer sent inside a span carries it: the receiver's work is that span's child", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const rx = yield* Receiver.listen({ dir })
      const data = payload(300_000, 7)
      const sent = yield* Effect.gen(function* () {
        const r = yield* Sender.send({
          host: rx.host,
          port: rx.port,
          source: Source.fromBuffer(data, "traced.bin"),
          settings: settings(),
        })
        return { r, span: yield* Effect.currentSpan }
      }).pipe(Effect.withSpan("migration.send"))
      const done = yield* rx.awaitCompleted(sent.r.transferId)
      expect(done.traceparent).toBe(`00-${sent.span.traceId}-${sent.span.spanId}-01`)
      const child = yield* Effect.currentSpan.pipe(Effect.withSpan("migration.receive"), Receiver.continueTrace(done))
      expect(child.traceId).toBe(sent.span.traceId)
      expect(Option.map(child.parent, (p) => p.spanId)).toEqual(Option.some(sent.span.spanId))

      // Outside any span: nothing is carried, the receiver's work starts its own trace.
      const plain = yield* Sender.send({
        host: rx.host,
        port: rx.port,
        source: Source.fromBuffer(payload(1000, 8), "plain.bin"),
        settings: settings(),
      })
      expect((yield* rx.awaitCompleted(plain.transferId)).traceparent).toBeUndefined()
    }).pipe(Effect.scoped),
  )

  it.live("an old-format HELLO is welcomed; a malformed traceparent is dropped, never a refusal", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      // Room for every HELLO's transfer at once (each reserves a reorder window).
      const rx = yield* Receiver.listen({ dir, maxTransfers: 100, window: 1 << 20 })
      const old = yield* firstFrame(rx.port, hello(1, {}))
      expect(old?.type).toBe(Frame.FrameType.WELCOME)
      for (const [i, bad] of [
        [2, 42],
        [3, "x".repeat(10_000)],
        [4, { a: 1 }],
        [5, "00-zz-1-01"],
      ] as const) {
        const f = yield* firstFrame(rx.port, hello(i, { traceparent: bad }))
        expect([i, f?.type, f?.type === Frame.FrameType.WELCOME ? "" : f?.payload.toString()]).toEqual([
          i,
          Frame.FrameType.WELCOME,
          "",
        ])
      }
      // A whole transfer whose HELLOs carry garbage completes, without a traceparent.
      const r = yield* Sender.send({
        host: rx.host,
        port: rx.port,
        source: Source.fromBuffer(payload(200_000, 9), "garbage.bin"),
        settings: settings(),
        traceparent: "00-not-a-trace-01",
      })
      expect((yield* rx.awaitCompleted(r.transferId)).traceparent).toBeUndefined()
    }).pipe(Effect.scoped),
  )
})
