// End-to-end integrity digests of a transfer, in offset order.
//
// Two algorithms (the sender picks one in its HELLO, see `integrityFor`):
// - "xxh3-64": XXH3 on the calling thread, in place (no copy, no thread). It detects corruption by
//   our own code, the disk or the network stack; it is not collision resistant, so it is used only
//   where nobody can choose the bytes the receiver checks: under TLS (every byte authenticated) and
//   on unauthenticated loopback (no attacker model at all).
// - "sha256": in a worker thread, so hashing overlaps the network and file I/O on the main thread.
//   Used where an attacker can choose what arrives: plain TCP with a token, where the HELLO is
//   authenticated but the data is not (an on-path attacker could swap chunks for ones with the same
//   XXH3); the FIN's digest is then bound to the token with an HMAC (auth.ts).
//   Bytes are copied into a ring shared with the worker (or, when it is full, into a fresh buffer
//   that is transferred); outstanding bytes are bounded by the caller awaiting `room()`. The worker
//   starts on the first byte: a transfer that never sends data costs no thread (nor ring).
import { createHash } from "node:crypto"
import { Worker } from "node:worker_threads"
import { xxh3 } from "@node-rs/xxhash"

/** Integrity algorithms, as named in HELLO and in the results. */
export type Integrity = "sha256" | "xxh3-64"

export interface Hasher {
  /** Whether a worker thread is running (tests count threads). */
  readonly started: boolean
  update(data: Uint8Array): void
  /** Resolves when the backlog is under the limit. */
  room(): Promise<void>
  /** The digest (hex) of everything passed to `update`. */
  digest(): Promise<string>
  close(): void
}

export const makeHasher = (integrity: Integrity): Hasher =>
  integrity === "sha256" ? new ShaHasher() : new Xxh3Hasher()

const resolved = Promise.resolve()

class Xxh3Hasher implements Hasher {
  private readonly h = xxh3.Xxh3.withSeed()
  private closed = false
  private result: Promise<string> | undefined
  readonly started = false

  update(data: Uint8Array) {
    if (this.closed) throw new Error("hasher closed")
    if (data.byteLength > 0) this.h.update(data)
  }

  room(): Promise<void> {
    return resolved
  }

  digest(): Promise<string> {
    this.result ??= this.closed
      ? Promise.reject(new Error("hasher closed"))
      : Promise.resolve(this.h.digest().toString(16).padStart(16, "0"))
    return this.result
  }

  close() {
    this.closed = true
  }
}

// Plain JS evaluated in the worker: works the same from the TS sources (tests) and the build.
// A message is a transferred buffer, a region of the shared ring `{ at, len, skip }`, or "digest".
const code = `
const { parentPort, workerData } = require("node:worker_threads")
const h = require("node:crypto").createHash("sha256")
const ring = workerData
parentPort.on("message", (m) => {
  if (m === "digest") return parentPort.postMessage({ digest: h.digest("hex") })
  if (m.len !== undefined) {
    h.update(new Uint8Array(ring, m.at, m.len))
    return parentPort.postMessage({ done: m.len, ring: m.len + m.skip })
  }
  h.update(m)
  parentPort.postMessage({ done: m.byteLength, ring: 0 })
})
`

/** Bytes of the shared ring per hashing worker: the steady state when the worker keeps up. */
export const RING_SIZE = 16 * 1024 * 1024

/**
 * Space in a ring whose regions are freed in the order they were placed (the worker hashes in
 * order): `place` returns a contiguous free region (after `skip` wasted bytes at the end), or
 * undefined when there is none; `free(n)` releases the oldest `n` bytes (a region and its skip).
 */
export class RingSpace {
  private used = 0
  private writePos = 0

  constructor(readonly size: number) {}

  place(n: number): { at: number; skip: number } | undefined {
    const size = this.size
    if (n <= 0 || this.used + n > size) return undefined
    if (this.used === 0) this.writePos = 0
    const tail = (this.writePos - this.used + size) % size
    let at: number
    let skip = 0
    if (tail <= this.writePos) {
      // Free: [writePos, size) and [0, tail).
      if (size - this.writePos >= n) at = this.writePos
      else if (tail >= n) {
        skip = size - this.writePos
        at = 0
      } else return undefined
    } else if (tail - this.writePos >= n) at = this.writePos
    else return undefined
    this.used += skip + n
    this.writePos = (at + n) % size
    return { at, skip }
  }

