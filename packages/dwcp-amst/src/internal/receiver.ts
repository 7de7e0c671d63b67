// Receiver engine: accepts streams, acks each chunk on the stream it came by as it arrives,
// reassembles in order into <dir>/<name>.amst-part, grants credit (bytes written + window) as it
// writes, persists progress for resume, verifies SHA-256 on FIN.
import type { FileHandle } from "node:fs/promises"
import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises"
import * as net from "node:net"
import { basename, join } from "node:path"
import * as tls from "node:tls"
import { Decoder, encode, type Frame, FrameError, FrameType } from "../Frame.js"
import { ProtocolError } from "../TransferError.js"
import { Hasher } from "./hasher.js"
import { bare, control, decodeControl, Fin, Hello } from "./messages.js"

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
}

export interface Completed {
  readonly transferId: string
  readonly name: string
  readonly path: string
  readonly size: number
  readonly sha256: string
  readonly resumedFrom: number
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
  readonly hash: Hasher
  readonly resumedFrom: number
  readonly conns: Set<Conn>
  readonly buffer: Map<number, Entry>
  bufferedBytes: number
  nextSeq: number
  delivered: number
  persisted: number
  credited: number
  writing: boolean
  fin: { sha256: string; conn: Conn } | undefined
  finished: boolean
}

const safeName = (name: string): string | undefined => {
  const b = basename(name)
  return b === "" || b === "." || b === ".." || b !== name ? undefined : b
}

export class ReceiverEngine {
  private server: net.Server | undefined
  private readonly conns = new Set<Conn>()
  private readonly transfers = new Map<string, Promise<Transfer>>()
  /** Completed transfers, so a sender whose DONE was lost can finish on reconnect. */
  private readonly completed = new Map<string, string>()
  private closing = false

  constructor(
    readonly config: ReceiverConfig,
    private readonly hooks: ReceiverHooks,
  ) {}

  async listen(): Promise<number> {
    await mkdir(this.config.dir, { recursive: true })
    const onConn = (s: net.Socket) => this.accept(s)
    const server = this.config.tls ? tls.createServer(this.config.tls, onConn) : net.createServer(onConn)
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
    for (const p of this.transfers.values()) {
      const t = await p.catch(() => undefined)
      if (t && !t.finished) {
        await this.persist(t).catch(() => {})
        await t.fh.close().catch(() => {})
        t.hash.close()
      }
    }
    this.transfers.clear()
  }

