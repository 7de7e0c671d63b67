import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

/** Deterministic pseudo-random bytes (xorshift32), incompressible. */
export const randomBytes = (n: number, seed = 1): Buffer => {
  const b = Buffer.alloc(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    b[i] = x & 0xff
  }
  return b
}

/** Real text: this package's own sources, repeated up to `n` bytes. */
export const text = (n: number): Buffer => {
  const dir = join(import.meta.dirname, "../src")
  const files = [dir, join(dir, "internal")].flatMap((d) =>
    readdirSync(d)
      .filter((f) => f.endsWith(".ts"))
      .map((f) => readFileSync(join(d, f))),
  )
  const one = Buffer.concat(files)
  const out = Buffer.alloc(n)
  for (let at = 0; at < n; at += one.length) one.copy(out, at, 0, Math.min(one.length, n - at))
  return out
}

/**
 * A memory-like image of `pages` 4 KiB pages: zero pages, repeated pages (shared libraries,
 * page cache copies), text pages and random pages (encrypted or compressed data), interleaved.
 */
export const memoryImage = (pages: number, seed = 7): Buffer => {
  const P = 4096
  const out = Buffer.alloc(pages * P)
  const t = text(64 * P)
  const r = randomBytes(16 * P, seed)
  for (let p = 0; p < pages; p++) {
    const kind = (p * 2654435761 + seed) % 10
    const dst = out.subarray(p * P, (p + 1) * P)
    if (kind < 3) continue // zero
    if (kind < 5)
      t.copy(dst, 0, (p % 8) * P, (p % 8) * P + P) // one of 8 recurring pages
    else if (kind < 8) t.copy(dst, 0, (p % 64) * P, (p % 64) * P + P)
    else r.copy(dst, 0, (p % 16) * P, (p % 16) * P + P)
    dst.writeUInt32LE(kind < 5 ? 0 : p, 0) // distinguishes pages that are not meant to repeat
  }
  return out
}

/** A new version of `image`: some pages get a few bytes changed, some are rewritten. */
export const mutate = (image: Buffer, everyNth: number, seed = 3): Buffer => {
  const next = Buffer.from(image)
  const P = 4096
  const noise = randomBytes(P, seed)
  for (let p = 0; p * P < next.length; p += everyNth) {
    const page = next.subarray(p * P, Math.min(next.length, (p + 1) * P))
    if (p % (everyNth * 4) === 0) noise.copy(page, 0, 0, page.length)
    else for (let i = 0; i < 24 && i * 97 < page.length; i++) page[i * 97] = (page[i * 97] ?? 0) ^ 0x5a
  }
  return next
}