  free(n: number) {
    this.used -= n
  }
}

class ShaHasher implements Hasher {
  private worker: Worker | undefined
  private closed = false
  private outstanding = 0
  private waiters: Array<() => void> = []
  private onDigest: ((hex: string) => void) | undefined
  private failed: Error | undefined
  private result: Promise<string> | undefined
  // Bytes go to the worker through a shared ring (one copy into memory that is already mapped, a
  // small message); only when the ring is full through a fresh transferred buffer. Posting a
  // transferred buffer per chunk cost more main-thread time than hashing in place.
  private ring: SharedArrayBuffer | undefined
  private ringView: Uint8Array | undefined
  private readonly space = new RingSpace(RING_SIZE)

  constructor(readonly limit = 64 * 1024 * 1024) {}

  get started(): boolean {
    return this.worker !== undefined
  }

  private start(): Worker {
    if (this.worker) return this.worker
    if (this.closed) throw new Error("hasher closed")
    this.ring = new SharedArrayBuffer(RING_SIZE)
    this.ringView = new Uint8Array(this.ring)
    const worker = new Worker(code, { eval: true, workerData: this.ring })
    this.worker = worker
    worker.unref()
    worker.on("message", (m: { done?: number; ring?: number; digest?: string }) => {
      if (m.done !== undefined) {
        this.outstanding -= m.done
        this.space.free(m.ring ?? 0)
        if (this.outstanding <= this.limit / 2) this.release()
      } else if (m.digest !== undefined) this.onDigest?.(m.digest)
    })
    worker.on("error", (e) => {
      this.failed = e
      this.release()
      this.onFailure?.(e)
    })
    return worker
  }

  private onFailure: ((e: Error) => void) | undefined

  update(data: Uint8Array) {
    if (data.byteLength === 0) return
    const worker = this.start()
    this.outstanding += data.byteLength
    const region = this.space.place(data.byteLength)
    if (region !== undefined) {
      this.ringView!.set(data, region.at)
      worker.postMessage({ at: region.at, len: data.byteLength, skip: region.skip })
      return
    }
    const copy = new Uint8Array(data.byteLength)
    copy.set(data)
    worker.postMessage(copy, [copy.buffer])
  }

  room(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed)
    if (this.outstanding <= this.limit) return resolved
    return new Promise((r) => this.waiters.push(r))
  }

  digest(): Promise<string> {
    this.result ??= new Promise<string>((resolve, reject) => {
      if (this.failed) return reject(this.failed)
      if (this.closed) return reject(new Error("hasher closed"))
      // Nothing hashed: no thread for the digest of zero bytes.
      if (!this.worker) return resolve(createHash("sha256").digest("hex"))
      const worker = this.worker
      this.onDigest = (hex) => {
        resolve(hex)
        this.close()
      }
      this.onFailure = reject
      worker.postMessage("digest")
    })
    return this.result
  }

  close() {
    this.closed = true
    const w = this.worker
    this.worker = undefined
    this.ring = undefined
    this.ringView = undefined
    if (w) void w.terminate()
  }

  private release() {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }
}

/**
 * The digest a transfer needs: SHA-256 when the data crosses plain TCP authenticated only by a
 * token (an attacker on the path could choose what arrives), XXH3 otherwise (TLS authenticates
 * every byte; an unauthenticated loopback receiver has no attacker model to defend).
 */
export const integrityFor = (o: { readonly tls: boolean; readonly token: boolean }): Integrity =>
  o.token && !o.tls ? "sha256" : "xxh3-64"

/** Whether a receiver with this setup accepts `integrity` from a sender (a stronger one always). */
export const acceptable = (integrity: Integrity, o: { readonly tls: boolean; readonly token: boolean }): boolean =>
  integrity === "sha256" || integrityFor(o) === integrity
