// Page stream: the chunk after zero-page, duplicate-page and delta elimination, before the codec.
//   [tag u8 × pages][aux u32 × (DUP + DELTA + MOVED pages)][data: LITERAL page bytes / DELTA bytes]
// DUP's aux is the global index (in this transfer) of an earlier identical page; DELTA's is the
// length of its XBZRLE bytes; MOVED's is the index of an identical page elsewhere in the base
// version. Sections are separate so the codec sees long runs of alike bytes.
import { FrameFault } from "./format.js"

export const Tag = { literal: 0, zero: 1, dup: 2, same: 3, delta: 4, moved: 5 } as const

export interface PageStats {
  zero: number
  dup: number
  same: number
  delta: number
  moved: number
  literal: number
}

export const pageKinds = ["zero", "dup", "same", "delta", "moved", "literal"] as const

export const emptyStats = (): PageStats => ({ zero: 0, dup: 0, same: 0, delta: 0, moved: 0, literal: 0 })

/** Adds `from` into `into`. */
export const addStats = (into: PageStats, from: PageStats): void => {
  for (const k of pageKinds) into[k] += from[k]
}

// Per-thread scratch, reused across chunks: a fresh 1 MiB buffer per chunk costs more in page
// faults than the copy into it.
let deltaScratch = new Uint8Array(0)
let innerScratch = Buffer.alloc(0)

/**
 * 32-bit words of `bytes` when it sits on a 4-byte boundary, for `isZeroAt`: one view per chunk,
 * where a `subarray` and a `Buffer.compare` per page cost an allocation and a native call each.
 */
export const wordsOf = (bytes: Uint8Array): Int32Array | undefined =>
  bytes.byteOffset % 4 === 0 ? new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2) : undefined

/**
 * Whether bytes [start, end) of `bytes` are all zero. A non-zero page usually ends the scan at its
 * first word; a zero page costs a scan of 1,024 words.
 */
export const isZeroAt = (bytes: Uint8Array, words: Int32Array | undefined, start: number, end: number): boolean => {
  if (words !== undefined && start % 4 === 0 && end % 4 === 0) {
    for (let w = start >>> 2, e = end >>> 2; w < e; w++) if (words[w] !== 0) return false
    return true
  }
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false
  return true
}

// A run of differing bytes ends only where this many equal bytes follow, since every new run
// costs two varints.
const RESYNC = 4

const writeVarint = (out: Uint8Array, at: number, v: number): number => {
  let n = v
  let i = at
  while (n >= 0x80) {
    out[i++] = (n & 0x7f) | 0x80
    n >>>= 7
  }
  out[i++] = n
  return i
}

/**
 * XBZRLE as in QEMU's migration: pairs of (varint equal-run, varint differ-run, new bytes).
 * Writes into `out` and returns the length, or -1 once it would reach `limit` (then the page is
 * cheaper sent whole).
 */
export const xbzrleEncode = (oldPage: Uint8Array, newPage: Uint8Array, out: Uint8Array, limit: number): number => {
  const len = newPage.length
  let i = 0
  let o = 0
  while (i < len) {
    const start = i
    while (i < len && oldPage[i] === newPage[i]) i++
    if (i === len) break
    const diffStart = i
    let eq = 0
    while (i < len && eq < RESYNC) {
      if (oldPage[i] === newPage[i]) eq++
      else eq = 0
      i++
    }
    const diffEnd = i - eq
    i = diffEnd
    const nz = diffEnd - diffStart
    if (o + 6 + nz >= limit) return -1
    o = writeVarint(out, o, diffStart - start)
    o = writeVarint(out, o, nz)
    out.set(newPage.subarray(diffStart, diffEnd), o)
    o += nz
  }
  return o
}

/** Applies XBZRLE bytes onto `target` (already a copy of the old page). Throws on any overrun. */
export const xbzrleDecode = (delta: Uint8Array, target: Uint8Array, at: number): void => {
  let i = 0
  let pos = 0
  const readVarint = (): number => {
    let v = 0
    for (let shift = 0; shift < 28; shift += 7) {
      if (i >= delta.length) throw new FrameFault(at, "delta varint truncated")
      const b = delta[i++] ?? 0
      v |= (b & 0x7f) << shift
      if (b < 0x80) return v
    }
    throw new FrameFault(at, "delta varint too long")
  }
  while (i < delta.length) {
    pos += readVarint()
    const nz = readVarint()
    if (nz === 0 || pos + nz > target.length || i + nz > delta.length)
      throw new FrameFault(at, `delta run ${pos}+${nz} outside the page`)
    target.set(delta.subarray(i, i + nz), pos)
    i += nz
    pos += nz
  }
}

