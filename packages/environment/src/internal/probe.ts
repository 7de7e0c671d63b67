import { connect, createServer, type Server, type Socket } from "node:net"
import type { PeerMeasurement } from "../Classify.js"

// Probe protocol, one TCP connection. The responder speaks first, so that the client sends
// nothing to a listener that is not one (a node's TLS cluster port would log every stray byte as
// a refused handshake; a connect-and-close it counts as a probe):
//   responder: BANNER on accept
//   'E' + 8 bytes        -> the same 8 bytes back (after the server's optional delay)
//   'B' + u32 BE n + n bytes -> 'K' once all n bytes arrived
export const BANNER = Buffer.from("NCPROBE1", "latin1")
const ECHO = 0x45
const BULK = 0x42
const ACK = 0x4b

export interface Running {
  readonly server: Server
  /** Closes the listener and every open probe connection. */
  readonly close: () => Promise<void>
}

export const startServer = (host: string, port: number, delayMs: number): Promise<Running> =>
  new Promise((ok, fail) => {
    const sockets = new Set<Socket>()
    const server = createServer((socket) => {
      sockets.add(socket)
      socket.once("close", () => sockets.delete(socket))
      socket.setNoDelay(true)
      socket.write(BANNER)
      let buf = Buffer.alloc(0)
      let bulkLeft = -1
      socket.on("error", () => socket.destroy())
      socket.on("data", (chunk) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
        for (;;) {
          if (bulkLeft >= 0) {
            const take = Math.min(bulkLeft, buf.length)
            bulkLeft -= take
            buf = buf.subarray(take)
            if (bulkLeft > 0) return
            bulkLeft = -1
            socket.write(Buffer.from([ACK]))
            continue
          }
          if (buf.length === 0) return
          if (buf[0] === ECHO) {
            if (buf.length < 9) return
            const payload = Buffer.from(buf.subarray(1, 9))
            buf = buf.subarray(9)
            if (delayMs > 0) setTimeout(() => socket.writable && socket.write(payload), delayMs)
            else socket.write(payload)
          } else if (buf[0] === BULK) {
            if (buf.length < 5) return
            bulkLeft = buf.readUInt32BE(1)
            buf = buf.subarray(5)
          } else {
            socket.destroy()
            return
          }
        }
      })
    })
    server.once("error", fail)
    const close = () =>
      new Promise<void>((done) => {
        server.close(() => done())
        for (const s of sockets) s.destroy()
      })
    server.listen({ host, port }, () => ok({ server, close }))
  })

/** A connection whose incoming bytes can be awaited a given number at a time. */
class Conn {
  private buf = Buffer.alloc(0)
  private waiter: (() => void) | undefined
  private closed = false
  constructor(readonly socket: Socket) {
    socket.on("data", (d) => {
      this.buf = Buffer.concat([this.buf, d])
      this.waiter?.()
    })
    const end = () => {
      this.closed = true
      this.waiter?.()
    }
    socket.on("close", end)
    socket.on("error", end)
  }
  read(n: number, timeoutMs: number): Promise<Buffer | undefined> {
    return new Promise((ok) => {
      const finish = (v: Buffer | undefined) => {
        clearTimeout(timer)
        this.waiter = undefined
        ok(v)
      }
      const check = () => {
        if (this.buf.length >= n) {
          const out = this.buf.subarray(0, n)
          this.buf = this.buf.subarray(n)
          finish(out)
        } else if (this.closed) finish(undefined)
      }
      const timer = setTimeout(() => finish(undefined), timeoutMs)
      this.waiter = check
      check()
    })
  }
  close(): void {
    this.socket.destroy()
  }
}

/** `host:port` or `node-id@host:port` (as in `network.peers`); IPv6 in brackets. */
const split = (peer: string): { host: string; port: number } => {
  const address = peer.slice(peer.lastIndexOf("@") + 1)
  const i = address.lastIndexOf(":")
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(address.slice(i + 1)) }
}

