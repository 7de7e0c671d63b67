/**
 * The tunnel's frame format, owned here and only here. Every tunnel connection is mTLS between two
 * nodes and opens with one frame from the source: a 4-byte big-endian length, then that many bytes
 * of UTF-8 JSON (at most {@link maxFrame}), decoded by {@link Hello}.
 *
 * - `prepare` opens the control connection of a migration: further frames both ways are
 *   {@link Control} messages (`ready`, `switchover`, `resumed`, `failed`, `cancel`).
 * - `channel` opens the tunnel of one connection QEMU made to the source's socket (main stream,
 *   each multifd channel, the postcopy preempt channel): after the frame the connection carries
 *   QEMU's bytes, unframed, both ways (the return path shares the main stream), as they are or as
 *   one zstd stream each way, flushed per chunk (`zstd` level in the frame).
 *
 * @since 0.1.0
 */
import { Either, ParseResult, Schema } from "effect"

/**
 * The largest frame accepted (64 KiB): what an unauthenticated or hostile peer can make us buffer.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxFrame = 64 * 1024

/**
 * A migration id (a UUID from the source).
 *
 * @since 0.1.0
 * @category schemas
 */
export const MigrationId = Schema.String.pipe(Schema.pattern(/^[0-9a-f-]{36}$/))

const Capability = Schema.Struct({ capability: Schema.String, state: Schema.Boolean })

/**
 * The first frame of a connection.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Hello = Schema.Union(
  Schema.TaggedStruct("prepare", {
    migration: MigrationId,
    /** The VM's spec, as the source's record holds it (encoded form). */
    spec: Schema.Struct({ id: Schema.String }, { key: Schema.String, value: Schema.Unknown }),
    /** The source's ownership term: the destination takes the VM over from exactly this term. */
    term: Schema.Int,
    capabilities: Schema.Array(Capability),
    channels: Schema.Int.pipe(Schema.between(1, 64)),
    /**
     * The source's migration span as W3C `traceparent` (`@novacron/wire`'s TraceContext), so the
     * destination's work joins the same trace. Never a reason to refuse: a bad value is ignored.
     */
    traceparent: Schema.optional(Schema.Unknown),
    /**
     * The source's no-progress timeout: the destination holds its incoming QEMU no longer than this
     * (plus TCP keepalive's ten 1 s probes) after the source's host stops answering on the control
     * connection. Absent: the destination's own `progress_timeout`.
     */
    progress_timeout_ms: Schema.optional(Schema.Int.pipe(Schema.between(1000, 86_400_000))),
  }),
  Schema.TaggedStruct("channel", {
    migration: MigrationId,
    /** The order in which QEMU opened this connection on the source (0: the main stream). */
    index: Schema.Int.pipe(Schema.between(0, 255)),
    /** zstd level of the bytes after this frame, both ways (0: uncompressed). */
    zstd: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 19)), { default: () => 0 }),
  }),
)

/**
 * @since 0.1.0
 * @category models
 */
export type Hello = typeof Hello.Type

/**
 * Control messages after `prepare`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Control = Schema.Union(
  /** Destination: QEMU listens, paused. */
  Schema.TaggedStruct("ready", {}),
  /** Source: the source guest is stopped (precopy completed or postcopy started); take over and run. */
  Schema.TaggedStruct("switchover", { mode: Schema.Literal("precopy", "postcopy") }),
  /** Destination: the term is ours and the guest runs. */
  Schema.TaggedStruct("resumed", { term: Schema.Int }),
  Schema.TaggedStruct("failed", { detail: Schema.String.pipe(Schema.maxLength(4096)) }),
  /** Source: give up; the destination discards its QEMU. */
  Schema.TaggedStruct("cancel", {}),
)

/**
 * @since 0.1.0
 * @category models
 */
export type Control = typeof Control.Type

/**
 * One frame's bytes.
 *
 * @since 0.1.0
 * @category encoding
 */
export const frame = (value: Hello | Control): Buffer => {
  const body = Buffer.from(JSON.stringify(value), "utf8")
  if (body.length > maxFrame) throw new RangeError(`frame of ${body.length} bytes exceeds ${maxFrame}`)
  const head = Buffer.alloc(4)
  head.writeUInt32BE(body.length, 0)
  return Buffer.concat([head, body])
}

/**
 * Accumulates bytes and cuts frames; refuses (Left) a length above {@link maxFrame} before
 * buffering it. `rest` is what arrived after the last frame taken (QEMU's first bytes on a channel).
 *
 * @since 0.1.0
 * @category decoding
 */
export class Reader {
  private buffer: Buffer = Buffer.alloc(0)

  /** Adds bytes; Left when the peer announced an oversized frame. */
  push(chunk: Buffer): Either.Either<void, string> {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
    if (this.buffer.length >= 4) {
      const len = this.buffer.readUInt32BE(0)
      if (len > maxFrame) return Either.left(`frame of ${len} bytes announced, at most ${maxFrame}`)
    }
    if (this.buffer.length > maxFrame + 4) return Either.left(`more than ${maxFrame} bytes without a frame`)
    return Either.right(undefined)
  }

  /** The next whole frame's JSON, if one is buffered; Left when it is not JSON. */
  next(): Either.Either<unknown, string> | undefined {
    if (this.buffer.length < 4) return undefined
    const len = this.buffer.readUInt32BE(0)
    if (len > maxFrame) return Either.left(`frame of ${len} bytes announced, at most ${maxFrame}`)
    if (this.buffer.length < 4 + len) return undefined
    const body = this.buffer.subarray(4, 4 + len).toString("utf8")
    this.buffer = this.buffer.subarray(4 + len)
    try {
      return Either.right(JSON.parse(body))
    } catch {
      return Either.left("frame is not JSON")
    }
  }

  /** The bytes after the frames taken. */
  rest(): Buffer {
    const r: Buffer = this.buffer
    this.buffer = Buffer.alloc(0)
    return r
  }
}

const decodeWith =
  <A, I>(schema: Schema.Schema<A, I>) =>
  (json: unknown): Either.Either<A, string> =>
    Either.mapLeft(Schema.decodeUnknownEither(schema)(json), (e) => ParseResult.TreeFormatter.formatErrorSync(e))

/**
 * Decodes a connection's first frame.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeHello = decodeWith(Hello)

/**
 * Decodes a control frame.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeControl = decodeWith(Control)