export interface EncodePagesInput {
  readonly chunk: Uint8Array
  readonly pageSize: number
  /** Per page: global index of an identical earlier page, or -1. */
  readonly dupRefs: Int32Array
  /** Per page: index of an identical page elsewhere in the base version, or -1. */
  readonly baseRefs: Int32Array
  /** Previous version of the same byte range, if a delta base exists. */
  readonly base: Uint8Array | undefined
  /** XBZRLE for changed pages; off when the codec gets the base as a dictionary instead. */
  readonly xbzrle: boolean
}

/**
 * Builds the page stream. Returns undefined when no page was eliminated and no delta applied,
 * in which case the chunk goes to the codec as it is. Classifies first, then copies once into
 * this thread's scratch buffer: the result is valid until the next call on this thread.
 */
export const encodePages = (
  input: EncodePagesInput,
  stats: PageStats,
): { readonly inner: Buffer; readonly usedBase: boolean } | undefined => {
  const { chunk, pageSize, dupRefs, baseRefs, base } = input
  const pages = Math.ceil(chunk.length / pageSize)
  const words = wordsOf(chunk)
  const tags = new Uint8Array(pages)
  const aux = new Uint32Array(pages)
  let auxCount = 0
  let dataLen = 0
  let deltaLen = 0
  let eliminated = 0
  let usedBase = false
  const local = emptyStats()
  if (input.xbzrle && base !== undefined && deltaScratch.length < chunk.length)
    deltaScratch = new Uint8Array(chunk.length)
  for (let p = 0; p < pages; p++) {
    const page = chunk.subarray(p * pageSize, Math.min(chunk.length, (p + 1) * pageSize))
    const old = base?.subarray(p * pageSize, p * pageSize + page.length)
    // Delta only between pages of the same length; a longer or shorter new version just has
    // pages without a base.
    const oldPage = old !== undefined && old.length === page.length ? old : undefined
    if (isZeroAt(chunk, words, p * pageSize, p * pageSize + page.length)) {
      tags[p] = Tag.zero
      local.zero++
    } else if (oldPage !== undefined && Buffer.compare(oldPage, page) === 0) {
      tags[p] = Tag.same
      local.same++
      usedBase = true
    } else if ((dupRefs[p] ?? -1) >= 0) {
      tags[p] = Tag.dup
      aux[auxCount++] = dupRefs[p] ?? 0
      local.dup++
    } else if ((baseRefs[p] ?? -1) >= 0) {
      tags[p] = Tag.moved
      aux[auxCount++] = baseRefs[p] ?? 0
      local.moved++
      usedBase = true
    } else {
      let n = -1
      if (oldPage !== undefined && input.xbzrle)
        n = xbzrleEncode(oldPage, page, deltaScratch.subarray(deltaLen), (page.length * 3) >>> 2)
      if (n >= 0) {
        tags[p] = Tag.delta
        aux[auxCount++] = n
        deltaLen += n
        dataLen += n
        local.delta++
        usedBase = true
      } else {
        tags[p] = Tag.literal
        dataLen += page.length
        local.literal++
        continue
      }
    }
    eliminated++
  }
  if (eliminated === 0) {
    stats.literal += local.literal
    return undefined
  }
  addStats(stats, local)
  const size = pages + auxCount * 4 + dataLen
  if (innerScratch.length < size) innerScratch = Buffer.allocUnsafeSlow(Math.max(size, chunk.length + pages * 5))
  const inner = innerScratch.subarray(0, size)
  inner.set(tags, 0)
  for (let i = 0; i < auxCount; i++) inner.writeUInt32LE(aux[i] ?? 0, pages + i * 4)
  // Literal pages and XBZRLE bytes, in page order.
  let at = pages + auxCount * 4
  let d = 0
  let a = 0
  for (let p = 0; p < pages; p++) {
    const t = tags[p]
    if (t === Tag.literal) {
      const page = chunk.subarray(p * pageSize, Math.min(chunk.length, (p + 1) * pageSize))
      inner.set(page, at)
      at += page.length
    } else if (t === Tag.delta) {
      const n = aux[a] ?? 0
      inner.set(deltaScratch.subarray(d, d + n), at)
      at += n
      d += n
    }
    if (t === Tag.dup || t === Tag.delta || t === Tag.moved) a++
  }
  return { inner, usedBase }
}

