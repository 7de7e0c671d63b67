/**
 * Node.js stream adapters over the service's Effect streams, for code that pipes sockets and
 * files (`stream.pipeline`). Back-pressure carries through: the encoder pulls input only as
 * fast as the readable side is consumed.
 *
 * @since 0.1.0
 */
import { Duplex, PassThrough, Readable } from "node:stream"
import { Stream } from "effect"
import type { Hde, TransferOptions } from "./Hde.js"

const adapt = (transform: (input: Stream.Stream<Uint8Array, Error>) => Stream.Stream<Uint8Array, unknown>): Duplex => {
  const input = new PassThrough()
  // Not destroyed when the Effect stream stops early: the duplex must end with the stream's
  // own error (e.g. the FrameError), not with the abort of its input.
  const source = Stream.fromAsyncIterable<Uint8Array, Error>(input.iterator({ destroyOnReturn: false }), (e) =>
    e instanceof Error ? e : new Error(String(e)),
  )
  const output = Readable.from(Stream.toAsyncIterable(transform(source)), { objectMode: false })
  return Duplex.from({ writable: input, readable: output })
}

/**
 * A duplex stream: write raw bytes, read HDE frames.
 *
 * @example
 * ```ts
 * import { createReadStream, createWriteStream } from "node:fs"
 * import { pipeline } from "node:stream/promises"
 * import { Hde, NodeStreams } from "@novacron/dwcp-hde"
 * import { Effect } from "effect"
 *
 * const compressFile = Effect.gen(function* () {
 *   const hde = yield* Hde.Hde
 *   yield* Effect.tryPromise(() =>
 *     pipeline(createReadStream("vm.raw"), NodeStreams.encoder(hde), createWriteStream("vm.hde")),
 *   )
 * })
 * ```
 *
 * @since 0.1.0
 */
export const encoder = (hde: Hde, options?: TransferOptions): Duplex => adapt(hde.encodeStream(options))

/**
 * A duplex stream: write HDE frames, read the original bytes. A bad frame destroys the stream
 * with the `FrameError` (its `offset` names the first bad byte), a stream over the receiver's
 * limits with the `LimitError` (`options.maxSize` declares the size expected).
 *
 * @since 0.1.0
 */
export const decoder = (hde: Hde, options?: TransferOptions): Duplex => adapt(hde.decodeStream(options))
