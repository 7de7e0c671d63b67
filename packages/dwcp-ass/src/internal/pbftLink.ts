// PBFT's peer links: mutually authenticated TLS between the members, a peer's identity being its
// certificate's common name (checked against the configured member list on both sides), frames in
// `@novacron/wire`'s format with Schema-decoded payloads (`pbftWire.ts`), bounded in size. A frame
// that breaks the framing (too large, corrupt, cut off) closes its connection; one whose payload
// does not decode is refused alone. Each member dials every other one and
// sends on that connection only; what arrives on accepted connections is received. A dropped
// link is redialled with doubling backoff; frames wait in a bounded queue meanwhile (PBFT
// tolerates loss: the client retransmits and the view change recovers the rest).
import { type KeyObject, X509Certificate } from "node:crypto"
import * as tls from "node:tls"
import { Wire } from "@novacron/wire"
import { Effect, Either, type Scope } from "effect"
import { StateUnavailable } from "../StateError.js"
import * as PbftWire from "./pbftWire.js"
import { commonName } from "./wire.js"

export interface Peer {
  readonly id: string
  readonly host: string
  readonly port: number
}

export interface LinkOptions {
  readonly self: string
  readonly peers: ReadonlyArray<Peer>
  readonly bind: { readonly host: string; readonly port: number }
  readonly ca: Buffer
  readonly cert: Buffer
  readonly key: Buffer
  /** Largest frame payload accepted or sent (bytes of JSON). */
  readonly maxFrame: number
  /** A frame from an authenticated member, decoded with its Schema. */
  readonly onFrame: (from: string, frame: PbftWire.Frame) => void
  /** The member's certificate public key, learnt at each handshake. */
  readonly onPeerKey: (id: string, key: KeyObject) => void
  /** What was refused and from whom (a member id, or undefined before one is known). */
  readonly onRefused: (from: string | undefined, reason: string) => void
  /** A member cannot be dialled (said once until its link was up again). */
  readonly onDown: (reason: string) => void
  /** Test hook: frames to or from this peer are dropped (a partition). */
  readonly cut?: ((peer: string) => boolean) | undefined
}

export interface Link {
  readonly send: (to: string, frame: PbftWire.Frame) => void
  readonly port: number
}

const QUEUE = 4096
const HIGH_WATER = 16 * 1024 * 1024

const peerId = (socket: tls.TLSSocket): { id: string; key: KeyObject } | undefined => {
  const raw = socket.getPeerX509Certificate?.()
  if (raw === undefined) return undefined
  const cert = new X509Certificate(raw.raw)
  const id = commonName(cert)
  return id === undefined ? undefined : { id, key: cert.publicKey }
}

