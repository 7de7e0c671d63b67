// The tunnel's sockets: node:net/tls callbacks, kept at this edge; the service drives them with
// Effects. Bytes of QEMU's stream are piped (backpressure by pipe), never framed or buffered whole.
import type { X509Certificate } from "node:crypto"
import { createRequire } from "node:module"
import * as net from "node:net"
import { Transform } from "node:stream"
import * as tls from "node:tls"
import { Deferred, Effect, Either, Queue, Runtime, type Scope } from "effect"
import type { Address, NodeTls } from "../Migration.js"
import * as Wire from "../Wire.js"

// Declared once, in the public module.
export type { Address, NodeTls } from "../Migration.js"

/** Bytes on the wire (TLS records included) of a set of raw TCP sockets, live and closed. */
export class WireCounter {
  private closed = 0
  private readonly live = new Set<net.Socket>()
  add(s: net.Socket) {
    this.live.add(s)
    s.once("close", () => {
      this.live.delete(s)
      this.closed += s.bytesRead + s.bytesWritten
    })
  }
  get total(): number {
    let n = this.closed
    for (const s of this.live) n += s.bytesRead + s.bytesWritten
    return n
  }
}

const cnOf = (cert: X509Certificate): string | undefined => {
  for (const line of cert.subject.split("\n")) if (line.startsWith("CN=")) return line.slice(3)
  return undefined
}

interface ZstdLib {
  readonly CompressStream: new (p?: {
    compressionLevel?: number
  }) => Transform & {
    flush(cb?: (e?: Error | null) => void): void
  }
  readonly DecompressStream: new () => Transform
}
// Loaded on the first compressed channel; in the agent's CommonJS bundle `require` exists and
// `import.meta.url` does not.
let zstdLib: ZstdLib | undefined
const zstd = (): ZstdLib => {
  if (zstdLib === undefined) {
    const req = typeof require === "function" ? require : createRequire(import.meta.url)
    zstdLib = req("zstd-napi") as ZstdLib
  }
  return zstdLib
}

// QEMU's stream is a conversation (the return path, postcopy page requests, the final sync): every
// chunk is flushed out of the compressor at once, never held for a better ratio.
const compressor = (level: number): Transform => {
  const z = new (zstd().CompressStream)({ compressionLevel: level })
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      z.write(chunk)
      z.flush(() => done())
    },
    final(done) {
      z.once("end", () => done())
      z.end()
    },
  })
  z.on("data", (d: Buffer) => t.push(d))
  z.on("error", (e) => t.destroy(e))
  return t
}

// Both ways until either side ends: an end is passed on as an end (data in flight is flushed), an
// error or close destroys the other side after a grace period. `plain` is QEMU's side, `wire` the
// tunnel's; with `level` > 0 the wire carries zstd (flushed per chunk) both ways.
const splice = (plain: net.Socket, wire: net.Socket, level = 0) => {
  const kill = () => {
    plain.destroy()
    wire.destroy()
  }
  if (level > 0) {
    const c = compressor(level)
    const d = new (zstd().DecompressStream)()
    c.on("error", kill)
    d.on("error", kill)
    plain.pipe(c).pipe(wire)
    wire.pipe(d).pipe(plain)
  } else {
    plain.pipe(wire)
    wire.pipe(plain)
  }
  const done = (other: net.Socket) => () => {
    other.end()
    setTimeout(() => other.destroy(), 5000).unref()
  }
  plain.once("close", done(wire))
  wire.once("close", done(plain))
  plain.on("error", kill)
  wire.on("error", kill)
}

// KubeVirt's progressTimeout, MigrationSettings' default, for a prepare that names no timeout.
const DEFAULT_CONTROL_KEEPALIVE_MS = 150_000

/** A control connection: frames in, frames out. */
export interface ControlChannel {
  readonly peer: string
  readonly send: (message: Wire.Control) => Effect.Effect<void>
  /** The next message; fails with the reason once the connection is gone. */
  readonly receive: Effect.Effect<Wire.Control, string>
  readonly close: Effect.Effect<void>
  readonly closed: Effect.Effect<string>
}

