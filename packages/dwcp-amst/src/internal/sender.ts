// Sender engine: stripes chunks over N connections within the receiver's window, re-sends a dead
// stream's unacked chunks on the others, reconnects and resumes after a full disconnect, adapts N.
import * as net from "node:net"
import * as tls from "node:tls"
import { Decoder, encode, type Frame, FrameType } from "../Frame.js"
import * as Controller from "../StreamController.js"
import { TransferError } from "../TransferError.js"
import { sign, signFin } from "./auth.js"
import { type Hasher, type Integrity, integrityFor, makeHasher } from "./hasher.js"
import { bare, control, Done, decodeControl, Failure, type Hello, Welcome } from "./messages.js"

/** What the engine reads from: the public Source's Effects, run by Sender.send. */
export interface EngineSource {
  readonly name: string
  readonly size: number
  read(offset: number, length: number): Promise<Buffer>
  /** Fills `target` from `offset` (lets the engine reuse chunk buffers). */
  readonly readInto?: ((offset: number, target: Buffer) => Promise<void>) | undefined
}

export interface SenderConfig {
  readonly host: string
  readonly port: number
  readonly tls?: tls.ConnectionOptions | undefined
  /** Shared token proven in each HELLO (HMAC). */
  readonly token?: Buffer | undefined
  readonly source: EngineSource
  readonly transferId: Buffer
  readonly chunkSize: number
  readonly minStreams: number
  readonly maxStreams: number
  readonly initialStreams: number
  readonly adaptive: boolean
  readonly controlIntervalMs: number
  readonly stallTimeoutMs: number
  readonly connectTimeoutMs: number
  readonly maxFrameSize: number
  /** Unacked chunks a stream may hold. */
  readonly chunksPerStream: number
  readonly predictedBandwidth?: (() => number | undefined) | undefined
  readonly onSocket?: ((socket: net.Socket) => void | Promise<void>) | undefined
  readonly pace?: ((bytes: number) => Promise<void>) | undefined
  readonly onProgress?: ((p: Progress) => void) | undefined
  readonly onEvent?: ((e: SenderEvent) => void) | undefined
  /** Sent in each HELLO (not covered by the HMAC: it is trace metadata, not authority). */
  readonly traceparent?: string | undefined
  /** The end-to-end digest; default `integrityFor` this connection (TLS, token). */
  readonly integrity?: Integrity | undefined
}

export interface Progress {
  readonly bytes: number
  readonly total: number
  /** Goodput over the last second or so, bytes/s. */
  readonly rate: number
  /** Seconds left at `rate`; `Infinity` before a rate is known. */
  readonly eta: number
  readonly streams: number
}

export type SenderEvent =
  | { readonly _tag: "StreamDied"; readonly stream: number; readonly unacked: number; readonly cause: string }
  | { readonly _tag: "Reconnecting"; readonly attempt: number; readonly acknowledged: number }
  | { readonly _tag: "Resumed"; readonly offset: number }
  | { readonly _tag: "Streams"; readonly n: number; readonly goodput: number; readonly reason: string }

export interface SendResult {
  readonly transferId: string
  readonly size: number
  /** The end-to-end digest (hex) of the bytes sent, by `integrity`. */
  readonly digest: string
  /** Its algorithm: `xxh3-64` under TLS or without authentication, `sha256` over plain TCP with a token. */
  readonly integrity: Integrity
  readonly durationMs: number
  /** Bytes/s over the whole call. */
  readonly goodput: number
  readonly resumedFrom: number
  readonly sessions: number
  readonly deadStreams: number
  readonly resentChunks: number
  readonly maxStreamsUsed: number
  /** Stream count after each control epoch. */
  readonly streamHistory: ReadonlyArray<number>
}

interface Chunk {
  readonly seq: number
  readonly offset: number
  readonly length: number
  data: Buffer | undefined
  /** `data` came from the engine's buffer pool (and may go back to it). */
  pooled: boolean
  /** Times written to a socket: a buffer written more than once may still sit in another socket's queue. */
  sends: number
  stream: Stream | undefined
  sentAt: number
  queued: boolean
  /** When a copy was last sent on another stream to unblock the receiver's in-order credit. */
  hedgedAt: number
}

