// Receiver engine: accepts streams, acks each chunk on the stream it came by as it arrives,
// reassembles in order into a private staging directory, grants credit (bytes written + window) as
// it writes, persists progress for resume, verifies the digest on FIN and links the file into place
// (never over an existing one).
//
// Hostile peers: connections are capped (total and per address) and must say HELLO in time;
// senders authenticate by client certificate or token; transfers are capped, each reserves its
// reorder window from a total budget, and a transfer whose last stream is gone releases its file
// and hashing worker after a grace period.
import { constants } from "node:fs"
import type { FileHandle } from "node:fs/promises"
import { chmod, link, lstat, mkdir, open, rename, rm } from "node:fs/promises"
import * as net from "node:net"
import { basename, join } from "node:path"
import * as tls from "node:tls"
import { Decoder, encode, encodeForPeer, type Frame, FrameError, FrameType, VERSION } from "../Frame.js"
import { ProtocolError } from "../TransferError.js"
import { verify, verifyFin } from "./auth.js"
import { acceptable, type Hasher, type Integrity, makeHasher } from "./hasher.js"
import { bare, control, decodeControl, Fin, Hello, traceparentOf } from "./messages.js"

/** Staging directory inside `dir` (mode 0700) holding part and progress files named by transfer id. */
export const STAGING = ".amst-staging"
/** Frame payload accepted before a stream's HELLO is answered (a HELLO is a few hundred bytes). */
const HELLO_MAX = 64 * 1024
const { O_RDONLY, O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants

export interface ReceiverConfig {
  readonly host: string
  readonly port: number
  readonly dir: string
  readonly tls?: tls.TlsOptions | undefined
  /** Reorder buffer bound in bytes, advertised to senders as their in-flight window. */
  readonly window: number
  readonly maxFrameSize: number
  /** Persist progress after this many newly written bytes. */
  readonly persistEvery: number
  /** Shared secret a HELLO must prove (HMAC); undefined when not required. */
  readonly token?: Buffer | undefined
  /** Identity check of a client certificate (mutual TLS). */
  readonly authorizePeer?: ((peer: tls.PeerCertificate) => boolean) | undefined
  readonly maxTransfers: number
  readonly maxConnections: number
  readonly maxConnectionsPerAddress: number
  /** Sum of the reorder windows of all open transfers. */
  readonly maxReorderBytes: number
  readonly helloTimeoutMs: number
  readonly idleTimeoutMs: number
  /** A transfer with no stream left keeps its file and worker this long for a reconnect. */
  readonly releaseAfterMs: number
}

export interface Completed {
  readonly transferId: string
  readonly name: string
  readonly path: string
  readonly size: number
  /** The end-to-end digest (hex), checked against the sender's. */
  readonly digest: string
  /** Its algorithm (see `Sender.Result.integrity`). */
  readonly integrity: Integrity
  readonly resumedFrom: number
  /** The sender's span (W3C traceparent) from a HELLO of the transfer, when one carried it. */
  readonly traceparent?: string | undefined
}

export interface ReceiverFault {
  readonly transferId: string | undefined
  readonly remote: string
  readonly error: FrameError | ProtocolError | Error
}

export interface ReceiverProgress {
  readonly transferId: string
  readonly name: string
  readonly bytes: number
  readonly total: number
}

export interface ReceiverHooks {
  onComplete(c: Completed): void
  onFault(f: ReceiverFault): void
  onProgress?(p: ReceiverProgress): void
}

interface Conn {
  readonly socket: net.Socket
  readonly decoder: Decoder
  readonly remote: string
  readonly address: string
  helloTimer: NodeJS.Timeout | undefined
  transfer: Transfer | undefined
  pending: boolean
  closed: boolean
}

interface Entry {
  readonly data: Buffer
  conn: Conn
}

interface Transfer {
  readonly id: Buffer
  readonly key: string
  readonly name: string
  readonly size: number
  readonly chunkSize: number
  readonly path: string
  readonly partPath: string
  readonly progressPath: string
  readonly fh: FileHandle
  readonly integrity: Integrity
  readonly hash: Hasher
  readonly resumedFrom: number
  readonly conns: Set<Conn>
  /** This transfer's reorder window, reserved from the receiver's total budget. */
  readonly window: number
  readonly buffer: Map<number, Entry>
  bufferedBytes: number
  nextSeq: number
  delivered: number
  persisted: number
  credited: number
  writing: boolean
  fin: { digest: string; conn: Conn } | undefined
  finished: boolean
  releaseTimer: NodeJS.Timeout | undefined
  released: boolean
  traceparent: string | undefined
}

/** Names the receiver keeps for itself (its staging directory, the suffixes of earlier versions). */
const reserved = (name: string) =>
  name === STAGING || name.startsWith(".amst-") || name.endsWith(".amst-part") || name.endsWith(".amst-progress.json")

const safeName = (name: string): string | undefined => {
  const b = basename(name)
  return b === "" || b === "." || b === ".." || b !== name || name.includes("\0") || reserved(b) ? undefined : b
}

/** Refusals sent as ERROR frames before a stream is admitted. */
class Refused extends Error {
  constructor(
    readonly code: "unauthorized" | "busy" | "exists" | "integrity",
    message: string,
  ) {
    super(message)
  }
}

const exists = (path: string) =>
  lstat(path).then(
    () => true,
    (e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? false : Promise.reject(e)),
  )

export class ReceiverEngine {
  private server: net.Server | undefined
  private readonly conns = new Set<Conn>()
  private readonly transfers = new Map<string, Promise<Transfer>>()
  /** Completed transfers, so a sender whose DONE was lost can finish on reconnect. */
  private readonly completed = new Map<string, string>()
  /** Transfers being released: a new HELLO for the same id waits for their files to close. */
  private readonly releasing = new Map<string, Promise<void>>()
  private readonly perAddress = new Map<string, number>()
  private budget: number
  private staging = ""
  private closing = false

  constructor(
    readonly config: ReceiverConfig,
    private readonly hooks: ReceiverHooks,
  ) {
    this.budget = config.maxReorderBytes
  }

  async listen(): Promise<number> {
    this.staging = await prepareStaging(this.config.dir)
    const onConn = (s: net.Socket) => this.accept(s)
    const server = this.config.tls
      ? tls.createServer({ handshakeTimeout: this.config.helloTimeoutMs, ...this.config.tls }, onConn)
      : net.createServer(onConn)
    this.server = server
    // A TLS handshake failure must not take the process down.
    server.on("tlsClientError", () => {})
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen(this.config.port, this.config.host, () => {
        server.off("error", reject)
        resolve()
      })
    })
    server.on("error", () => {})
    return (server.address() as net.AddressInfo).port
  }

  async close(): Promise<void> {
    this.closing = true
    for (const c of this.conns) c.socket.destroy()
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
    for (const p of [...this.transfers.values()]) {
      const t = await p.catch(() => undefined)
      if (t && !t.finished) await this.release(t)
    }
    await Promise.all(this.releasing.values())
    this.transfers.clear()
  }

  /** Closes the transfer's file and worker; a later HELLO reopens it from the persisted progress. */
  private release(t: Transfer): Promise<void> {
    if (t.released) return this.releasing.get(t.key) ?? Promise.resolve()
    t.released = true
    clearTimeout(t.releaseTimer)
    if (this.transfers.get(t.key) !== undefined) this.transfers.delete(t.key)
    this.budget += t.window
    t.buffer.clear()
    t.bufferedBytes = 0
    t.hash.close()
    const done = (t.finished ? Promise.resolve() : this.persist(t))
      .catch(() => {})
      .then(() => t.fh.close())
      .catch(() => {})
      .finally(() => {
        if (this.releasing.get(t.key) === done) this.releasing.delete(t.key)
      })
    this.releasing.set(t.key, done)
    return done
  }

  private accept(socket: net.Socket) {
    if (this.closing) return socket.destroy()
    const address = socket.remoteAddress ?? "unknown"
    const remote = `${address}:${socket.remotePort}`
    const fromAddress = this.perAddress.get(address) ?? 0
    if (this.conns.size >= this.config.maxConnections || fromAddress >= this.config.maxConnectionsPerAddress) {
      socket.destroy()
      const which =
        this.conns.size >= this.config.maxConnections
          ? `${this.config.maxConnections} connections`
          : `${this.config.maxConnectionsPerAddress} connections from ${address}`
      this.hooks.onFault({ transferId: undefined, remote, error: new Error(`refused ${remote}: limit of ${which}`) })
      return
    }
    if (socket instanceof tls.TLSSocket && this.config.authorizePeer) {
      const peer = socket.getPeerCertificate()
      if (!socket.authorized || !this.config.authorizePeer(peer)) {
        socket.destroy()
        const who = peer?.subject?.CN ?? "no certificate"
        this.hooks.onFault({
          transferId: undefined,
          remote,
          error: new Error(`refused ${remote}: peer ${who} not authorized`),
        })
        return
      }
    }
    socket.setNoDelay(true)
    const conn: Conn = {
      socket,
      decoder: new Decoder(Math.min(HELLO_MAX, this.config.maxFrameSize)),
      remote,
      address,
      helloTimer: undefined,
      transfer: undefined,
      pending: false,
      closed: false,
    }
    this.conns.add(conn)
    this.perAddress.set(address, fromAddress + 1)
    conn.helloTimer = setTimeout(() => {
      // A refused stream (ERROR sent) that the peer keeps open is closed here, without a second fault.
      if (conn.closed) conn.socket.destroy()
      // Its HELLO arrived and is being served (opening a large part file re-hashes it).
      else if (conn.pending || conn.transfer) return
      else this.fault(conn, new Error(`no HELLO answered within ${this.config.helloTimeoutMs} ms from ${remote}`))
    }, this.config.helloTimeoutMs)
    conn.helloTimer.unref()
    socket.setTimeout(this.config.idleTimeoutMs, () =>
      this.fault(conn, new Error(`${remote} idle for ${this.config.idleTimeoutMs} ms`)),
    )
    socket.on("data", (chunk: Buffer) => {
      if (conn.closed) return
      try {
        for (const f of conn.decoder.push(chunk)) this.handle(conn, f)
      } catch (e) {
        if (this.tellOlderPeer(conn, e)) {
          // Closed by `end()` once the frame is out (the HELLO timer destroys it if the peer hangs on).
          this.hooks.onFault({ transferId: undefined, remote: conn.remote, error: e as Error })
          conn.closed = true
        } else this.fault(conn, e as Error)
      }
    })
    socket.on("error", () => {})
    socket.on("close", () => this.dropped(conn))
  }

  /** A sender on an older version (its first frame's version byte) is told why, in its own format. */
  private tellOlderPeer(conn: Conn, e: unknown): boolean {
    if (!(e instanceof FrameError) || e.reason !== "BadVersion" || e.offset !== 2) return false
    const version = Number(e.actual)
    const message = `this receiver speaks AMST version ${VERSION}, the sender ${version}: upgrade the sender`
    const frame = encodeForPeer(version, control(FrameType.ERROR, Buffer.alloc(16), { code: "version", message }))
    if (frame === undefined || conn.closed || conn.socket.destroyed) return false
    conn.socket.end(frame)
    return true
  }

  private fault(conn: Conn, error: Error) {
    if (conn.closed) return
    this.hooks.onFault({ transferId: conn.transfer?.key, remote: conn.remote, error })
    conn.closed = true
    conn.socket.destroy()
  }

  private protocol(_conn: Conn, f: Frame, message: string): never {
    throw new ProtocolError({ offset: f.at ?? 0, message: `${message} (frame at offset ${f.at ?? 0})` })
  }

  private send(conn: Conn, f: Frame) {
    if (conn.closed || conn.socket.destroyed) return false
    const [h, p] = encode(f)
    conn.socket.write(p.length ? Buffer.concat([h, p]) : h)
    return true
  }

  private handle(conn: Conn, f: Frame) {
    if (f.type === FrameType.HELLO) {
      if (conn.transfer || conn.pending) this.protocol(conn, f, "second HELLO on a stream")
      const hello = decodeControl(Hello, f)
      const name = safeName(hello.name)
      if (name === undefined) this.protocol(conn, f, `unsafe transfer name ${JSON.stringify(hello.name)}`)
      const key = f.transferId.toString("hex")
      if (this.config.token) {
        const why = verify(this.config.token, key, hello, hello.auth, Date.now())
        if (why !== undefined) return this.refuse(conn, f.transferId, new Refused("unauthorized", why))
      }
      const integrity = hello.integrity ?? "sha256"
      const setup = { tls: conn.socket instanceof tls.TLSSocket, token: this.config.token !== undefined }
      if (!acceptable(integrity, setup)) {
        const why = `${integrity} is not collision resistant: over plain TCP with a token this receiver needs sha256`
        return this.refuse(conn, f.transferId, new Refused("integrity", why))
      }
      const digest = this.completed.get(key)
      if (digest !== undefined) {
        clearTimeout(conn.helloTimer)
        this.send(conn, control(FrameType.WELCOME, f.transferId, { offset: hello.size, window: 1, done: true, digest }))
        return
      }
      let p = this.transfers.get(key)
      if (!p) {
        if (this.transfers.size >= this.config.maxTransfers) {
          return this.refuse(
            conn,
            f.transferId,
            new Refused("busy", `${this.config.maxTransfers} transfers already open at the receiver`),
          )
        }
        const window = Math.min(this.config.window, this.budget)
        if (window < hello.chunkSize) {
          return this.refuse(
            conn,
            f.transferId,
            new Refused("busy", `reorder memory exhausted (${this.config.maxReorderBytes} bytes in use)`),
          )
        }
        this.budget -= window
        const opened = this.openTransfer(
          Buffer.from(f.transferId),
          key,
          name,
          hello.size,
          hello.chunkSize,
          window,
          integrity,
        )
        p = opened
        this.transfers.set(key, opened)
        opened.then(
          (t) => {
            // Opened after the receiver closed: nobody else will release it.
            if (this.closing) void this.release(t)
            // Its streams may all be gone already (HELLO, then disconnect): release it in time.
            else this.idle(t)
          },
          () => {
            if (this.transfers.get(key) === opened) this.transfers.delete(key)
            this.budget += window
          },
        )
      }
      conn.pending = true
      p.then(
        (t) => {
          conn.pending = false
          if (conn.closed || t.released) return conn.socket.destroy()
          if (
            t.size !== hello.size ||
            t.chunkSize !== hello.chunkSize ||
            t.name !== name ||
            t.integrity !== integrity
          ) {
            return this.fault(
              conn,
              new ProtocolError({ offset: f.at ?? 0, message: "HELLO disagrees with the transfer" }),
            )
          }
          clearTimeout(conn.helloTimer)
          clearTimeout(t.releaseTimer)
          t.releaseTimer = undefined
          conn.transfer = t
          t.conns.add(conn)
          t.traceparent ??= traceparentOf(hello)
          conn.decoder.maxPayload = this.config.maxFrameSize
          this.send(
            conn,
            control(FrameType.WELCOME, t.id, {
              offset: t.delivered,
              window: t.window,
              maxFrameSize: this.config.maxFrameSize,
            }),
          )
        },
        (e: Error) => {
          conn.pending = false
          if (e instanceof Refused) this.refuse(conn, f.transferId, e)
          else this.fault(conn, e)
        },
      )
      return
    }
    const t = conn.transfer
    if (!t) this.protocol(conn, f, `frame type ${f.type} before HELLO`)
    if (!f.transferId.equals(t.id)) this.protocol(conn, f, "transfer id differs from the stream's HELLO")
    switch (f.type) {
      case FrameType.DATA:
        return this.data(conn, t, f)
      case FrameType.FIN: {
        const fin = decodeControl(Fin, f)
        if (this.config.token && !verifyFin(this.config.token, t.key, t.integrity, fin.digest, fin.mac)) {
          this.protocol(conn, f, "FIN digest not authenticated by the token")
        }
        const done = this.completed.get(t.key)
        if (t.finished && done !== undefined) {
          this.send(conn, control(FrameType.DONE, t.id, { digest: done }))
          return
        }
        t.fin = { digest: fin.digest, conn }
        void this.drain(t)
        return
      }
      case FrameType.BYE:
        conn.closed = true
        conn.socket.end()
        return
      default:
        this.protocol(conn, f, `unexpected frame type ${f.type} at the receiver`)
    }
  }

  /** Tells the sender why (an ERROR frame), reports the fault and closes the stream. */
  private refuse(conn: Conn, transferId: Buffer, e: Refused) {
    this.send(conn, control(FrameType.ERROR, transferId, { code: e.code, message: e.message }))
    conn.socket.end()
    this.hooks.onFault({ transferId: transferId.toString("hex"), remote: conn.remote, error: e })
    conn.closed = true
  }

  private data(conn: Conn, t: Transfer, f: Frame) {
    const expectedOffset = f.seq * t.chunkSize
    if (f.offset !== expectedOffset || f.offset >= t.size) {
      this.protocol(conn, f, `DATA seq ${f.seq} has offset ${f.offset}, expected ${expectedOffset} < ${t.size}`)
    }
    const len = Math.min(t.chunkSize, t.size - f.offset)
    if (f.payload.length !== len)
      this.protocol(conn, f, `DATA at ${f.offset} has ${f.payload.length} bytes, expected ${len}`)
    // Received (new or a re-send after a stream died): ack on this stream so the sender forgets it.
    this.send(conn, bare(FrameType.ACK, t.id, f.seq, f.offset))
    if (f.seq < t.nextSeq || t.buffer.has(f.seq)) return
    if (f.offset + len > t.delivered + t.window) {
      this.protocol(conn, f, `DATA at ${f.offset} is beyond the credit ${t.delivered} + window ${t.window}`)
    }
    // No copy: the decoder hands out a view of at most one socket read or one joined frame, and the
    // window bounds how many are held.
    t.buffer.set(f.seq, { data: f.payload, conn })
    t.bufferedBytes += len
    void this.drain(t)
  }

  private ackTarget(t: Transfer, preferred: Conn): Conn | undefined {
    if (!preferred.closed && !preferred.socket.destroyed) return preferred
    for (const c of t.conns) if (!c.closed && !c.socket.destroyed) return c
    return undefined
  }

  private async drain(t: Transfer): Promise<void> {
    if (t.writing || t.finished || t.released) return
    t.writing = true
    try {
      for (;;) {
        if (t.released) return
        const e = t.buffer.get(t.nextSeq)
        if (!e) break
        t.buffer.delete(t.nextSeq)
        t.bufferedBytes -= e.data.length
        const written = writeAll(t.fh, e.data, t.delivered)
        // Hashed while the write runs in the thread pool (the bytes do not change).
        t.hash.update(e.data)
        await written
        await t.hash.room()
        t.nextSeq++
        t.delivered += e.data.length
        if (t.delivered - t.credited >= t.window / 4) this.credit(t)
        this.hooks.onProgress?.({ transferId: t.key, name: t.name, bytes: t.delivered, total: t.size })
        if (t.delivered - t.persisted >= this.config.persistEvery) await this.persist(t)
      }
      if (t.delivered > t.credited) this.credit(t)
      if (t.fin && t.delivered === t.size) await this.finish(t, t.fin.digest, t.fin.conn)
    } catch (e) {
      for (const c of t.conns) this.fault(c, e as Error)
    } finally {
      t.writing = false
    }
    // Chunks that arrived while the last write was in flight.
    if (!t.finished && !t.released && (t.buffer.has(t.nextSeq) || (t.fin && t.delivered === t.size))) {
      void this.drain(t)
    }
  }

  /** Tells every stream of the transfer how far it is written (any one arriving suffices). */
  private credit(t: Transfer) {
    t.credited = t.delivered
    for (const c of t.conns) this.send(c, bare(FrameType.CREDIT, t.id, 0, t.delivered))
  }

  private async finish(t: Transfer, expected: string, conn: Conn) {
    const digest = await t.hash.digest()
    t.finished = true
    await this.release(t)
    const target = () => this.ackTarget(t, conn)
    const refuse = async (code: string, message: string) => {
      await rm(t.partPath, { force: true })
      await rm(t.progressPath, { force: true })
      const to = target()
      if (to) this.send(to, control(FrameType.ERROR, t.id, { code, message }))
      this.hooks.onFault({ transferId: t.key, remote: conn.remote, error: new Error(message) })
    }
    if (digest !== expected)
      return refuse("hash-mismatch", `${t.integrity} mismatch: received ${digest}, sender has ${expected}`)
    // link() never replaces: an existing file (or symlink) at the name stays as it is.
    const placed = await link(t.partPath, t.path).then(
      () => true,
      (e: NodeJS.ErrnoException) => (e.code === "EEXIST" ? false : Promise.reject(e)),
    )
    if (!placed) return refuse("exists", `${t.path} already exists; not replaced`)
    await rm(t.partPath, { force: true })
    await rm(t.progressPath, { force: true })
    this.completed.set(t.key, digest)
    // Remembered so a sender whose DONE was lost can finish; the oldest are forgotten first.
    if (this.completed.size > 4096) this.completed.delete(this.completed.keys().next().value!)
    const to = target()
    if (to) this.send(to, control(FrameType.DONE, t.id, { digest }))
    this.hooks.onComplete({
      transferId: t.key,
      name: t.name,
      path: t.path,
      size: t.size,
      digest,
      integrity: t.integrity,
      resumedFrom: t.resumedFrom,
      traceparent: t.traceparent,
    })
  }

  private dropped(conn: Conn) {
    conn.closed = true
    clearTimeout(conn.helloTimer)
    if (this.conns.delete(conn)) {
      const n = (this.perAddress.get(conn.address) ?? 1) - 1
      if (n > 0) this.perAddress.set(conn.address, n)
      else this.perAddress.delete(conn.address)
    }
    const t = conn.transfer
    if (!t) return
    t.conns.delete(conn)
    if (t.conns.size === 0 && !t.finished && !t.released) {
      // Full disconnect: the sender resumes from `delivered`, so out-of-order chunks are moot.
      t.buffer.clear()
      t.bufferedBytes = 0
      void this.persist(t).catch(() => {})
      this.idle(t)
    }
  }

  /** A transfer without streams releases its file and worker after the grace period. */
  private idle(t: Transfer) {
    if (t.conns.size > 0 || t.finished || t.released) return
    clearTimeout(t.releaseTimer)
    t.releaseTimer = setTimeout(() => {
      if (t.conns.size === 0) void this.release(t)
    }, this.config.releaseAfterMs)
    t.releaseTimer.unref()
  }

  private persisting: Promise<void> = Promise.resolve()

  /** Writes progress through a fresh private temp file (one at a time: they share the temp name). */
  private persist(t: Transfer): Promise<void> {
    const run = async () => {
      const offset = t.delivered
      const body = JSON.stringify({ transferId: t.key, name: t.name, size: t.size, chunkSize: t.chunkSize, offset })
      const tmp = `${t.progressPath}.tmp`
      await rm(tmp, { force: true })
      const fh = await open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
      try {
        await fh.writeFile(body)
      } finally {
        await fh.close()
      }
      await rename(tmp, t.progressPath)
      t.persisted = Math.max(t.persisted, offset)
    }
    const p = this.persisting.then(run, run)
    this.persisting = p.catch(() => {})
    return p
  }

  private async openTransfer(
    id: Buffer,
    key: string,
    name: string,
    size: number,
    chunkSize: number,
    window: number,
    integrity: Integrity,
  ): Promise<Transfer> {
    await this.releasing.get(key)
    const path = join(this.config.dir, name)
    // Checked again when the file is linked into place; refusing now saves sending it all.
    if (await exists(path)) throw new Refused("exists", `${path} already exists; not replaced`)
    const partPath = join(this.staging, `${key}.part`)
    const progressPath = join(this.staging, `${key}.progress.json`)
    let hash = makeHasher(integrity)
    let offset = 0
    let fh: FileHandle | undefined
    try {
      const saved = JSON.parse(await readPrivate(progressPath)) as Record<string, unknown>
      const o = saved.offset
      if (
        saved.transferId === key &&
        saved.name === name &&
        saved.size === size &&
        saved.chunkSize === chunkSize &&
        typeof o === "number" &&
        o % chunkSize === 0 &&
        o <= size
      ) {
        fh = await openPrivate(partPath, O_RDWR | O_NOFOLLOW)
        if ((await fh.stat()).size < o) throw new Error("part file shorter than its progress")
        // The hash cannot be saved, so re-read what is already on disk.
        const buf = Buffer.allocUnsafe(Math.min(4 * 1024 * 1024, Math.max(o, 1)))
        for (let pos = 0; pos < o; ) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, o - pos), pos)
          if (bytesRead === 0) throw new Error("short read")
          hash.update(buf.subarray(0, bytesRead))
          await hash.room()
          pos += bytesRead
        }
        offset = o
      }
    } catch {
      await fh?.close().catch(() => {})
      fh = undefined
      offset = 0
    }
    if (offset === 0) {
      // Whatever was hashed from a part file that turned out unusable is dropped.
      hash.close()
      hash = makeHasher(integrity)
      await rm(partPath, { force: true })
      fh = await openPrivate(partPath, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW)
    }
    return {
      id,
      key,
      name,
      size,
      chunkSize,
      path,
      partPath,
      progressPath,
      fh: fh!,
      integrity,
      hash,
      resumedFrom: offset,
      conns: new Set(),
      window,
      buffer: new Map(),
      bufferedBytes: 0,
      nextSeq: offset / chunkSize,
      delivered: offset,
      persisted: offset,
      credited: offset,
      writing: false,
      fin: undefined,
      finished: false,
      releaseTimer: undefined,
      released: false,
      traceparent: undefined,
    }
  }
}