const controlChannel = (
  socket: tls.TLSSocket,
  reader: Wire.Reader,
  peer: string,
  runtime: Runtime.Runtime<never>,
  keepAliveMs: number,
): Effect.Effect<ControlChannel> =>
  Effect.gen(function* () {
    // The control connection is quiet for most of a migration: without keepalive, a link that went
    // down for good would leave this end waiting for a frame forever. libuv probes every second,
    // ten times, after `keepAliveMs` idle, then the socket fails (ETIMEDOUT) and `closed` says so.
    socket.setKeepAlive(true, keepAliveMs)
    // A handful of messages per migration: a peer flooding frames loses the oldest, never our memory.
    const inbox = yield* Queue.sliding<Wire.Control>(64)
    const closed = yield* Deferred.make<string>()
    const run = Runtime.runSync(runtime)
    const end = (reason: string) => {
      run(Deferred.succeed(closed, reason))
      socket.destroy()
    }
    const drain = () => {
      for (;;) {
        const next = reader.next()
        if (next === undefined) return
        if (Either.isLeft(next)) return end(next.left)
        const msg = Wire.decodeControl(next.right)
        if (Either.isLeft(msg)) return end(`bad control frame: ${msg.left}`)
        run(Queue.offer(inbox, msg.right))
      }
    }
    socket.on("data", (chunk: Buffer) => {
      const pushed = reader.push(chunk)
      if (Either.isLeft(pushed)) return end(pushed.left)
      drain()
    })
    socket.on("close", () => end("connection closed"))
    socket.on("error", (e) => end(e.message))
    drain()
    socket.resume()
    return {
      peer,
      send: (m) =>
        Effect.sync(() => {
          if (!socket.destroyed) socket.write(Wire.frame(m))
        }),
      // Messages that arrived before the close are still delivered.
      receive: Effect.raceFirst(
        Queue.take(inbox),
        Effect.flatMap(Deferred.await(closed), (reason) =>
          Effect.flatMap(Queue.poll(inbox), (m) => (m._tag === "Some" ? Effect.succeed(m.value) : Effect.fail(reason))),
        ),
      ),
      close: Effect.sync(() => socket.end()),
      closed: Deferred.await(closed),
    }
  })

/** What the destination knows of a prepared migration: who may open its channels, where they go. */
export interface Registration {
  readonly peer: string
  readonly socket: string
}

export interface ListenOptions {
  readonly host: string
  readonly port: number
  readonly tls: NodeTls
  /** A `prepare` from an authenticated node: the service takes the control channel from here. */
  readonly onPrepare: (hello: Extract<Wire.Hello, { _tag: "prepare" }>, control: ControlChannel) => Effect.Effect<void>
  readonly lookup: (migration: string) => Registration | undefined
  readonly helloTimeoutMs?: number
  /** Idle time before keepalive probes on a control connection whose prepare names none. */
  readonly controlKeepAliveMs: number
  /** Logged refusals (who, why). */
  readonly onRefused?: (who: string, why: string) => void
}

interface Order {
  next: number
  readonly waiting: Map<number, () => void>
}

/** The destination's listener; closed (with every connection) when the scope closes. */
export interface Listener {
  readonly address: Address
  /** Drops a finished migration's channel ordering state. */
  readonly forget: (migration: string) => void
}