interface Stream {
  readonly index: number
  readonly socket: net.Socket
  readonly decoder: Decoder
  readonly unacked: Map<number, Chunk>
  dead: boolean
  draining: boolean
  welcome: ((w: Welcome) => void) | undefined
  /** Set until WELCOME: the receiver refused the stream (ERROR instead of WELCOME). */
  refused: ((code: string, message: string) => void) | undefined
}

type Outcome = { readonly _tag: "done"; readonly digest: string } | { readonly _tag: "cut"; readonly cause: string }

/** One attempt's end: done, or cut off (worth a reconnect; fatal failures are thrown). */
export type Attempt =
  | { readonly _tag: "done"; readonly result: SendResult }
  | { readonly _tag: "cut"; readonly cause: string }

/**
 * Runs attempts (sessions); the caller decides when to reconnect (Sender.send retries on a
 * Schedule) and calls `close()` at the end.
 */
export class SenderEngine {
  readonly integrity: Integrity
  private readonly hash: Hasher
  private hashedUpTo = 0
  private readonly unhashed = new Map<number, Buffer>()
  /** Free full-size chunk buffers (bounded by the chunks in flight). */
  private readonly pool: Array<Buffer> = []
  private digestHex: string | undefined
  private deadStreams = 0
  private resentChunks = 0
  private maxStreamsUsed = 0
  private nextStreamIndex = 0
  private readonly history: Array<number> = []
  private controller: Controller.State
  private acknowledged = 0
  private session: Session | undefined
  private readonly started = performance.now()
  private resumedFrom: number | undefined
  /** Sessions that got a WELCOME. */
  sessions = 0
  /** Attempts started. */
  attempts = 0
  lastCause = ""

  constructor(readonly config: SenderConfig) {
    this.controller = Controller.initial({ min: config.minStreams, max: config.maxStreams }, config.initialStreams)
    this.integrity =
      config.integrity ?? integrityFor({ tls: config.tls !== undefined, token: config.token !== undefined })
    this.hash = makeHasher(this.integrity)
  }

  abort() {
    this.session?.stop("aborted")
  }

  close() {
    this.session?.stop("closed")
    this.hash.close()
  }

  async attempt(): Promise<Attempt> {
    const attempt = this.attempts++
    if (attempt > 0) this.config.onEvent?.({ _tag: "Reconnecting", attempt, acknowledged: this.acknowledged })
    const session = new Session(this)
    this.session = session
    const outcome = await session.run((offset) => {
      this.sessions++
      this.resumedFrom ??= offset
      if (offset > 0) this.config.onEvent?.({ _tag: "Resumed", offset })
    })
    if (outcome._tag === "cut") {
      this.lastCause = outcome.cause
      return outcome
    }
    const durationMs = performance.now() - this.started
    const resumedFrom = this.resumedFrom ?? 0
    return {
      _tag: "done",
      result: {
        transferId: this.config.transferId.toString("hex"),
        size: this.config.source.size,
        digest: outcome.digest,
        integrity: this.integrity,
        durationMs,
        goodput: ((this.config.source.size - resumedFrom) * 1000) / Math.max(durationMs, 1),
        resumedFrom,
        sessions: this.sessions,
        deadStreams: this.deadStreams,
        resentChunks: this.resentChunks,
        maxStreamsUsed: this.maxStreamsUsed,
        streamHistory: this.history,
      },
    }
  }

  /** The failure once reconnecting has stopped. */
  gaveUp(): TransferError {
    return this.fail(
      this.sessions === 0 ? "connect" : "gave-up",
      `gave up after ${Math.max(0, this.attempts - 1)} reconnects: ${this.lastCause}`,
    )
  }

  fail(reason: TransferError["reason"], message: string) {
    return new TransferError({ reason, message, acknowledged: this.acknowledged })
  }

  // --- hashing, in offset order whatever order the reads complete in ---
  hashChunk(offset: number, data: Buffer) {
    if (offset < this.hashedUpTo) return
    this.unhashed.set(offset, data)
    for (let d = this.unhashed.get(this.hashedUpTo); d; d = this.unhashed.get(this.hashedUpTo)) {
      this.unhashed.delete(this.hashedUpTo)
      this.hash.update(d)
      this.hashedUpTo += d.length
    }
  }