export const make = (o: LinkOptions): Effect.Effect<Link, StateUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const members = new Set(o.peers.map((p) => p.id))
    const base = { ca: o.ca, cert: o.cert, key: o.key, minVersion: "TLSv1.3" as const }
    let closed = false
    const sockets = new Set<tls.TLSSocket>()
    const timers = new Set<NodeJS.Timeout>()
    /** the accepted connection of each member: a newer one replaces the older */
    const inbound = new Map<string, tls.TLSSocket>()

    /** Feeds a member's connection: false once the framing broke (refused, to be closed). */
    const receive = (from: string) => {
      const decoder = Wire.decoder(PbftWire.format, { maxPayload: o.maxFrame, limitName: "maxFrame" })
      let broken = false
      const broke = (why: string) => {
        broken = true
        o.onRefused(from, `${why}: connection closed`)
        return false
      }
      return {
        push: (chunk: Buffer): boolean => {
          if (broken) return false
          const { frames, error } = decoder.push(chunk)
          for (const f of frames) {
            if (o.cut?.(from)) continue
            const frame = PbftWire.decode(f)
            if (Either.isLeft(frame)) o.onRefused(from, frame.left)
            else o.onFrame(from, frame.right)
          }
          return error === undefined ? true : broke(error.message)
        },
        /** the connection closed: a frame cut off is refused */
        end: () => {
          if (broken || closed) return
          const error = decoder.end()
          if (error !== undefined) broke(error.message)
        },
      }
    }

    const server = tls.createServer({
      ...base,
      requestCert: true,
      rejectUnauthorized: true,
      handshakeTimeout: 5_000,
    })
    server.maxConnections = 4 * (o.peers.length + 1)
    server.on("secureConnection", (socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      socket.on("error", () => {})
      const who = peerId(socket)
      if (who === undefined || !members.has(who.id)) {
        o.onRefused(who?.id, `connection from ${who?.id ?? "a certificate without a common name"}: not a pbft member`)
        socket.destroy()
        return
      }
      o.onPeerKey(who.id, who.key)
      inbound.get(who.id)?.destroy()
      inbound.set(who.id, socket)
      const feed = receive(who.id)
      socket.on("data", (chunk: Buffer) => {
        if (!feed.push(chunk)) socket.destroy()
      })
      socket.on("close", feed.end)
    })
    server.on("tlsClientError", (e) => o.onRefused(undefined, `handshake refused: ${e.message}`))
    const port = yield* Effect.async<number, StateUnavailable>((resume) => {
      server.once("error", (e) =>
        resume(
          Effect.fail(
            new StateUnavailable({
              operation: "pbft",
              key: "",
              message: `pbft listen on ${o.bind.host}:${o.bind.port}: ${e.message}`,
            }),
          ),
        ),
      )
      server.listen(o.bind.port, o.bind.host, () => resume(Effect.succeed((server.address() as { port: number }).port)))
    })

    interface Out {
      socket: tls.TLSSocket | undefined
      queue: Array<Buffer>
      backoff: number
      /** a failed dial was reported since the link was last up: report the next once it was up again */
      warned: boolean
    }
    const outs = new Map<string, Out>()
    const flush = (out: Out) => {
      const s = out.socket
      if (s === undefined) return
      while (out.queue.length > 0 && s.writableLength < HIGH_WATER) s.write(out.queue.shift()!)
    }
    const dial = (peer: Peer, out: Out) => {
      if (closed) return
      const socket = tls.connect({
        ...base,
        host: peer.host,
        port: peer.port,
        // The identity is the certificate's common name, whatever address the member has.
        checkServerIdentity: (_host, cert) =>
          cert.subject?.CN === peer.id ? undefined : new Error(`expected ${peer.id}, got CN=${cert.subject?.CN}`),
      })
      sockets.add(socket)
      socket.setNoDelay(true)
      let up = false
      socket.on("secureConnect", () => {
        const who = peerId(socket)
        if (who === undefined || who.id !== peer.id) {
          socket.destroy()
          return
        }
        o.onPeerKey(who.id, who.key)
        up = true
        out.socket = socket
        out.backoff = 50
        out.warned = false
        flush(out)
      })
      socket.on("drain", () => flush(out))
      // Replies come back on accepted connections; anything sent here is ignored.
      socket.on("data", () => {})
      socket.on("error", (e) => {
        if (up || out.warned) return
        out.warned = true
        o.onDown(`dial ${peer.id} at ${peer.host}:${peer.port}: ${e.message} (retrying, up to every 2 s)`)
      })
      socket.on("close", () => {
        sockets.delete(socket)
        if (out.socket === socket) out.socket = undefined
        if (closed) return
        const t = setTimeout(() => {
          timers.delete(t)
          dial(peer, out)
        }, out.backoff)
        timers.add(t)
        out.backoff = Math.min(2_000, out.backoff * 2)
      })
    }
    for (const peer of o.peers) {
      if (peer.id === o.self) continue
      const out: Out = { socket: undefined, queue: [], backoff: 50, warned: false }
      outs.set(peer.id, out)
      dial(peer, out)
    }

    yield* Effect.addFinalizer(() =>
      Effect.async<void>((resume) => {
        closed = true
        for (const t of timers) clearTimeout(t)
        for (const s of sockets) s.destroy()
        server.close(() => resume(Effect.void))
      }),
    )

    const send = (to: string, frame: PbftWire.Frame) => {
      const out = outs.get(to)
      if (out === undefined || closed || o.cut?.(to)) return
      const bytes = PbftWire.encode(frame)
      const size = bytes.length - Wire.headerSize(PbftWire.format)
      if (size > o.maxFrame) {
        o.onRefused(undefined, `${frame.t} frame of ${size} bytes to ${to} above maxFrame ${o.maxFrame}: not sent`)
        return
      }
      out.queue.push(bytes)
      if (out.queue.length > QUEUE) out.queue.shift()
      flush(out)
    }
    return { send, port } satisfies Link
  })
