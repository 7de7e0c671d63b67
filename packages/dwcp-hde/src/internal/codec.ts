// Block codecs over whole chunks. zstd through zstd-napi's low-level binding so the decoder writes
// into a buffer of exactly the declared size (a forged size cannot make it allocate more);
// lz4 through lz4-napi's block API, whose 4-byte size prefix is checked against the header first.

import { createRequire } from "node:module"
import { compressSync as lz4Compress, uncompressSync as lz4Uncompress } from "lz4-napi"
import type * as ZstdBinding from "zstd-napi/binding.js"
import { Codec, FrameFault } from "./format.js"

// The binding is CommonJS that re-exports a native addon: its names are invisible to ESM import.
const zstd: typeof ZstdBinding = createRequire(import.meta.url)("zstd-napi/binding")

// One context per thread (each worker loads its own copy of this module).
let cctx: ZstdBinding.CCtx | undefined
let dctx: ZstdBinding.DCtx | undefined
let scratch: Buffer = Buffer.alloc(0)

export const zstdLevelRange = { min: 1, max: 22 } as const

/**
 * Compresses `input` into this thread's scratch buffer and returns a view of the encoded bytes,
 * valid until the next call on this thread (the caller copies them into its frame). With `dict`
 * (zstd only) the previous version of the same range serves as a raw-content dictionary, so
 * changed pages are coded as matches against their old content wherever it sits in the chunk.
 */
export const compressToScratch = (codec: number, level: number, input: Uint8Array, dict?: Uint8Array): Buffer => {
  if (codec === Codec.zstd) {
    cctx ??= new zstd.CCtx()
    const bound = zstd.compressBound(input.length)
    if (scratch.length < bound) scratch = Buffer.allocUnsafeSlow(bound)
    const n =
      dict === undefined ? cctx.compress(scratch, input, level) : cctx.compressUsingDict(scratch, input, dict, level)
    return scratch.subarray(0, n)
  }
  if (codec === Codec.lz4) return lz4Compress(Buffer.from(input.buffer, input.byteOffset, input.length))
  return Buffer.from(input.buffer, input.byteOffset, input.length)
}

/** Compresses `input`; returns a fresh buffer holding only the encoded bytes. */
export const compress = (codec: number, level: number, input: Uint8Array, dict?: Uint8Array): Buffer =>
  Buffer.from(compressToScratch(codec, level, input, dict))

/** Decodes a payload known (from the checked header) to expand to exactly `size` bytes. */
export const decompress = (codec: number, payload: Uint8Array, size: number, at: number, dict?: Uint8Array): Buffer => {
  if (codec === Codec.none) return Buffer.from(payload)
  try {
    if (codec === Codec.zstd) {
      const declared = zstd.getFrameContentSize(payload)
      if (declared !== size) throw new FrameFault(at, `zstd frame declares ${declared} bytes, header says ${size}`)
      dctx ??= new zstd.DCtx()
      const out = Buffer.allocUnsafe(size)
      const n = dict === undefined ? dctx.decompress(out, payload) : dctx.decompressUsingDict(out, payload, dict)
      if (n !== size) throw new FrameFault(at, `zstd produced ${n} bytes, header says ${size}`)
      return out
    }
    if (payload.length < 5) throw new FrameFault(at, "lz4 payload too short")
    const declared = Buffer.from(payload.buffer, payload.byteOffset, 4).readUInt32LE(0)
    if (declared !== size) throw new FrameFault(at, `lz4 block declares ${declared} bytes, header says ${size}`)
    const out = lz4Uncompress(Buffer.from(payload.buffer, payload.byteOffset, payload.length))
    if (out.length !== size) throw new FrameFault(at, `lz4 produced ${out.length} bytes, header says ${size}`)
    return out
  } catch (e) {
    if (e instanceof FrameFault) throw e
    throw new FrameFault(at, `${codec === Codec.zstd ? "zstd" : "lz4"} payload corrupt: ${(e as Error).message}`)
  }
}