  async hashThrough(upTo: number) {
    const step = this.config.chunkSize
    while (this.hashedUpTo < upTo) {
      const at = this.hashedUpTo
      const data =
        this.unhashed.get(at) ?? (await this.config.source.read(at, Math.min(step, this.config.source.size - at)))
      this.hashChunk(at, data)
    }
    for (const k of this.unhashed.keys()) if (k < this.hashedUpTo) this.unhashed.delete(k)
  }

  /** Reads a chunk, into a pooled buffer when the source can. */
  async readChunk(offset: number, length: number): Promise<{ data: Buffer; pooled: boolean }> {
    const src = this.config.source
    if (src.readInto === undefined || length !== this.config.chunkSize) {
      return { data: await src.read(offset, length), pooled: false }
    }
    const data = this.pool.pop() ?? Buffer.allocUnsafe(length)
    await src.readInto(offset, data)
    return { data, pooled: true }
  }

  /** Takes back a buffer once nothing can still read it: acked, written once, and hashed. */
  recycle(data: Buffer, offset: number) {
    if (offset + data.length <= this.hashedUpTo && this.pool.length < 1024) this.pool.push(data)
  }

  async digest(): Promise<string> {
    this.digestHex ??= await this.hash.digest()
    return this.digestHex
  }

  /** The digest once `digest()` has resolved (it has before any FIN is sent). */
  get knownDigest(): string | undefined {
    return this.digestHex
  }

  /** Waits while the hashing worker is far behind. */
  hashRoom(): Promise<void> {
    return this.hash.room()
  }

  // --- bookkeeping shared with sessions ---
  streamDied(s: Stream, unacked: number, cause: string) {
    this.deadStreams++
    this.config.onEvent?.({ _tag: "StreamDied", stream: s.index, unacked, cause })
  }
  resent(n: number) {
    this.resentChunks += n
  }
  newStreamIndex() {
    return this.nextStreamIndex++
  }
  setAcknowledged(n: number) {
    this.acknowledged = n
  }
  usedStreams(n: number) {
    this.maxStreamsUsed = Math.max(this.maxStreamsUsed, n)
  }
  control(goodput: number): number {
    const c = this.config
    if (!c.adaptive) return this.controller.n
    const predicted = c.predictedBandwidth?.()
    const before = this.controller.n
    this.controller = Controller.step({ min: c.minStreams, max: c.maxStreams }, this.controller, goodput, predicted)
    this.history.push(this.controller.n)
    if (this.controller.n !== before) {
      c.onEvent?.({ _tag: "Streams", n: this.controller.n, goodput, reason: this.controller.reason })
    }
    return this.controller.n
  }
  get targetStreams() {
    return this.controller.n
  }
}

class Session {
  private readonly streams = new Set<Stream>()
  private readonly inflight = new Map<number, Chunk>()
  private readonly resend: Array<Chunk> = []
  private window = 0
  /** Receiver's in-order written offset (its credit): new chunks may go up to delivered + window. */
  private delivered = 0
  /** Bytes acknowledged as received in this session (goodput for the controller). */
  private received = 0
  private cursor = 0
  private totalChunks = 0
  private startOffset = 0
  private waiters: Array<() => void> = []
  private finish: ((o: Outcome) => void) | undefined
  private finSent = false
  private finStream: Stream | undefined
  private stopped = false
  private timers: Array<NodeJS.Timeout> = []
  private rateSamples: Array<[number, number]> = []
  private lastProgress = 0
  private lastControl = { at: 0, bytes: 0 }
  /** Smoothed time from sending a chunk to its ack, ms. */
  private ackLatency = 0

  constructor(private readonly e: SenderEngine) {}

  private get c() {
    return this.e.config
  }

