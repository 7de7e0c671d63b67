// SHA-256 in a worker thread, so hashing overlaps the network and file I/O on the main thread.
// Bytes are copied into a fresh buffer that is transferred (posting a Buffer view would clone its
// whole backing store); outstanding bytes are bounded by the caller awaiting `room()`.
// The worker starts on the first byte: a transfer that never sends data costs no thread.
import { createHash } from "node:crypto"
import { Worker } from "node:worker_threads"

// Plain JS evaluated in the worker: works the same from the TS sources (tests) and the build.
const code = `
const { parentPort } = require("node:worker_threads")
const h = require("node:crypto").createHash("sha256")
parentPort.on("message", (m) => {
  if (m === "digest") return parentPort.postMessage({ digest: h.digest("hex") })
  h.update(m)
  parentPort.postMessage({ done: m.byteLength })
})
`

export class Hasher {
  private worker: Worker | undefined
  private closed = false
  private outstanding = 0
  private waiters: Array<() => void> = []
  private onDigest: ((hex: string) => void) | undefined
  private failed: Error | undefined
  private result: Promise<string> | undefined

  constructor(readonly limit = 64 * 1024 * 1024) {}

  /** Whether a worker thread is running (tests count threads). */
  get started(): boolean {
    return this.worker !== undefined
  }

  private start(): Worker {
    if (this.worker) return this.worker
    if (this.closed) throw new Error("hasher closed")
    const worker = new Worker(code, { eval: true })
    this.worker = worker
    worker.unref()
    worker.on("message", (m: { done?: number; digest?: string }) => {
      if (m.done !== undefined) {
        this.outstanding -= m.done
        if (this.outstanding <= this.limit / 2) this.release()
      } else if (m.digest !== undefined) this.onDigest?.(m.digest)
    })
    worker.on("error", (e) => {
      this.failed = e
      this.release()
    })
    return worker
  }

  update(data: Uint8Array) {
    if (data.byteLength === 0) return
    const worker = this.start()
    const copy = new Uint8Array(data.byteLength)
    copy.set(data)
    this.outstanding += copy.byteLength
    worker.postMessage(copy, [copy.buffer])
  }

  /** Resolves when the backlog is under the limit. */
  room(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed)
    if (this.outstanding <= this.limit) return Promise.resolve()
    return new Promise((r) => this.waiters.push(r))
  }

  /** The digest of everything passed to `update`; the worker then stops. */
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
      worker.postMessage("digest")
    })
    return this.result
  }

  close() {
    this.closed = true
    const w = this.worker
    this.worker = undefined
    if (w) void w.terminate()
  }

  private release() {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }
}
