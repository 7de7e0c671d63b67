import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { TraceContext } from "@novacron/wire"
import { Effect, Option, Tracer } from "effect"
import * as Frame from "../src/Frame.js"
import { startNode } from "./helpers.js"

// The runtime's own tracer, keeping every span it starts.
const recording = (spans: Array<Tracer.Span>) =>
  Effect.map(Effect.tracer, (base) =>
    Tracer.make({
      span: (...args: Parameters<typeof base.span>) => {
        const span = base.span(...args)
        spans.push(span)
        return span
      },
      context: base.context,
    }),
  )

const open = { security: { auth_method: "none" }, network: { enable_tls: false } } as const
const parentOf = (span: Tracer.Span) => Option.getOrUndefined(span.parent)

describe("trace context in the Hello", () => {
  it.scopedLive("the dial span's traceparent rides in the Hello: the peer's accept span is its child", () =>
    Effect.gen(function* () {
      const spans: Array<Tracer.Span> = []
      const tracer = yield* recording(spans)
      yield* Effect.gen(function* () {
        const a = yield* startNode({ nodeId: "node-a", ...open })
        const b = yield* startNode({ nodeId: "node-b", ...open })
        yield* b.network.dial(a.target).pipe(Effect.withSpan("migrate vm-1"))
        yield* a.network.accepted.take
      }).pipe(Effect.withTracer(tracer))
      const operation = spans.find((s) => s.name === "migrate vm-1")!
      const dial = spans.find((s) => s.name === "network.dial")!
      const accept = spans.find((s) => s.name === "network.accept")!
      expect(parentOf(dial)?.spanId).toBe(operation.spanId)
      expect(accept.traceId).toBe(operation.traceId)
      expect(parentOf(accept)?.spanId).toBe(dial.spanId)
      expect(accept.attributes.get("peer.node_id")).toBe("node-b")
    }),
  )

  it.scopedLive("a Hello with a bad or no traceparent is accepted, in a new trace of its own", () =>
    Effect.gen(function* () {
      const spans: Array<Tracer.Span> = []
      const tracer = yield* recording(spans)
      yield* Effect.gen(function* () {
        const a = yield* startNode({ nodeId: "node-a", ...open })
        for (const [node, traceparent] of [
          ["raw-1", `00-${"0".repeat(32)}-${"1".repeat(16)}-01`],
          ["raw-2", 42],
          ["raw-3", `00-${"a".repeat(32)}-${"b".repeat(16)}-01${"x".repeat(200)}`],
          ["raw-4", undefined],
        ] as const) {
          const socket = net.connect(a.network.address.port, "127.0.0.1")
          yield* Effect.async<void>((resume) => {
            socket.once("connect", () => resume(Effect.void))
          })
          socket.write(Frame.encode(Frame.json(Frame.FrameType.Hello, { node_id: node, traceparent })))
          const inbound = yield* a.network.accepted.take
          expect(inbound.peerNodeId).toBe(node)
          socket.destroy()
        }
      }).pipe(Effect.withTracer(tracer))
      const accepts = spans.filter((s) => s.name === "network.accept")
      expect(accepts).toHaveLength(4)
      for (const s of accepts) expect(parentOf(s)).toBeUndefined()
      expect(new Set(accepts.map((s) => s.traceId)).size).toBe(4)
    }),
  )

  it("the wire module owns the format: 55 characters, lowercase hex, no all-zero ids", () => {
    const span = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", sampled: true }
    const text = TraceContext.format(span)
    expect(text).toBe("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    expect(TraceContext.parse(text)).toEqual(Option.some(span))
    expect(TraceContext.parse(text.replace(/-01$/, "-00"))).toEqual(Option.some({ ...span, sampled: false }))
    expect(TraceContext.parse(text.toUpperCase())).toEqual(Option.none())
    expect(TraceContext.parse(`${text} `)).toEqual(Option.none())
    expect(TraceContext.parse(text.replace("00-", "01-"))).toEqual(Option.none())
  })
})