  async run(onStart: (offset: number) => void): Promise<Outcome> {
    const done = new Promise<Outcome>((resolve) => {
      this.finish = resolve
    })
    try {
      const first = await this.open()
      const w = first.welcome
      if (w.done) {
        await this.e.hashThrough(this.c.source.size)
        const mine = await this.e.digest()
        this.stop("done")
        if (w.digest !== mine) throw this.e.fail("hash-mismatch", `receiver has ${w.digest}, sender ${mine}`)
        onStart(this.c.source.size)
        return { _tag: "done", digest: mine }
      }
      if (w.maxFrameSize !== undefined && this.c.chunkSize > w.maxFrameSize) {
        throw this.e.fail(
          "remote",
          `chunk size ${this.c.chunkSize} exceeds the receiver's frame limit ${w.maxFrameSize}`,
        )
      }
      onStart(w.offset)
      this.startOffset = w.offset
      this.delivered = w.offset
      this.window = Math.max(w.window, this.c.chunkSize)
      this.cursor = Math.floor(w.offset / this.c.chunkSize)
      this.totalChunks = Math.ceil(this.c.source.size / this.c.chunkSize)
      this.e.setAcknowledged(w.offset)
      // Chunks before the resume point are hashed from the source, as the receiver does from disk.
      await this.e.hashThrough(w.offset)
      this.lastControl = { at: performance.now(), bytes: w.offset }
      // Pump on the first stream at once and adopt the others as they connect: waiting for all of
      // them idled the link for a round trip or more (several under load). The per-stream chunk
      // limit keeps the first stream from taking every chunk.
      this.adopt(first.stream)
      this.ensureStreams(this.e.targetStreams)
      this.timers.push(setInterval(() => this.tick(), this.c.controlIntervalMs))
      this.timers.push(setInterval(() => this.checkStall(), Math.max(50, this.c.stallTimeoutMs / 4)))
      this.timers.push(setInterval(() => this.hedge(), 50))
      for (const t of this.timers) t.unref()
      this.maybeFin()
    } catch (err) {
      this.stop("failed")
      if (err instanceof TransferError) throw err
      return { _tag: "cut", cause: (err as Error).message }
    }
    const outcome = await done
    this.stop("ended")
    if (outcome._tag === "cut" && outcome.cause.startsWith("source:")) throw this.e.fail("source", outcome.cause)
    if (outcome._tag === "cut" && outcome.cause.startsWith("remote:")) {
      throw this.e.fail(outcome.cause.includes("hash-mismatch") ? "hash-mismatch" : "remote", outcome.cause)
    }
    return outcome
  }

  stop(why: string) {
    if (this.stopped) return
    this.stopped = true
    for (const t of this.timers) clearInterval(t)
    for (const s of this.streams) s.socket.destroy()
    this.finish?.({ _tag: "cut", cause: why })
    this.wake()
  }

