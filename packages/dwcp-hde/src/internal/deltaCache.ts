// Last transferred version of each object, kept to delta-encode (sender) or delta-decode
// (receiver) its next version. Least recently used objects go first once `capacity` bytes are
// held. The cache is sized to the object: a version larger than `capacity` (a 768 MiB guest
// against the 256 MiB default) is still kept, alone, up to `ceiling` bytes; one larger than that
// is not kept (and drops its predecessor, so both ends agree there is no base). Why an object
// has no base is remembered, so the next transfer can say so.

export interface Version {
  readonly digest: Uint8Array
  readonly chunks: ReadonlyArray<Buffer>
  readonly size: number
  /** Chunk size the version was cut with, and each chunk's digest (for unchanged-chunk reuse). */
  readonly chunkSize: number
  readonly chunkDigests: ReadonlyArray<Uint8Array>
  /** Page size of `fingerprints`: one per page, -1 for zero and partial pages. */
  readonly pageSize: number
  readonly fingerprints: Int32Array
}

export interface DeltaCacheStats {
  readonly hits: number
  readonly misses: number
  readonly evictions: number
  readonly entries: number
  readonly bytes: number
  readonly capacity: number
  /** The largest single version kept (alone, evicting the others). */
  readonly ceiling: number
}

/** Why a transfer found no base version of its object. */
export type Miss =
  | { readonly reason: "FirstTransfer" }
  | { readonly reason: "Evicted" }
  | { readonly reason: "BaseTooLarge"; readonly size: number; readonly ceiling: number }

/** Why-no-base records kept, oldest dropped first (object ids are few; this only bounds a leak). */
const MISS_RECORDS = 1024

export class DeltaCache {
  private readonly entries = new Map<string, Version>()
  private readonly gone = new Map<string, Miss>()
  private readonly indexes = new WeakMap<Version, Map<number, number>>()
  private bytes = 0
  private hits = 0
  private misses = 0
  private evictions = 0

  /** The largest version kept (alone): at least `capacity`. */
  readonly ceiling: number

  constructor(
    readonly capacity: number,
    ceiling = capacity,
  ) {
    this.ceiling = Math.max(capacity, ceiling)
  }

  /** Whether a version of `size` bytes would be kept. */
  fits(size: number): boolean {
    return size <= this.ceiling
  }

  /** Why `objectId` has no cached version (after a miss). */
  missOf(objectId: string): Miss {
    return this.gone.get(objectId) ?? { reason: "FirstTransfer" }
  }

  /** Records that a version of `objectId` of at least `size` bytes was too large to keep. */
  refuse(objectId: string, size: number): void {
    this.remove(objectId)
    this.note(objectId, { reason: "BaseTooLarge", size, ceiling: this.ceiling })
  }

  private note(objectId: string, miss: Miss): void {
    this.gone.delete(objectId)
    this.gone.set(objectId, miss)
    if (this.gone.size > MISS_RECORDS) {
      const oldest = this.gone.keys().next()
      if (!oldest.done) this.gone.delete(oldest.value)
    }
  }

  /** Looks up the base for a new transfer of `objectId`, counting a hit or a miss. */
  lookup(objectId: string): Version | undefined {
    const v = this.entries.get(objectId)
    if (v === undefined) {
      this.misses++
      return undefined
    }
    this.hits++
    this.entries.delete(objectId)
    this.entries.set(objectId, v)
    return v
  }

  /** Same as `lookup`, without touching the counters (the decoder side). */
  peek(objectId: string): Version | undefined {
    return this.entries.get(objectId)
  }

  put(objectId: string, v: Version): void {
    this.remove(objectId)
    if (!this.fits(v.size)) {
      this.refuse(objectId, v.size)
      return
    }
    // Room for this version even when it alone is over `capacity`: the others go first.
    while (this.bytes + v.size > Math.max(this.capacity, v.size)) {
      const oldest = this.entries.keys().next()
      if (oldest.done) break
      this.remove(oldest.value)
      this.note(oldest.value, { reason: "Evicted" })
      this.evictions++
    }
    this.gone.delete(objectId)
    this.entries.set(objectId, v)
    this.bytes += v.size
  }

  remove(objectId: string): void {
    const v = this.entries.get(objectId)
    if (v === undefined) return
    this.entries.delete(objectId)
    this.bytes -= v.size
  }

  /** Fingerprint to the first page of `v` that has it; built on first use and kept with the version. */
  pageIndex(v: Version): Map<number, number> {
    let index = this.indexes.get(v)
    if (index === undefined) {
      index = new Map()
      const fps = v.fingerprints
      for (let p = 0; p < fps.length; p++) {
        const fp = fps[p] ?? -1
        if (fp >= 0 && !index.has(fp)) index.set(fp, p)
      }
      this.indexes.set(v, index)
    }
    return index
  }

  stats(): DeltaCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      entries: this.entries.size,
      bytes: this.bytes,
      capacity: this.capacity,
      ceiling: this.ceiling,
    }
  }
}

/** Bytes [offset, offset+length) of a version (clipped to its size), copied only if they span chunks. */
export const sliceVersion = (v: Version, offset: number, length: number): Buffer | undefined => {
  if (offset >= v.size) return undefined
  const end = Math.min(v.size, offset + length)
  const parts: Array<Buffer> = []
  let at = 0
  for (const c of v.chunks) {
    const cEnd = at + c.length
    if (cEnd > offset && at < end) parts.push(c.subarray(Math.max(0, offset - at), Math.min(c.length, end - at)))
    if (cEnd >= end) break
    at = cEnd
  }
  return parts.length === 1 ? parts[0] : Buffer.concat(parts)
}

/** One array of per-page fingerprints for the whole version. */
export const concatFingerprints = (parts: ReadonlyArray<Int32Array>): Int32Array => {
  let n = 0
  for (const p of parts) n += p.length
  const all = new Int32Array(n)
  let at = 0
  for (const p of parts) {
    all.set(p, at)
    at += p.length
  }
  return all
}