export const listen = (options: ListenOptions): Effect.Effect<Listener, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const helloTimeout = options.helloTimeoutMs ?? 10_000
    const sockets = new Set<net.Socket>()
    const orders = new Map<string, Order>()
    const refuse = (s: net.Socket, who: string, why: string) => {
      options.onRefused?.(who, why)
      s.destroy()
    }

    const onChannel = (
      socket: tls.TLSSocket,
      peer: string,
      hello: { migration: string; index: number; zstd: number },
      rest: Buffer,
    ) => {
      const reg = options.lookup(hello.migration)
      if (reg === undefined || reg.peer !== peer) {
        return refuse(socket, peer, `channel for ${reg === undefined ? "unknown" : "another node's"} migration`)
      }
      let order = orders.get(hello.migration)
      if (order === undefined) {
        order = { next: 0, waiting: new Map() }
        orders.set(hello.migration, order)
      }
      const o = order
      socket.pause()
      // QEMU takes the first connection as the main stream: connect in the source's accept order.
      o.waiting.set(hello.index, () => {
        const local = net.createConnection({ path: reg.socket })
        sockets.add(local)
        local.once("close", () => sockets.delete(local))
        local.once("connect", () => {
          o.next++
          // Bytes that came with the hello go back in front of the stream (they may be compressed).
          if (rest.length > 0) socket.unshift(rest)
          splice(local, socket, hello.zstd)
          socket.resume()
          o.waiting.get(o.next)?.()
          o.waiting.delete(o.next)
        })
        local.once("error", () => socket.destroy())
      })
      if (hello.index === o.next) {
        const go = o.waiting.get(hello.index)
        o.waiting.delete(hello.index)
        go?.()
      }
    }

    const server = tls.createServer(
      {
        cert: options.tls.cert,
        key: options.tls.key,
        ca: options.tls.ca,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.2",
        handshakeTimeout: helloTimeout,
      },
      (socket) => {
        socket.setNoDelay(true)
        sockets.add(socket)
        socket.once("close", () => sockets.delete(socket))
        socket.on("error", () => socket.destroy())
        const cert = socket.getPeerX509Certificate()
        const who = (cert && cnOf(cert)) ?? socket.remoteAddress ?? "?"
        if (cert === undefined || !options.tls.isNode(cert) || cnOf(cert) === undefined) {
          return refuse(socket, who, "not a node certificate")
        }
        const peer = cnOf(cert)!
        const reader = new Wire.Reader()
        const timer = setTimeout(() => refuse(socket, peer, `no hello within ${helloTimeout} ms`), helloTimeout)
        const onData = (chunk: Buffer) => {
          const pushed = reader.push(chunk)
          if (Either.isLeft(pushed)) {
            clearTimeout(timer)
            return refuse(socket, peer, pushed.left)
          }
          const first = reader.next()
          if (first === undefined) return
          clearTimeout(timer)
          socket.off("data", onData)
          socket.pause()
          if (Either.isLeft(first)) return refuse(socket, peer, first.left)
          const hello = Wire.decodeHello(first.right)
          if (Either.isLeft(hello)) return refuse(socket, peer, `bad hello: ${hello.left}`)
          if (hello.right._tag === "channel") return onChannel(socket, peer, hello.right, reader.rest())
          const prepare = hello.right
          Runtime.runFork(runtime)(
            Effect.flatMap(
              controlChannel(socket, reader, peer, runtime, prepare.progress_timeout_ms ?? options.controlKeepAliveMs),
              (control) => options.onPrepare(prepare, control),
            ),
          )
        }
        socket.on("data", onData)
      },
    )
    server.maxConnections = 512
    server.on("tlsClientError", (_e, s) => s.destroy())
    const address = yield* Effect.acquireRelease(
      Effect.async<Address, Error>((resume) => {
        server.once("error", (e) => resume(Effect.fail(e)))
        server.listen(options.port, options.host, () => {
          const a = server.address() as net.AddressInfo
          resume(Effect.succeed({ host: options.host, port: a.port }))
        })
      }),
      () =>
        Effect.async<void>((resume) => {
          for (const s of sockets) s.destroy()
          server.close(() => resume(Effect.void))
        }),
    )
    return {
      address,
      forget: (migration: string) => {
        orders.delete(migration)
      },
    }
  })

