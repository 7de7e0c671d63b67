// Control-frame payloads, validated with Schema so a hostile peer gets a typed error, not a crash.
import { TraceContext } from "@novacron/wire"
import { Either, Option, Schema } from "effect"
import { type Frame, FrameError, FrameType, parseJson } from "../Frame.js"

/** @see hasher.ts */
export const Integrity = Schema.Literal("sha256", "xxh3-64")

const NonNegInt = Schema.Int.pipe(Schema.nonNegative())

export const Hello = Schema.Struct({
  name: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(255)),
  size: NonNegInt,
  chunkSize: Schema.Int.pipe(Schema.between(1, 64 * 1024 * 1024)),
  stream: NonNegInt,
  /** HMAC proof of the shared token (see auth.ts); absent when TLS client certificates authenticate. */
  auth: Schema.optional(Schema.Struct({ ts: NonNegInt, mac: Schema.String.pipe(Schema.maxLength(128)) })),
  /**
   * The sender's span as W3C `traceparent` (@novacron/wire's TraceContext), so the receiver's work
   * joins the sender's trace. Optional (older senders omit it, older receivers ignore it) and
   * never a reason to refuse: anything but a valid traceparent is dropped by `traceparentOf`.
   */
  traceparent: Schema.optional(Schema.Unknown),
  /** The end-to-end digest's algorithm (see hasher.ts for which one where); absent means sha256. */
  integrity: Schema.optional(Integrity),
})
export type Hello = typeof Hello.Type

/** The HELLO's traceparent when it is a valid one (at most 55 characters), else undefined. */
export const traceparentOf = (hello: Hello): string | undefined =>
  Option.getOrUndefined(Option.map(TraceContext.parse(hello.traceparent), TraceContext.format))

export const Welcome = Schema.Struct({
  offset: NonNegInt,
  window: Schema.Int.pipe(Schema.positive()),
  maxFrameSize: Schema.optional(Schema.Int.pipe(Schema.positive())),
  done: Schema.optional(Schema.Boolean),
  /** With `done`: the digest of the completed transfer. */
  digest: Schema.optional(Schema.String.pipe(Schema.maxLength(128))),
})
export type Welcome = typeof Welcome.Type

const Digest = Schema.String.pipe(Schema.maxLength(128))
/** `mac`: with a token, an HMAC binding the digest to it (auth.ts), so an on-path attacker cannot swap both. */
export const Fin = Schema.Struct({ digest: Digest, mac: Schema.optional(Digest) })
export const Done = Schema.Struct({ digest: Digest })
export const Failure = Schema.Struct({ code: Schema.String, message: Schema.String })

/** Decodes a control payload or throws a FrameError naming the frame's offset. */
export const decodeControl = <A, I>(schema: Schema.Schema<A, I>, frame: Frame): A => {
  const at = frame.at ?? 0
  const r = Schema.decodeUnknownEither(schema)(parseJson(frame, at))
  if (Either.isLeft(r)) {
    throw new FrameError({ protocol: "amst", reason: "Malformed", offset: at, detail: "invalid control payload" })
  }
  return r.right
}

export const control = (type: FrameType, transferId: Buffer, body: unknown): Frame => ({
  type,
  transferId,
  seq: 0,
  offset: 0,
  payload: Buffer.from(JSON.stringify(body)),
})

export const bare = (type: FrameType, transferId: Buffer, seq: number, offset: number): Frame => ({
  type,
  transferId,
  seq,
  offset,
  payload: Buffer.alloc(0),
})

export { FrameType }