const open = (peer: string, timeoutMs: number): Promise<{ conn: Conn; connectMs: number } | undefined> =>
  new Promise((ok) => {
    const { host, port } = split(peer)
    const start = performance.now()
    const socket = connect({ host, port })
    socket.setNoDelay(true)
    const timer = setTimeout(() => {
      socket.destroy()
      ok(undefined)
    }, timeoutMs)
    socket.once("connect", () => {
      clearTimeout(timer)
      ok({ conn: new Conn(socket), connectMs: performance.now() - start })
    })
    socket.once("error", () => {
      clearTimeout(timer)
      socket.destroy()
      ok(undefined)
    })
  })

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Mean absolute difference of consecutive samples (RFC 3550's jitter without smoothing). */
const jitter = (xs: ReadonlyArray<number>): number =>
  xs.length < 2 ? 0 : xs.slice(1).reduce((sum, x, i) => sum + Math.abs(x - xs[i]!), 0) / (xs.length - 1)

export interface ProbeOptions {
  readonly count: number
  readonly timeoutMs: number
  readonly bandwidthBytes: number
}

export const measure = async (peer: string, o: ProbeOptions): Promise<PeerMeasurement> => {
  const summary = (method: "echo" | "connect", rtts: ReadonlyArray<number>, lost: number, bandwidthBps?: number) => ({
    peer,
    method,
    samples: rtts.length + lost,
    rttMs: rtts.length > 0 ? median(rtts) : undefined,
    jitterMs: rtts.length > 0 ? jitter(rtts) : undefined,
    loss: lost / (rtts.length + lost),
    bandwidthBps,
  })
  const first = await open(peer, o.timeoutMs)
  if (!first) return summary("connect", [], o.count)
  const { conn } = first
  try {
    const rtts: Array<number> = []
    let lost = 0
    // Only a responder greets: anything else gets no byte from us, just connect-and-close.
    const banner = await conn.read(BANNER.length, o.timeoutMs)
    const responder = banner?.equals(BANNER) === true
    // Ping -1 is a warm-up (first-use costs on both ends) and tells whether the peer speaks the protocol.
    for (let i = -1; responder && i < o.count; i++) {
      const payload = Buffer.alloc(9)
      payload[0] = ECHO
      payload.writeDoubleBE(i, 1)
      const start = performance.now()
      conn.socket.write(payload)
      // A reply that arrives after its timeout is skipped, not counted against a later probe.
      const deadline = start + o.timeoutMs
      let back: Buffer | undefined
      do back = await conn.read(8, Math.max(0, deadline - performance.now()))
      while (back !== undefined && back.readDoubleBE(0) !== i)
      if (back === undefined) {
        if (i === -1) break // Not a probe responder: fall back to connect times.
        lost++
        continue
      }
      if (i >= 0) rtts.push(performance.now() - start)
    }
    if (rtts.length === 0 && lost === 0) {
      conn.close()
      const samples: Array<number> = [first.connectMs]
      let failed = 0
      for (let i = 1; i < o.count; i++) {
        const c = await open(peer, o.timeoutMs)
        if (c) {
          samples.push(c.connectMs)
          c.conn.close()
        } else failed++
      }
      return summary("connect", samples, failed)
    }
    let bandwidthBps: number | undefined
    if (o.bandwidthBytes > 0) {
      const header = Buffer.alloc(5)
      header[0] = BULK
      header.writeUInt32BE(o.bandwidthBytes, 1)
      const chunk = Buffer.alloc(Math.min(o.bandwidthBytes, 1 << 20), 0xa5)
      const start = performance.now()
      conn.socket.write(header)
      for (let sent = 0; sent < o.bandwidthBytes; sent += chunk.length) {
        const part = sent + chunk.length > o.bandwidthBytes ? chunk.subarray(0, o.bandwidthBytes - sent) : chunk
        if (!conn.socket.write(part)) await new Promise((ok) => conn.socket.once("drain", ok))
      }
      const ack = await conn.read(1, Math.max(o.timeoutMs, 10_000))
      if (ack?.[0] === ACK) bandwidthBps = (o.bandwidthBytes * 8) / ((performance.now() - start) / 1000)
    }
    return summary("echo", rtts, lost, bandwidthBps)
  } finally {
    conn.close()
  }
}