  private accept(socket: net.Socket) {
    if (this.closing) return socket.destroy()
    socket.setNoDelay(true)
    const conn: Conn = {
      socket,
      decoder: new Decoder(this.config.maxFrameSize),
      remote: `${socket.remoteAddress}:${socket.remotePort}`,
      transfer: undefined,
      pending: false,
      closed: false,
    }
    this.conns.add(conn)
    socket.on("data", (chunk: Buffer) => {
      if (conn.closed) return
      try {
        for (const f of conn.decoder.push(chunk)) this.handle(conn, f)
      } catch (e) {
        this.fault(conn, e as Error)
      }
    })
    socket.on("error", () => {})
    socket.on("close", () => this.dropped(conn))
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
      const sha = this.completed.get(key)
      if (sha !== undefined) {
        this.send(
          conn,
          control(FrameType.WELCOME, f.transferId, { offset: hello.size, window: 1, done: true, sha256: sha }),
        )
        return
      }
      conn.pending = true
      let p = this.transfers.get(key)
      if (!p) {
        p = this.openTransfer(Buffer.from(f.transferId), key, name, hello.size, hello.chunkSize)
        this.transfers.set(key, p)
        p.catch(() => this.transfers.delete(key))
      }
      p.then(
        (t) => {
          conn.pending = false
          if (conn.closed) return
          if (t.size !== hello.size || t.chunkSize !== hello.chunkSize || t.name !== name) {
            return this.fault(
              conn,
              new ProtocolError({ offset: f.at ?? 0, message: "HELLO disagrees with the transfer" }),
            )
          }
          conn.transfer = t
          t.conns.add(conn)
          this.send(
            conn,
            control(FrameType.WELCOME, t.id, {
              offset: t.delivered,
              window: this.config.window,
              maxFrameSize: this.config.maxFrameSize,
            }),
          )
        },
        (e: Error) => this.fault(conn, e),
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
        const sha = this.completed.get(t.key)
        if (t.finished && sha !== undefined) {
          this.send(conn, control(FrameType.DONE, t.id, { sha256: sha }))
          return
        }
        t.fin = { sha256: fin.sha256, conn }
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
    if (f.offset + len > t.delivered + this.config.window) {
      this.protocol(conn, f, `DATA at ${f.offset} is beyond the credit ${t.delivered} + window ${this.config.window}`)
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
    if (t.writing || t.finished) return
    t.writing = true
    try {
      for (;;) {
        const e = t.buffer.get(t.nextSeq)
        if (!e) break
        t.buffer.delete(t.nextSeq)
        t.bufferedBytes -= e.data.length
        await t.fh.write(e.data, 0, e.data.length, t.delivered)
        t.hash.update(e.data)
        await t.hash.room()
        t.nextSeq++
        t.delivered += e.data.length
        if (t.delivered - t.credited >= this.config.window / 4) this.credit(t)
        this.hooks.onProgress?.({ transferId: t.key, name: t.name, bytes: t.delivered, total: t.size })
        if (t.delivered - t.persisted >= this.config.persistEvery) await this.persist(t)
      }
      if (t.delivered > t.credited) this.credit(t)
      if (t.fin && t.delivered === t.size) await this.finish(t, t.fin.sha256, t.fin.conn)
    } catch (e) {
      for (const c of t.conns) this.fault(c, e as Error)
    } finally {
      t.writing = false
    }
    // Chunks that arrived while the last write was in flight.
    if (!t.finished && (t.buffer.has(t.nextSeq) || (t.fin && t.delivered === t.size))) void this.drain(t)
  }

  /** Tells every stream of the transfer how far it is written (any one arriving suffices). */
  private credit(t: Transfer) {
    t.credited = t.delivered
    for (const c of t.conns) this.send(c, bare(FrameType.CREDIT, t.id, 0, t.delivered))
  }

  private async finish(t: Transfer, expected: string, conn: Conn) {
    const sha256 = await t.hash.digest()
    t.finished = true
    this.transfers.delete(t.key)
    await t.fh.close()
    if (sha256 !== expected) {
      await rm(t.partPath, { force: true })
      await rm(t.progressPath, { force: true })
      const target = this.ackTarget(t, conn)
      const message = `SHA-256 mismatch: received ${sha256}, sender has ${expected}`
      if (target) this.send(target, control(FrameType.ERROR, t.id, { code: "hash-mismatch", message }))
      this.hooks.onFault({ transferId: t.key, remote: conn.remote, error: new Error(message) })
      return
    }
    await rename(t.partPath, t.path)
    await rm(t.progressPath, { force: true })
    this.completed.set(t.key, sha256)
    const target = this.ackTarget(t, conn)
    if (target) this.send(target, control(FrameType.DONE, t.id, { sha256 }))
    this.hooks.onComplete({
      transferId: t.key,
      name: t.name,
      path: t.path,
      size: t.size,
      sha256,
      resumedFrom: t.resumedFrom,
    })
  }

  private dropped(conn: Conn) {
    conn.closed = true
    this.conns.delete(conn)
    const t = conn.transfer
    if (!t) return
    t.conns.delete(conn)
    if (t.conns.size === 0 && !t.finished) {
      // Full disconnect: the sender resumes from `delivered`, so out-of-order chunks are moot.
      t.buffer.clear()
      t.bufferedBytes = 0
      void this.persist(t).catch(() => {})
    }
  }

  private async persist(t: Transfer) {
    const offset = t.delivered
    const body = JSON.stringify({ transferId: t.key, name: t.name, size: t.size, chunkSize: t.chunkSize, offset })
    const tmp = `${t.progressPath}.tmp`
    await writeFile(tmp, body)
    await rename(tmp, t.progressPath)
    t.persisted = Math.max(t.persisted, offset)
  }

  private async openTransfer(
    id: Buffer,
    key: string,
    name: string,
    size: number,
    chunkSize: number,
  ): Promise<Transfer> {
    const path = join(this.config.dir, name)
    const partPath = `${path}.amst-part`
    const progressPath = join(this.config.dir, `.${name}.amst-progress.json`)
    let hash = new Hasher()
    let offset = 0
    let fh: FileHandle | undefined
    try {
      const saved = JSON.parse(await readFile(progressPath, "utf8")) as Record<string, unknown>
      const part = await stat(partPath)
      const o = saved.offset
      if (
        saved.transferId === key &&
        saved.size === size &&
        saved.chunkSize === chunkSize &&
        typeof o === "number" &&
        o % chunkSize === 0 &&
        o <= size &&
        part.size >= o
      ) {
        fh = await open(partPath, "r+")
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
      hash = new Hasher()
    }
    const h = hash
    if (!fh) fh = await open(partPath, "w")
    return {
      id,
      key,
      name,
      size,
      chunkSize,
      path,
      partPath,
      progressPath,
      fh,
      hash: h,
      resumedFrom: offset,
      conns: new Set(),
      buffer: new Map(),
      bufferedBytes: 0,
      nextSeq: offset / chunkSize,
      delivered: offset,
      persisted: offset,
      credited: offset,
      writing: false,
      fin: undefined,
      finished: false,
    }
  }
}

export { FrameError }
