/**
 * What a sender reads from: random access by offset, so a stream's unacknowledged chunks can be
 * re-read and a transfer can resume from the receiver's offset after a full disconnect.
 *
 * @since 0.1.0
 */
import { open } from "node:fs/promises"
import { basename } from "node:path"
import { Data, Effect, type Scope } from "effect"

/**
 * A source that could not be opened or read.
 *
 * @since 0.2.0
 * @category errors
 */
export class SourceError extends Data.TaggedError("SourceError")<{
  readonly path: string
  readonly message: string
}> {}

/**
 * A random-access byte source.
 *
 * @since 0.1.0
 * @category models
 */
export interface Source {
  /** Name given to the receiver (a file name, without directories). */
  readonly name: string
  readonly size: number
  /** Identity hint used to derive a stable transfer id (so a re-run resumes). */
  readonly identity: string
  /** Exactly `length` bytes at `offset`. @since 0.2.0 */
  readonly read: (offset: number, length: number) => Effect.Effect<Buffer, SourceError>
  /**
   * Optional: fills all of `target` with the bytes at `offset`. A sender uses it to reuse its chunk
   * buffers instead of allocating one per chunk (the garbage collector's work was a tenth of the
   * sender's time on a fast link).
   *
   * @since 0.3.0
   */
  readonly readInto?: ((offset: number, target: Buffer) => Effect.Effect<void, SourceError>) | undefined
}

/**
 * A source over an in-memory buffer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromBuffer = (data: Uint8Array, name = "buffer.bin"): Source => {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return {
    name,
    size: buf.length,
    identity: `buffer:${name}:${buf.length}`,
    read: (offset, length) => Effect.succeed(buf.subarray(offset, offset + length)),
  }
}

/**
 * A source over a file, open for the life of the current Scope; the identity is its path, size and
 * modification time.
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromFile = (
  path: string,
  name: string = basename(path),
): Effect.Effect<Source, SourceError, Scope.Scope> =>
  Effect.gen(function* () {
    const failed = (e: unknown) => new SourceError({ path, message: `${path}: ${(e as Error).message}` })
    const fh = yield* Effect.acquireRelease(Effect.tryPromise({ try: () => open(path, "r"), catch: failed }), (fh) =>
      Effect.promise(() => fh.close().catch(() => {})),
    )
    const st = yield* Effect.tryPromise({ try: () => fh.stat(), catch: failed })
    const fill = async (offset: number, buf: Buffer) => {
      const length = buf.length
      let got = 0
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got)
        if (bytesRead === 0) throw new Error(`short read at ${offset + got}`)
        got += bytesRead
      }
      return buf
    }
    return {
      name,
      size: st.size,
      identity: `file:${path}:${st.size}:${st.mtimeMs}`,
      read: (offset, length) =>
        Effect.tryPromise({ try: () => fill(offset, Buffer.allocUnsafe(length)), catch: failed }),
      readInto: (offset, target) =>
        Effect.tryPromise({ try: () => fill(offset, target).then(() => {}), catch: failed }),
    } satisfies Source
  })