  // --- connections ---
  private connect(): Promise<{ stream: Stream; welcome: Welcome }> {
    const c = this.c
    return new Promise((resolve, reject) => {
      const socket = c.tls
        ? tls.connect({ ...c.tls, host: c.host, port: c.port })
        : net.connect({ host: c.host, port: c.port })
      socket.setNoDelay(true)
      const s: Stream = {
        index: this.e.newStreamIndex(),
        socket,
        decoder: new Decoder(c.maxFrameSize),
        unacked: new Map(),
        dead: false,
        draining: false,
        welcome: undefined,
        refused: undefined,
      }
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error(`stream ${s.index}: no WELCOME within ${c.connectTimeoutMs} ms`))
      }, c.connectTimeoutMs)
      s.welcome = (w) => {
        clearTimeout(timer)
        s.refused = undefined
        resolve({ stream: s, welcome: w })
      }
      s.refused = (code, message) => {
        clearTimeout(timer)
        s.welcome = undefined
        socket.destroy()
        // Busy is worth a reconnect later; a refused identity or an existing file is not.
        reject(
          code === "busy"
            ? new Error(`receiver busy: ${message}`)
            : this.e.fail("remote", `receiver refused the transfer: ${code}: ${message}`),
        )
      }
      socket.once(c.tls ? "secureConnect" : "connect", () => {
        const fields = { name: c.source.name, size: c.source.size, chunkSize: c.chunkSize, stream: s.index }
        const ts = Date.now()
        const traced = c.traceparent === undefined ? {} : { traceparent: c.traceparent }
        const base = { ...fields, ...traced, integrity: this.e.integrity }
        const hello: Hello = c.token
          ? { ...base, auth: { ts, mac: sign(c.token, c.transferId.toString("hex"), fields, ts) } }
          : base
        // The socket hook (e.g. congestion control from @novacron/dwcp-acp) runs before any data.
        Promise.resolve()
          .then(() => c.onSocket?.(socket))
          .then(
            () => this.write(s, control(FrameType.HELLO, c.transferId, hello)),
            (err: Error) => {
              socket.destroy()
              reject(new Error(`socket hook failed: ${err.message}`))
            },
          )
      })
      socket.on("data", (chunk: Buffer) => {
        if (s.dead) return
        try {
          for (const f of s.decoder.push(chunk)) this.handle(s, f)
        } catch (err) {
          socket.destroy()
          this.died(s, (err as Error).message)
        }
      })
      socket.on("error", (err) => {
        clearTimeout(timer)
        reject(err)
      })
      socket.on("close", () => {
        clearTimeout(timer)
        reject(new Error(`stream ${s.index} closed before WELCOME`))
        this.died(s, "connection closed")
      })
    })
  }

  private async open() {
    return this.connect()
  }

  private adopt(s: Stream) {
    if (this.stopped || s.dead) {
      s.socket.destroy()
      return
    }
    this.streams.add(s)
    this.e.usedStreams(this.liveCount())
    void this.pump(s)
  }

  private liveCount() {
    let n = 0
    for (const s of this.streams) if (!s.dead && !s.draining) n++
    return n
  }

  private opening = 0
  private ensureStreams(n: number) {
    const live = this.liveCount()
    if (live + this.opening < n) {
      for (let i = live + this.opening; i < n; i++) {
        this.opening++
        this.connect().then(
          ({ stream }) => {
            this.opening--
            this.adopt(stream)
          },
          () => {
            this.opening--
          },
        )
      }
    } else if (live > n) {
      // Drain the newest streams: they take no new chunks and close once their chunks are acked.
      const order = [...this.streams].filter((s) => !s.dead && !s.draining).sort((a, b) => b.index - a.index)
      for (const s of order.slice(0, live - n)) s.draining = true
      this.wake()
    }
  }

  private died(s: Stream, cause: string) {
    if (s.dead) return
    s.dead = true
    const wasMember = this.streams.delete(s)
    if (!wasMember) return
    const orphans = [...s.unacked.values()]
    s.unacked.clear()
    if (this.stopped) return
    if (!s.draining || orphans.length > 0) this.e.streamDied(s, orphans.length, cause)
    for (const ch of orphans) this.requeue(ch)
    if (orphans.length) this.e.resent(orphans.length)
    if (this.stopped) return
    if (this.streams.size === 0 && this.opening === 0) {
      this.finish?.({ _tag: "cut", cause: `all streams lost (${cause})` })
      return
    }
    if (this.finStream === s) {
      // The FIN may have died with its stream: send it again on another.
      this.finSent = false
      this.maybeFin()
    }
    this.wake()
  }

  private requeue(ch: Chunk) {
    ch.stream = undefined
    if (ch.queued || !this.inflight.has(ch.seq)) return
    ch.queued = true
    let i = this.resend.length
    while (i > 0 && this.resend[i - 1]!.seq > ch.seq) i--
    this.resend.splice(i, 0, ch)
  }

  // --- sending ---
  private wake() {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  private wait() {
    return new Promise<void>((r) => this.waiters.push(r))
  }

  private write(s: Stream, f: Frame): boolean {
    if (s.dead || s.socket.destroyed) return true
    const [h, p] = encode(f)
    if (p.length === 0) return s.socket.write(h)
    s.socket.cork()
    s.socket.write(h)
    const ok = s.socket.write(p)
    s.socket.uncork()
    return ok
  }

  private take(s: Stream): Chunk | undefined {
    if (s.draining) return undefined
    // Few chunks per stream: a deep per-stream queue makes each chunk wait seconds behind its
    // stream's backlog, and the in-order credit then stalls every stream. Faster streams ack sooner
    // and so pull more chunks.
    if (s.unacked.size >= this.c.chunksPerStream) return undefined
    while (this.resend.length) {
      const ch = this.resend.shift()!
      ch.queued = false
      if (this.inflight.has(ch.seq)) return ch
    }
    if (this.cursor >= this.totalChunks) return undefined
    const offset = this.cursor * this.c.chunkSize
    const length = Math.min(this.c.chunkSize, this.c.source.size - offset)
    if (offset + length > this.delivered + this.window && offset > this.delivered) return undefined
    const ch: Chunk = {
      seq: this.cursor++,
      offset,
      length,
      data: undefined,
      pooled: false,
      sends: 0,
      stream: undefined,
      sentAt: 0,
      queued: false,
      hedgedAt: 0,
    }
    this.inflight.set(ch.seq, ch)
    return ch
  }

  private async pump(s: Stream) {
    while (!s.dead && !this.stopped) {
      const ch = this.take(s)
      if (!ch) {
        if (s.draining && s.unacked.size === 0) {
          this.write(s, bare(FrameType.BYE, this.c.transferId, 0, 0))
          s.socket.end()
          this.streams.delete(s)
          s.dead = true
          return
        }
        await this.wait()
        continue
      }
      ch.stream = s
      s.unacked.set(ch.seq, ch)
      if (!ch.data) {
        try {
          const { data, pooled } = await this.e.readChunk(ch.offset, ch.length)
          ch.data = data
          ch.pooled = pooled
          this.e.hashChunk(ch.offset, data)
          await this.e.hashRoom()
        } catch (err) {
          this.finish?.({ _tag: "cut", cause: `source: ${(err as Error).message}` })
          return
        }
      }
      if (this.c.pace) await this.c.pace(ch.length)
      // The stream may have died during the read or the pacing; its chunks were requeued already.
      if (s.dead || ch.stream !== s || !this.inflight.has(ch.seq)) continue
      ch.sentAt = performance.now()
      ch.sends++
      const ok = this.write(s, {
        type: FrameType.DATA,
        transferId: this.c.transferId,
        seq: ch.seq,
        offset: ch.offset,
        payload: ch.data!,
      })
      if (!ok) await this.drained(s)
    }
  }

  private drained(s: Stream) {
    return new Promise<void>((resolve) => {
      const done = () => {
        s.socket.off("drain", done)
        s.socket.off("close", done)
        resolve()
      }
      s.socket.on("drain", done)
      s.socket.on("close", done)
    })
  }

  // --- receiving ---
  private handle(s: Stream, f: Frame) {
    switch (f.type) {
      case FrameType.WELCOME: {
        const w = decodeControl(Welcome, f)
        const cb = s.welcome
        s.welcome = undefined
        cb?.(w)
        return
      }
      case FrameType.ACK:
        return this.ack(f.seq)
      case FrameType.CREDIT:
        return this.credit(f.offset)
      case FrameType.DONE: {
        const d = decodeControl(Done, f)
        const mine = this.e.knownDigest
        if (d.digest !== mine)
          this.finish?.({ _tag: "cut", cause: `remote: hash-mismatch: receiver ${d.digest}, sender ${mine}` })
        else this.finish?.({ _tag: "done", digest: mine })
        return
      }
      case FrameType.ERROR: {
        const m = decodeControl(Failure, f)
        if (s.refused) return s.refused(m.code, m.message)
        this.finish?.({ _tag: "cut", cause: `remote: ${m.code}: ${m.message}` })
        return
      }
      default:
        throw new Error(`unexpected frame type ${f.type} at the sender (offset ${f.at})`)
    }
  }

  private ack(seq: number) {
    const ch = this.inflight.get(seq)
    if (!ch) return
    this.inflight.delete(seq)
    ch.stream?.unacked.delete(seq)
    if (ch.data && ch.pooled && ch.sends === 1) this.e.recycle(ch.data, ch.offset)
    ch.data = undefined
    this.received += ch.length
    const latency = performance.now() - ch.sentAt
    if (ch.sentAt > 0 && ch.hedgedAt === 0) {
      this.ackLatency = this.ackLatency === 0 ? latency : this.ackLatency * 0.9 + latency * 0.1
    }
    this.wake()
  }

  private credit(offset: number) {
    if (offset <= this.delivered) return
    this.delivered = Math.min(offset, this.c.source.size)
    this.e.setAcknowledged(this.delivered)
    this.progress(false)
    this.maybeFin()
    this.wake()
  }

  private isComplete() {
    return this.delivered >= this.c.source.size
  }

  private maybeFin() {
    if (this.finSent || !this.isComplete()) return
    const s = [...this.streams].find((x) => !x.dead)
    if (!s) return
    this.finSent = true
    this.finStream = s
    this.progress(true)
    void this.e.hashThrough(this.c.source.size).then(
      async () => {
        const digest = await this.e.digest()
        const id = this.c.transferId
        const mac = this.c.token && signFin(this.c.token, id.toString("hex"), this.e.integrity, digest)
        this.write(s, control(FrameType.FIN, id, mac ? { digest, mac } : { digest }))
      },
      (err: Error) => this.finish?.({ _tag: "cut", cause: `source: ${err.message}` }),
    )
  }

  private progress(force: boolean) {
    const now = performance.now()
    if (!force && now - this.lastProgress < 100) return
    this.lastProgress = now
    const bytes = this.delivered
    this.rateSamples.push([now, bytes])
    while (this.rateSamples.length > 2 && now - this.rateSamples[0]![0] > 1500) this.rateSamples.shift()
    const [t0, b0] = this.rateSamples[0]!
    const rate = now > t0 ? ((bytes - b0) * 1000) / (now - t0) : 0
    const left = this.c.source.size - bytes
    this.c.onProgress?.({
      bytes,
      total: this.c.source.size,
      rate,
      eta: left === 0 ? 0 : rate > 0 ? left / rate : Number.POSITIVE_INFINITY,
      streams: this.liveCount(),
    })
  }

  private tick() {
    if (this.stopped) return
    const now = performance.now()
    const bytes = this.startOffset + this.received
    const goodput = ((bytes - this.lastControl.bytes) * 1000) / Math.max(1, now - this.lastControl.at)
    this.lastControl = { at: now, bytes }
    const n = this.isComplete() ? this.liveCount() : this.e.control(goodput)
    if (!this.isComplete()) this.ensureStreams(n)
    this.progress(true)
  }

  /**
   * Credit only advances in order, so one chunk held up on a stream in TCP loss recovery (an RTO can
   * last seconds) stops every stream once the window is used up. When the sender is half-way into its
   * window, the chunk holding the credit back, once it has waited 1.5x the smoothed ack latency, is
   * sent again on the least loaded other stream; whichever copy arrives first is acked.
   */
  private hedge() {
    if (this.stopped || this.ackLatency === 0) return
    const ahead = this.cursor * this.c.chunkSize - this.delivered
    if (ahead < this.window / 2) return
    const now = performance.now()
    // Slower than the average chunk: likely in loss recovery (or its stream is far behind).
    const after = Math.max(100, 1.5 * this.ackLatency)
    const live = [...this.streams].filter((x) => !x.dead && !x.draining)
    if (live.length < 2) return
    let seq = Math.floor(this.delivered / this.c.chunkSize)
    // One copy per tick bounds the duplicate traffic (20 chunks/s at most) to when credit is short.
    for (let sent = 0; sent < 1 && seq < this.cursor; seq++) {
      const ch = this.inflight.get(seq)
      if (!ch?.data || !ch.stream || ch.queued) continue
      if (now - ch.sentAt < after || now - ch.hedgedAt < after) continue
      const other = live
        .filter((x) => x !== ch.stream)
        .sort((a, b) => a.unacked.size - b.unacked.size || a.socket.writableLength - b.socket.writableLength)[0]
      if (!other) return
      ch.hedgedAt = now
      ch.sends++
      sent++
      this.e.resent(1)
      this.write(other, {
        type: FrameType.DATA,
        transferId: this.c.transferId,
        seq: ch.seq,
        offset: ch.offset,
        payload: ch.data,
      })
    }
  }

  private checkStall() {
    if (this.stopped) return
    // Acks come per chunk as it arrives, so the chunk sent longest ago without one marks its stream.
    let oldest: Chunk | undefined
    for (const ch of this.inflight.values()) {
      if (ch.stream && !ch.queued && ch.sentAt > 0 && (!oldest || ch.sentAt < oldest.sentAt)) oldest = ch
    }
    if (!oldest?.stream || oldest.sentAt === 0) return
    if (performance.now() - oldest.sentAt > this.c.stallTimeoutMs) {
      const s = oldest.stream
      s.socket.destroy()
      this.died(s, `stalled: chunk ${oldest.seq} unacked for ${this.c.stallTimeoutMs} ms`)
    }
  }
}
