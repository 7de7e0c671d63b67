import type { X509Certificate } from "node:crypto"
import * as net from "node:net"
import * as tls from "node:tls"
import type { Authorization } from "@novacron/security"
import { CertificateAuthority, Security } from "@novacron/security"
import { Cause, Duration, Effect, Exit, Mailbox, Option, Runtime, Schedule, type Scope } from "effect"
import type { Connection } from "../Connection.js"
import { type Frame, FrameType, json, parseJson } from "../Frame.js"
import type { DialOptions, Network, NetworkOptions } from "../Network.js"
import { ConnectionClosed, DialError, ListenError, NetworkSettingsError } from "../NetworkError.js"
import { type NetworkSettings, parseHostPort } from "../NetworkSettings.js"
import { backoff } from "./backoff.js"
import { type Log, Wire } from "./wire.js"

const RECEIVE_CAPACITY = 256

const commonName = (cert: X509Certificate) => CertificateAuthority.commonName(cert) ?? ""

/** Turns a framed wire into a Connection: control frames handled here, application frames to the mailbox. */
const establish = (
  wire: Wire,
  side: Connection["side"],
  peer: Authorization.Principal,
  peerNodeId: string,
  early: ReadonlyArray<Frame>,
  runtime: Runtime.Runtime<never>,
  keepAliveMillis = 0,
): Effect.Effect<Connection> =>
  Effect.gen(function* () {
    if (keepAliveMillis > 0) {
      // Pings count as traffic at both ends, so neither idle timer fires on a quiet but wanted link.
      const ping = setInterval(
        () => wire.send({ type: FrameType.Ping, flags: 0, payload: new Uint8Array(0) }).catch(() => {}),
        keepAliveMillis,
      )
      ping.unref()
      wire.closed.then(() => clearInterval(ping))
    }
    const receive = yield* Mailbox.make<Frame>(RECEIVE_CAPACITY)
    // Backpressure: when the mailbox is full the socket is paused until a reader catches up.
    // While flushing, every frame queues behind the backlog so that order is kept.
    let backlog: Array<Frame> = []
    let flushing = false
    const flush: Effect.Effect<void> = Effect.suspend(() => {
      const batch = backlog
      backlog = []
      return receive.offerAll(batch)
    }).pipe(
      Effect.repeat({ until: () => backlog.length === 0 }),
      Effect.ensuring(
        Effect.sync(() => {
          flushing = false
          wire.socket.resume()
        }),
      ),
    )
    const deliver = (frame: Frame) => {
      if (flushing) {
        backlog.push(frame)
      } else if (!receive.unsafeOffer(frame) && !wire.isClosed) {
        backlog.push(frame)
        flushing = true
        wire.socket.pause()
        Runtime.runFork(runtime)(flush)
      }
    }
    const onFrame = (frame: Frame) => {
      switch (frame.type) {
        case FrameType.Ping:
          wire.send({ type: FrameType.Pong, flags: 0, payload: frame.payload }).catch(() => {})
          return
        case FrameType.Pong:
          return
        case FrameType.Goodbye:
          wire.close(`peer said goodbye: ${String(parseJson(frame.payload)?.reason ?? "")}`, "info")
          return
        case FrameType.Refused: {
          const body = parseJson(frame.payload)
          wire.close(`refused by peer: ${String(body?.reason)}: ${String(body?.message)}`, "warn")
          return
        }
        default:
          if (frame.type < FrameType.Application) {
            wire.close(`protocol error: unexpected control frame ${frame.type}`, "warn", "protocol")
            return
          }
          deliver(frame)
      }
    }
    wire.onFrame = onFrame
    for (const frame of early) onFrame(frame)
    wire.closed.then(() => Runtime.runFork(runtime)(receive.end))

    return {
      id: wire.options.id,
      side,
      remoteAddress: wire.remote,
      peer,
      peerNodeId,
      send: (type, payload, flags = 0) =>
        type < FrameType.Application || type > 255
          ? Effect.dieMessage(`application frame types are ${FrameType.Application}..255, got ${type}`)
          : payload.byteLength > wire.options.maxFrameSize
            ? Effect.dieMessage(
                `payload of ${payload.byteLength} bytes exceeds max_frame_size ${wire.options.maxFrameSize}`,
              )
            : Effect.tryPromise({
                try: () => wire.send({ type, flags, payload }),
                catch: () =>
                  new ConnectionClosed({ connection: wire.options.id, reason: wire.closeReason ?? "closed" }),
              }),
      receive,
      close: (reason = "closed locally") =>
        Effect.sync(() => wire.goodbye(reason)).pipe(Effect.zipRight(Effect.promise(() => wire.closed))),
      awaitClose: Effect.promise(() => wire.closed),
    } satisfies Connection
  })