/** A TLS connection to a node that must present the certificate of `peer`. */
export const dial = (
  address: Address,
  t: NodeTls,
  peer: string,
  counter: WireCounter,
  timeoutMs = 10_000,
): Effect.Effect<tls.TLSSocket, string> =>
  Effect.async<tls.TLSSocket, string>((resume) => {
    const raw = net.createConnection({ host: address.host, port: address.port })
    // No Nagle: the switchover's last pages and the control answers are small writes on the
    // critical path of the guest's downtime.
    raw.setNoDelay(true)
    counter.add(raw)
    const socket = tls.connect({
      socket: raw,
      cert: t.cert,
      key: t.key,
      ca: t.ca,
      minVersion: "TLSv1.2",
      checkServerIdentity: (_host, cert) =>
        cert.subject?.CN === peer
          ? undefined
          : new Error(`server certificate names "${cert.subject?.CN}", expected "${peer}"`),
    })
    const timer = setTimeout(() => fail(`no TLS session within ${timeoutMs} ms`), timeoutMs)
    const fail = (why: string) => {
      clearTimeout(timer)
      socket.destroy()
      raw.destroy()
      resume(Effect.fail(why))
    }
    socket.once("error", (e) => fail(e.message))
    raw.once("error", (e) => fail(e.message))
    socket.once("secureConnect", () => {
      clearTimeout(timer)
      socket.removeAllListeners("error")
      socket.on("error", () => socket.destroy())
      const cert = socket.getPeerX509Certificate()
      if (cert === undefined || !t.isNode(cert)) return fail(`${peer} does not present a node certificate`)
      resume(Effect.succeed(socket))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

/** Opens the control connection of a migration (the `prepare` hello goes first). */
export const openControl = (
  address: Address,
  t: NodeTls,
  peer: string,
  counter: WireCounter,
  hello: Extract<Wire.Hello, { _tag: "prepare" }>,
): Effect.Effect<ControlChannel, string, Scope.Scope> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const socket = yield* Effect.acquireRelease(dial(address, t, peer, counter), (s) => Effect.sync(() => s.destroy()))
    socket.write(Wire.frame(hello))
    return yield* controlChannel(
      socket,
      new Wire.Reader(),
      peer,
      runtime,
      hello.progress_timeout_ms ?? DEFAULT_CONTROL_KEEPALIVE_MS,
    )
  })

/**
 * The source's relay: a unix socket QEMU's `migrate unix:<path>` connects to; each connection QEMU
 * opens is numbered in accept order and carried over its own TLS connection to the destination.
 */
export const relay = (
  path: string,
  address: Address,
  t: NodeTls,
  peer: string,
  migration: string,
  counter: WireCounter,
  onError: (why: string) => void,
  level = 0,
): Effect.Effect<void, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<never>()
    const sockets = new Set<net.Socket>()
    let index = 0
    const server = net.createServer({ pauseOnConnect: true }, (local) => {
      sockets.add(local)
      local.once("close", () => sockets.delete(local))
      local.on("error", () => local.destroy())
      const i = index++
      Runtime.runCallback(runtime)(dial(address, t, peer, counter), {
        onExit: (exit) => {
          if (exit._tag === "Failure") {
            onError(`channel ${i}: ${exit.cause._tag === "Fail" ? exit.cause.error : "interrupted"}`)
            return local.destroy()
          }
          const remote = exit.value
          sockets.add(remote)
          remote.once("close", () => sockets.delete(remote))
          if (local.destroyed) return remote.destroy()
          remote.write(Wire.frame({ _tag: "channel", migration, index: i, zstd: level }))
          splice(local, remote, level)
          local.resume()
        },
      })
    })
    yield* Effect.acquireRelease(
      Effect.async<void, Error>((resume) => {
        server.once("error", (e) => resume(Effect.fail(e)))
        server.listen(path, () => resume(Effect.void))
      }),
      () =>
        Effect.async<void>((resume) => {
          for (const s of sockets) s.destroy()
          server.close(() => resume(Effect.void))
        }),
    )
  })