/** Writes all of `data` at `position` (a short write continues where it stopped). */
const writeAll = async (fh: FileHandle, data: Buffer, position: number): Promise<void> => {
  for (let at = 0; at < data.length; ) {
    const { bytesWritten } = await fh.write(data, at, data.length - at, position + at)
    if (bytesWritten === 0) throw new Error(`short write at ${position + at}`)
    at += bytesWritten
  }
}

/**
 * Creates `dir` (0700 when new) and its staging directory, which must be a real directory owned by
 * this user and private: nobody else may plant links where part files are written.
 */
const prepareStaging = async (dir: string): Promise<string> => {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const staging = join(dir, STAGING)
  await mkdir(staging, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) =>
    e.code === "EEXIST" ? undefined : Promise.reject(e),
  )
  const st = await lstat(staging)
  if (!st.isDirectory()) throw new Error(`${staging} is not a directory`)
  if (typeof process.getuid === "function" && st.uid !== process.getuid()) {
    throw new Error(`${staging} belongs to uid ${st.uid}, not to this process`)
  }
  if ((st.mode & 0o077) !== 0) await chmod(staging, 0o700)
  return staging
}

/** Opens a file in the staging directory without following links; it must be a private regular file. */
const openPrivate = async (path: string, flags: number): Promise<FileHandle> => {
  const fh = await open(path, flags, 0o600)
  const st = await fh.stat()
  if (!st.isFile() || st.nlink !== 1) {
    await fh.close()
    throw new Error(`${path} is not a private regular file`)
  }
  return fh
}

const readPrivate = async (path: string): Promise<string> => {
  const fh = await openPrivate(path, O_RDONLY | O_NOFOLLOW)
  try {
    return await fh.readFile("utf8")
  } finally {
    await fh.close()
  }
}

export { FrameError }
