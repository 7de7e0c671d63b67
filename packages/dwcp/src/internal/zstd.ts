// zstd-napi's one-shot functions: the same library HDE uses, no stream state between chunks.
import { createRequire } from "node:module"

interface Zstd {
  compress(data: Uint8Array, p?: { compressionLevel?: number }): Buffer
  decompress(data: Uint8Array): Buffer
}
interface Binding {
  getFrameContentSize(frame: Uint8Array): number | null
}
// Loaded on first use: a node that never sends or opens a v1 payload does not load the addon. In
// the agent's CommonJS bundle `require` exists and `import.meta.url` does not.
let loaded: { readonly zstd: Zstd; readonly binding: Binding } | undefined
const lib = () => {
  if (loaded === undefined) {
    const req = typeof require === "function" ? require : createRequire(import.meta.url)
    loaded = { zstd: req("zstd-napi"), binding: req("zstd-napi/binding") }
  }
  return loaded
}

export const chunkSize = 1024 * 1024

export const encode = (data: Uint8Array, level: number): Uint8Array => {
  const parts: Array<Uint8Array> = []
  for (let at = 0; at < data.length; at += chunkSize) {
    const frame = lib().zstd.compress(data.subarray(at, at + chunkSize), { compressionLevel: level })
    const len = Buffer.alloc(4)
    len.writeUInt32BE(frame.length)
    parts.push(len, frame)
  }
  return Buffer.concat(parts)
}

export type Decoded = { readonly ok: Uint8Array } | { readonly error: string; readonly offset: number }

/** The bytes, or why not and at which byte. */
export const decode = (data: Uint8Array, maxSize: number): Decoded => {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const out: Array<Uint8Array> = []
  let total = 0
  let at = 0
  const fail = (error: string): Decoded => ({ error, offset: at })
  while (at < buf.length) {
    if (buf.length - at < 4) return fail("truncated chunk length")
    const len = buf.readUInt32BE(at)
    if (len === 0 || at + 4 + len > buf.length) return fail(`chunk of ${len} bytes runs past the end (${buf.length})`)
    const frame = buf.subarray(at + 4, at + 4 + len)
    let size: number | null
    try {
      size = lib().binding.getFrameContentSize(frame)
    } catch (e) {
      return fail(`not a zstd frame (${e instanceof Error ? e.message : String(e)})`)
    }
    // The header is checked before any byte is inflated: a bomb costs nothing.
    if (size === null || size > chunkSize)
      return fail(`chunk declares ${size ?? "unknown"} bytes, at most ${chunkSize}`)
    if (total + size > maxSize) return fail(`payload exceeds ${maxSize} bytes`)
    let plain: Buffer
    try {
      plain = lib().zstd.decompress(frame)
    } catch (e) {
      return fail(`corrupt zstd frame (${e instanceof Error ? e.message : String(e)})`)
    }
    if (plain.length !== size) return fail(`chunk inflated to ${plain.length} bytes, header said ${size}`)
    out.push(plain)
    total += size
    at += 4 + len
  }
  return { ok: Buffer.concat(out) }
}