export interface DecodePagesInput {
  readonly inner: Uint8Array
  readonly originalSize: number
  readonly pageSize: number
  /** Global index of this chunk's first page. */
  readonly firstPage: number
  readonly dedupWindowPages: number
  /** An earlier page of the transfer still inside the dedup window. */
  readonly lookup: (globalPage: number) => Uint8Array | undefined
  readonly base: Uint8Array | undefined
  /** A whole page of the base version by index, or undefined when there is none. */
  readonly basePage: (index: number) => Uint8Array | undefined
  /** Byte offset of the chunk payload in the stream, for errors. */
  readonly at: number
}

export const decodePages = (input: DecodePagesInput): Buffer => {
  const { inner, originalSize, pageSize, firstPage, base, at } = input
  const pages = Math.ceil(originalSize / pageSize)
  if (inner.length < pages) throw new FrameFault(at, "page stream shorter than its tag table")
  const out = Buffer.alloc(originalSize)
  let auxCount = 0
  for (let p = 0; p < pages; p++) {
    const t = inner[p]
    if (t === Tag.dup || t === Tag.delta || t === Tag.moved) auxCount++
    else if (t !== Tag.literal && t !== Tag.zero && t !== Tag.same)
      throw new FrameFault(at, `page ${p}: unknown tag ${t}`)
  }
  const auxStart = pages
  let dataAt = pages + auxCount * 4
  if (dataAt > inner.length) throw new FrameFault(at, "page stream shorter than its aux table")
  const view = Buffer.from(inner.buffer, inner.byteOffset, inner.length)
  let a = 0
  for (let p = 0; p < pages; p++) {
    const start = p * pageSize
    const len = Math.min(pageSize, originalSize - start)
    const target = out.subarray(start, start + len)
    const t = inner[p]
    if (t === Tag.zero) continue
    if (t === Tag.literal) {
      if (dataAt + len > inner.length) throw new FrameFault(at, `page ${p}: literal runs past the page stream`)
      target.set(inner.subarray(dataAt, dataAt + len))
      dataAt += len
    } else if (t === Tag.same || t === Tag.delta) {
      const old = base?.subarray(start, start + len)
      if (old === undefined || old.length !== len) throw new FrameFault(at, `page ${p}: delta without a base page`)
      target.set(old)
      if (t === Tag.delta) {
        const n = view.readUInt32LE(auxStart + 4 * a++)
        if (n === 0 || dataAt + n > inner.length) throw new FrameFault(at, `page ${p}: delta length ${n} out of range`)
        try {
          xbzrleDecode(inner.subarray(dataAt, dataAt + n), target, at)
        } catch (e) {
          throw e instanceof FrameFault ? new FrameFault(at, `page ${p}: ${e.reason}`) : e
        }
        dataAt += n
      }
    } else if (t === Tag.moved) {
      const ref = view.readUInt32LE(auxStart + 4 * a++)
      const src = input.basePage(ref)
      if (src === undefined || src.length !== len)
        throw new FrameFault(at, `page ${p}: moved from unknown base page ${ref}`)
      target.set(src)
    } else {
      const ref = view.readUInt32LE(auxStart + 4 * a++)
      const self = firstPage + p
      if (ref >= self || self - ref > input.dedupWindowPages)
        throw new FrameFault(at, `page ${p}: duplicate reference ${ref} outside the window`)
      const src =
        ref >= firstPage
          ? out.subarray((ref - firstPage) * pageSize, (ref - firstPage + 1) * pageSize)
          : input.lookup(ref)
      if (src === undefined || src.length !== len)
        throw new FrameFault(at, `page ${p}: duplicate of unknown page ${ref}`)
      target.set(src)
    }
  }
  if (dataAt !== inner.length) throw new FrameFault(at, `page stream has ${inner.length - dataAt} trailing bytes`)
  return out
}
