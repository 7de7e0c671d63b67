/**
 * What a sender reads from: random access by offset, so a stream's unacknowledged chunks can be
 * re-read and a transfer can resume from the receiver's offset after a full disconnect.
 *
 * @since 0.1.0
 */
import { open, stat } from "node:fs/promises"
import { basename } from "node:path"

/**
 * A random-access byte source.
 *
 * @since 0.1.0
 */
export interface Source {
  /** Name given to the receiver (a file name, without directories). */
  readonly name: string
  readonly size: number
  /** Identity hint used to derive a stable transfer id (so a re-run resumes). */
  readonly identity: string
  read(offset: number, length: number): Promise<Buffer>
  close(): Promise<void>
}

/**
 * A source over an in-memory buffer.
 *
 * @since 0.1.0
 */
export const fromBuffer = (data: Uint8Array, name = "buffer.bin"): Source => {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return {
    name,
    size: buf.length,
    identity: `buffer:${name}:${buf.length}`,
    read: async (offset, length) => buf.subarray(offset, offset + length),
    close: async () => {},
  }
}

/**
 * A source over a file; the identity is its path, size and modification time.
 *
 * @since 0.1.0
 */
export const fromFile = async (path: string, name: string = basename(path)): Promise<Source> => {
  const st = await stat(path)
  const fh = await open(path, "r")
  return {
    name,
    size: st.size,
    identity: `file:${path}:${st.size}:${st.mtimeMs}`,
    read: async (offset, length) => {
      const buf = Buffer.allocUnsafe(length)
      let got = 0
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got)
        if (bytesRead === 0) throw new Error(`${path}: short read at ${offset + got}`)
        got += bytesRead
      }
      return buf
    },
    close: () => fh.close(),
  }
}