const makeLog =
  (runtime: Runtime.Runtime<never>): Log =>
  (level, message, annotations) => {
    const effect =
      level === "error"
        ? Effect.logError(message)
        : level === "warn"
          ? Effect.logWarning(message)
          : level === "info"
            ? Effect.logInfo(message)
            : Effect.logDebug(message)
    Runtime.runFork(runtime)(Effect.annotateLogs(effect, { component: "network", ...annotations }))
  }

export const make = (
  settings: NetworkSettings,
  options: NetworkOptions = {},
): Effect.Effect<Network, ListenError | NetworkSettingsError, Scope.Scope | Security.Security> =>
  Effect.gen(function* () {
    const security = yield* Security.Security
    if (security.authMethod === "mtls" && !settings.enable_tls) {
      return yield* new NetworkSettingsError({ reason: "security.auth_method mtls needs network.enable_tls: true" })
    }
    if (!settings.enable_tls && !Security.isLoopback(settings.listen_address)) {
      yield* Effect.logWarning(
        `network.enable_tls is false and the node listens on ${settings.listen_address}: traffic (and tokens) travel in clear`,
      )
    }
    const runtime = yield* Effect.runtime<never>()
    const log = makeLog(runtime)
    const connTimeout = Duration.toMillis(settings.conn_timeout)
    const idleTimeout = Duration.toMillis(settings.idle_timeout)
    const drainTimeout = Duration.toMillis(options.drainTimeout ?? Duration.seconds(5))
    const mtls = security.authMethod === "mtls"
    const requiredPermission = options.requiredPermission ?? "cluster:message"
    const live = new Set<Wire>()
    const accepted = yield* Mailbox.make<Connection>(options.acceptBacklog ?? 1024)
    let nextId = 1
    let draining = false

    const authenticate = (socket: net.Socket, hello: Record<string, unknown>) => {
      if (mtls) {
        const cert = (socket as tls.TLSSocket).getPeerX509Certificate?.()
        return cert === undefined
          ? Effect.fail("no client certificate")
          : Effect.mapError(security.authenticateCertificate(cert), (e) => e.reason)
      }
      if (security.authMethod === "token") {
        return typeof hello.token === "string"
          ? Effect.mapError(security.authenticateToken(hello.token), (e) => e.reason)
          : Effect.fail("no token")
      }
      return Option.match(security.anonymous, {
        onNone: () => Effect.fail("no authentication method"),
        onSome: (p) => Effect.succeed(p),
      })
    }

    const onConnection = (socket: net.Socket) => {
      const id = nextId++
      const wire = new Wire(socket, {
        id,
        side: "inbound",
        maxFrameSize: settings.max_frame_size,
        idleTimeoutMillis: idleTimeout,
        log,
      })
      if (draining) {
        wire.close("node is shutting down", "debug", "shutting_down")
        return
      }
      if (live.size >= settings.max_connections) {
        wire.close(`max_connections (${settings.max_connections}) reached`, "warn", "max_connections")
        return
      }
      live.add(wire)
      wire.closed.then(() => live.delete(wire))
      const timer = setTimeout(
        () => wire.close(`no authenticated Hello within conn_timeout (${connTimeout} ms)`, "warn", "timeout"),
        connTimeout,
      )
      timer.unref()
      wire.closed.then(() => clearTimeout(timer))
      const early: Array<Frame> = []
      wire.onFrame = (frame) => {
        if (frame.type !== FrameType.Hello) {
          wire.close(`protocol error: expected Hello, got frame type ${frame.type}`, "warn", "protocol")
          return
        }
        const hello = parseJson(frame.payload)
        const nodeId = typeof hello?.node_id === "string" ? hello.node_id : undefined
        if (hello === undefined || nodeId === undefined) {
          wire.close("protocol error: malformed Hello", "warn", "protocol")
          return
        }
        // Frames that arrive while authentication runs are replayed once established.
        wire.onFrame = (f) => void early.push(f)
        // The cluster port carries cluster messages: the peer's role must allow them.
        const admitted = Effect.flatMap(authenticate(socket, hello), (principal) =>
          Effect.as(
            Effect.mapError(
              security.authorize(principal, requiredPermission),
              (e) => `forbidden: role ${e.role} of ${e.principal} lacks ${e.permission}`,
            ),
            principal,
          ),
        )
        Runtime.runCallback(runtime)(
          Effect.flatMap(admitted, (principal) =>
            Effect.gen(function* () {
              clearTimeout(timer)
              if (wire.isClosed) return
              yield* Effect.promise(() =>
                wire.send(json(FrameType.Welcome, { node_id: security.nodeId })).catch(() => {}),
              )
              const connection = yield* establish(wire, "inbound", principal, nodeId, early, runtime)
              if (!accepted.unsafeOffer(connection)) wire.close("accept backlog full", "warn", "busy")
              else log("debug", "connection established", { connection: id, peer: principal.name, node: nodeId })
            }),
          ),
          {
            onExit: (exit) => {
              if (Exit.isFailure(exit)) {
                const reason = Option.getOrElse(Cause.failureOption(exit.cause), () => Cause.pretty(exit.cause))
                const forbidden = reason.startsWith("forbidden: ")
                wire.close(
                  forbidden ? reason.slice("forbidden: ".length) : `authentication failed: ${reason}`,
                  "warn",
                  forbidden ? "forbidden" : "unauthenticated",
                )
              }
            },
          },
        )
      }
    }

    const server: net.Server = settings.enable_tls
      ? tls.createServer(
          {
            cert: security.tls.cert,
            key: security.tls.key,
            ca: security.tls.ca,
            requestCert: mtls,
            rejectUnauthorized: mtls,
            handshakeTimeout: connTimeout,
            minVersion: "TLSv1.2",
          },
          onConnection,
        )
      : net.createServer(onConnection)
    server.on("tlsClientError", (e: Error, socket: tls.TLSSocket) =>
      log("warn", `TLS handshake refused: ${e.message}`, { remote: `${socket.remoteAddress}:${socket.remotePort}` }),
    )
    server.on("error", (e) => log("error", `listener error: ${e.message}`, {}))
    // Every accepted TCP socket, including those still in the TLS handshake (not yet a Wire), so
    // that shutdown can cut them: server.close() alone would wait for them.
    const sockets = new Set<net.Socket>()
    server.on("connection", (socket: net.Socket) => {
      sockets.add(socket)
      socket.once("close", () => sockets.delete(socket))
    })

    const address = yield* Effect.async<net.AddressInfo, ListenError>((resume) => {
      const onError = (e: Error) =>
        resume(
          Effect.fail(
            new ListenError({
              address: settings.listen_address,
              port: settings.bind_port,
              reason: e.message,
              cause: e,
            }),
          ),
        )
      server.once("error", onError)
      server.listen(settings.bind_port, settings.listen_address, () => {
        server.off("error", onError)
        resume(Effect.succeed(server.address() as net.AddressInfo))
      })
    })
    yield* Effect.logInfo(
      `listening on ${address.address}:${address.port} (${settings.enable_tls ? "TLS" : "plain TCP"}, auth ${security.authMethod})`,
    )

    // Drain: stop accepting, say Goodbye to everyone, wait for them to go (bounded), then cut the rest.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        draining = true
        const open = [...live]
        // Stops accepting now; its callback would only say when the last socket is gone.
        server.close()
        for (const wire of open) wire.goodbye("node shutting down", "info")
        const all = Effect.promise(() => Promise.all(open.map((w) => w.closed)))
        const done = yield* Effect.timeout(all, Duration.millis(drainTimeout)).pipe(Effect.option)
        if (Option.isNone(done)) {
          const stuck = [...live].filter((w) => !w.socket.destroyed)
          yield* Effect.logWarning(`drain timeout: destroying ${stuck.length} connection(s)`)
          for (const w of stuck) w.socket.destroy()
        }
        // Sockets that never became connections (a TLS handshake or Hello still pending) get no Goodbye.
        const unestablished = [...sockets].filter((socket) => !socket.destroyed)
        if (unestablished.length > 0) {
          yield* Effect.logDebug(`cutting ${unestablished.length} connection(s) still handshaking`)
          for (const socket of unestablished) socket.destroy()
        }
        yield* accepted.end
        yield* Effect.logInfo(`network drained (${open.length} connection(s))`)
      }),
    )

    const dial = (target: string, dialOptions: DialOptions = {}) =>
      Effect.acquireRelease(dialOnce(target, dialOptions), (c) => c.close("closed by owner"))

    const dialOnce = (target: string, dialOptions: DialOptions): Effect.Effect<Connection, DialError> =>
      Effect.async<Connection, DialError>((resume) => {
        const { host, port } = parseHostPort(target)
        const id = nextId++
        const timeoutMs = Duration.toMillis(dialOptions.timeout ?? settings.conn_timeout)
        let settled = false
        const fail = (reason: string, retryable: boolean, cause?: unknown) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          socket.destroy()
          // A TLS alert about our certificate will not go away by retrying.
          const tlsRefusal = /certificate|unknown ca|alert/i.test(reason)
          resume(Effect.fail(new DialError({ peer: target, reason, retryable: retryable && !tlsRefusal, cause })))
        }
        const timer = setTimeout(() => fail(`no Welcome within ${timeoutMs} ms`, true), timeoutMs)
        const socket: net.Socket = settings.enable_tls
          ? tls.connect({
              host,
              port,
              cert: dialOptions.tls?.cert ?? security.tls.cert,
              key: dialOptions.tls?.key ?? security.tls.key,
              ca: dialOptions.tls?.ca ?? security.tls.ca,
              rejectUnauthorized: true,
              // Peers are identified by CA + trusted_nodes below, not by the host name they were dialed at.
              checkServerIdentity: () => undefined,
              minVersion: "TLSv1.2",
            })
          : net.connect({ host, port })
        socket.once(settings.enable_tls ? "secureConnect" : "connect", () => {
          const peerCert = settings.enable_tls ? (socket as tls.TLSSocket).getPeerX509Certificate() : undefined
          // With a caller-supplied CA, TLS has already verified the chain against it; our own CA
          // and trusted_nodes describe our cluster, not the one being dialed.
          const checkPeer: Effect.Effect<Authorization.Principal | undefined, string> =
            peerCert === undefined
              ? Effect.succeed(undefined)
              : dialOptions.tls?.ca !== undefined
                ? Effect.succeed({ name: commonName(peerCert), role: "node", method: "mtls" })
                : Effect.mapError(security.authenticateCertificate(peerCert), (e) => e.reason)
          Runtime.runCallback(runtime)(checkPeer, {
            onExit: (exit) => {
              if (Exit.isFailure(exit)) {
                const reason = Option.getOrElse(Cause.failureOption(exit.cause), () => "certificate check failed")
                fail(`server certificate refused: ${reason}`, false)
                return
              }
              const wire = new Wire(socket, {
                id,
                side: "outbound",
                maxFrameSize: settings.max_frame_size,
                idleTimeoutMillis: idleTimeout,
                log,
              })
              const early: Array<Frame> = []
              wire.closed.then((reason) => fail(`closed during handshake: ${reason}`, true))
              wire.onFrame = (frame) => {
                if (frame.type === FrameType.Refused) {
                  const body = parseJson(frame.payload)
                  const why = String(body?.reason)
                  fail(
                    `refused: ${why}: ${String(body?.message)}`,
                    why === "max_connections" || why === "shutting_down",
                  )
                  return
                }
                if (frame.type !== FrameType.Welcome) {
                  fail(`protocol error: expected Welcome, got frame type ${frame.type}`, false)
                  return
                }
                const nodeId = String(parseJson(frame.payload)?.node_id ?? "")
                wire.onFrame = (f) => void early.push(f)
                const peer: Authorization.Principal = exit.value ?? {
                  name: nodeId,
                  role: "node",
                  method: security.authMethod,
                }
                Runtime.runCallback(runtime)(
                  establish(
                    wire,
                    "outbound",
                    peer,
                    nodeId,
                    early,
                    runtime,
                    dialOptions.keepAlive === true ? Math.max(1, Math.floor(idleTimeout / 3)) : 0,
                  ),
                  {
                    onExit: (established) => {
                      if (settled || Exit.isFailure(established)) return
                      settled = true
                      clearTimeout(timer)
                      live.add(wire)
                      wire.closed.then(() => live.delete(wire))
                      resume(Effect.succeed(established.value))
                    },
                  },
                )
              }
              wire
                .send(json(FrameType.Hello, { node_id: security.nodeId, token: dialOptions.token }))
                .catch((e) => fail(`cannot send Hello: ${String(e)}`, true, e))
            },
          })
        })
        // `on`, not `once`: a second error event without a listener would crash the process.
        socket.on("error", (e) => fail(e.message, true, e))
        socket.once("close", () => fail("connection closed before the handshake finished", true))
        return Effect.sync(() => {
          if (!settled) {
            settled = true
            clearTimeout(timer)
            socket.destroy()
          }
        })
      })

    // Links to configured peers: dial with backoff, hold the connection, dial again when it closes.
    const peers = new Map<string, Connection>()
    const peerSchedule = options.peerBackoff ?? backoff({ attempts: Number.POSITIVE_INFINITY })
    const link = (target: string) =>
      Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* dial(target, { token: options.peerToken, keepAlive: true }).pipe(
            Effect.retry({ schedule: peerSchedule, while: (e) => e.retryable }),
          )
          peers.set(target, conn)
          yield* Effect.logInfo(`peer ${target} connected (${conn.peer.name})`)
          const reason = yield* conn.awaitClose
          yield* Effect.logInfo(`peer ${target} disconnected: ${reason}`)
        }).pipe(Effect.ensuring(Effect.sync(() => peers.delete(target)))),
      ).pipe(
        Effect.catchAll((e) =>
          Effect.logError(`peer ${target} refused us: ${e.reason}; trying again in 30 s`).pipe(
            Effect.zipRight(Effect.sleep("30 seconds")),
          ),
        ),
        // A peer that accepts and drops at once must not be redialed in a tight loop.
        Effect.repeat(Schedule.spaced("100 millis")),
      )
    for (const target of settings.peers) yield* Effect.forkScoped(link(target))

    return {
      address: { host: address.address, port: address.port },
      accepted,
      connectionCount: Effect.sync(() => live.size),
      peers: Effect.sync(() => new Map(peers)),
      dial,
    } satisfies Network
  })
