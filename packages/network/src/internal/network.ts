import type { X509Certificate } from "node:crypto"
import * as net from "node:net"
import * as tls from "node:tls"
import type { Authorization } from "@novacron/security"
import { CertificateAuthority, Security } from "@novacron/security"
import { TraceContext } from "@novacron/wire"
import { Cause, Duration, Effect, Exit, Mailbox, Metric, Option, Runtime, Schedule, type Scope, Tracer } from "effect"
import type { Connection } from "../Connection.js"
import { type Frame, FrameType, json, parseJson } from "../Frame.js"
import type { DialOptions, Network, NetworkOptions } from "../Network.js"
import { ConnectionClosed, DialError, ListenError, NetworkSettingsError } from "../NetworkError.js"
import * as NetworkMetrics from "../NetworkMetrics.js"
import { DEFAULT_MAX_CONNECTIONS_PER_IP, type NetworkSettings, parsePeer } from "../NetworkSettings.js"
import { backoff } from "./backoff.js"
import { certificateNames, describeNames } from "./identity.js"
import { peerText, tlsReason } from "./text.js"
import { type Log, type PreAuthBudget, Wire } from "./wire.js"

const RECEIVE_CAPACITY = 256

/** Largest frame before the peer is authenticated: a Hello, Welcome or Refused is well below it. */
export const PRE_AUTH_MAX_FRAME_SIZE = 16 * 1024

/** Default bound on the bytes all unauthenticated connections together may hold. */
export const PRE_AUTH_BUFFER_BYTES = 4 * 1024 * 1024

/** Frames an inbound peer may send after its Hello while it is being authenticated. */
const MAX_EARLY_FRAMES = 64

/** TLS errors that retrying will not cure (certificates, protocol versions). */
const PERMANENT_TLS = /^(ERR_SSL_|ERR_TLS_CERT|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_TLS_HANDSHAKE_TIMEOUT$)/

const commonName = (cert: X509Certificate) => CertificateAuthority.commonName(cert) ?? ""

/**
 * The TCP socket under a server-side TLS socket. Node keeps it as `_parent` (not public API, hence
 * the fallback to the TLS socket itself); its address and byte count survive the TLS socket's end.
 */
const tcpOf = (socket: net.Socket): net.Socket => (socket as { _parent?: net.Socket | null })._parent ?? socket

/** A refusal before the connection is established: what is logged and the metric's bounded label. */
interface Refusal {
  readonly label: NetworkMetrics.RefusalReason
  readonly message: string
}

/** Turns a framed wire into a Connection: control frames handled here, application frames to the mailbox. */
const establish = (
  wire: Wire,
  side: Connection["side"],
  peer: Authorization.Principal,
  peerNodeId: string,
  peerNodeIdSource: Connection["peerNodeIdSource"],
  early: ReadonlyArray<Frame>,
  runtime: Runtime.Runtime<never>,
  keepAliveMillis = 0,
): Effect.Effect<Connection> =>
  Effect.gen(function* () {
    wire.authenticate()
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
          wire.close(`peer said goodbye: ${peerText(parseJson(frame.payload)?.reason)}`, "info")
          return
        case FrameType.Refused: {
          const body = parseJson(frame.payload)
          wire.close(`refused by peer: ${peerText(body?.reason)}: ${peerText(body?.message)}`, "warn")
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
      peerNodeIdSource,
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
    let outbound = 0
    const maxPerIp = settings.max_connections_per_ip ?? DEFAULT_MAX_CONNECTIONS_PER_IP
    const perIp = new Map<string, number>()
    const preAuthBudget: PreAuthBudget = { used: 0, limit: options.preAuthBufferBytes ?? PRE_AUTH_BUFFER_BYTES }
    // Accepted TCP sockets we cut ourselves before TLS (their handshake error is ours, not news),
    // and each one's address, which the TLS socket forgets once destroyed.
    const cutByUs = new WeakSet<net.Socket>()
    const remoteOf = new WeakMap<net.Socket, string>()
    // When each TCP socket was accepted: conn_timeout runs from there, across the TLS handshake.
    const acceptedAt = new WeakMap<net.Socket, number>()

    const count = (metric: Metric.Metric.Counter<number>) => Runtime.runFork(runtime)(Metric.increment(metric))
    const countRefused = (label: string) =>
      count(
        label === "probe"
          ? NetworkMetrics.probeConnections
          : NetworkMetrics.refused(label as NetworkMetrics.RefusalReason),
      )

    const authenticate = (
      socket: net.Socket,
      hello: Record<string, unknown>,
      nodeId: string,
    ): Effect.Effect<{ principal: Authorization.Principal; source: Connection["peerNodeIdSource"] }, Refusal> => {
      const unauthenticated = (why: string): Refusal => ({ label: "unauthenticated", message: why })
      const cert = mtls ? (socket as tls.TLSSocket).getPeerX509Certificate?.() : undefined
      // A peer naming this node would overwrite what we know about ourselves; only this node's own
      // certificate (a self-dial, proven by holding our key) may.
      if (nodeId === security.nodeId && cert?.fingerprint256 !== security.tls.certificate.fingerprint256) {
        return Effect.fail({
          label: "identity",
          message: `identity refused: Hello claims this node's own id "${peerText(nodeId)}"`,
        })
      }
      if (mtls) {
        if (cert === undefined) return Effect.fail(unauthenticated("no client certificate"))
        return Effect.mapError(security.authenticateCertificate(cert), (e) => unauthenticated(e.reason)).pipe(
          Effect.filterOrFail(
            () => certificateNames(cert, nodeId),
            (): Refusal => ({
              label: "identity",
              message: `identity refused: certificate names ${describeNames(cert)} but Hello says "${peerText(nodeId)}"`,
            }),
          ),
          Effect.map((principal) => ({ principal, source: "certificate" as const })),
        )
      }
      if (security.authMethod === "token") {
        return typeof hello.token === "string"
          ? Effect.mapError(security.authenticateToken(hello.token), (e) => unauthenticated(e.reason)).pipe(
              Effect.map((principal) => ({ principal, source: "claimed" as const })),
            )
          : Effect.fail(unauthenticated("no token"))
      }
      return Option.match(security.anonymous, {
        onNone: () => Effect.fail(unauthenticated("no authentication method")),
        onSome: (principal) => Effect.succeed({ principal, source: "claimed" as const }),
      })
    }

    /** A socket ready for frames (plain TCP at once, TLS after its handshake): Hello, authenticate, Welcome. */
    const onConnection = (socket: net.Socket, remote: string | undefined, since = Date.now()) => {
      const id = nextId++
      const wire = new Wire(socket, {
        id,
        side: "inbound",
        maxFrameSize: settings.max_frame_size,
        preAuthMaxFrameSize: PRE_AUTH_MAX_FRAME_SIZE,
        preAuthBudget,
        idleTimeoutMillis: idleTimeout,
        log,
        onPreAuthClose: countRefused,
        remote,
      })
      live.add(wire)
      wire.closed.then(() => live.delete(wire))
      const timer = setTimeout(
        () => wire.close(`no authenticated Hello within conn_timeout (${connTimeout} ms)`, "warn", "timeout"),
        Math.max(0, connTimeout - (Date.now() - since)),
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
        const nodeId = typeof hello?.node_id === "string" && hello.node_id !== "" ? hello.node_id : undefined
        if (hello === undefined || nodeId === undefined) {
          wire.close("protocol error: malformed Hello", "warn", "protocol")
          return
        }
        // Frames that arrive while authentication runs are replayed once established (a few: the
        // peer should wait for Welcome).
        wire.onFrame = (f) => {
          if (early.push(f) > MAX_EARLY_FRAMES) {
            wire.close(`protocol error: more than ${MAX_EARLY_FRAMES} frames before Welcome`, "warn", "protocol")
          }
        }
        // The cluster port carries cluster messages: the peer's role must allow them.
        const admitted = Effect.flatMap(authenticate(socket, hello, nodeId), (who) =>
          Effect.as(
            Effect.mapError(
              security.authorize(who.principal, requiredPermission),
              (e): Refusal => ({
                label: "forbidden",
                message: `role ${e.role} of ${e.principal} lacks ${e.permission}`,
              }),
            ),
            who,
          ),
        )
        // The accept is a span of the dialer's trace when its Hello carries a traceparent (one
        // operation over two nodes is one trace); a new trace otherwise.
        const parent = Option.map(TraceContext.parse(hello.traceparent), Tracer.externalSpan)
        Runtime.runCallback(runtime)(
          Effect.flatMap(admitted, ({ principal, source }) =>
            Effect.gen(function* () {
              clearTimeout(timer)
              if (wire.isClosed) return
              yield* Effect.promise(() =>
                wire.send(json(FrameType.Welcome, { node_id: security.nodeId })).catch(() => {}),
              )
              const connection = yield* establish(wire, "inbound", principal, nodeId, source, early, runtime)
              if (!accepted.unsafeOffer(connection)) {
                countRefused("busy")
                wire.close("accept backlog full", "warn", "busy")
              } else {
                count(NetworkMetrics.connectionsAccepted)
                log("debug", "connection established", { connection: id, peer: principal.name, node: nodeId })
              }
            }),
          ).pipe(
            Effect.withSpan("network.accept", {
              attributes: { "peer.node_id": nodeId, "peer.address": remote ?? "" },
              ...(Option.isSome(parent) ? { parent: parent.value } : { root: true }),
            }),
          ),
          {
            onExit: (exit) => {
              if (Exit.isFailure(exit)) {
                const refusal = Option.getOrElse(
                  Cause.failureOption(exit.cause),
                  (): Refusal => ({ label: "unauthenticated", message: Cause.pretty(exit.cause) }),
                )
                wire.close(
                  refusal.label === "unauthenticated" ? `authentication failed: ${refusal.message}` : refusal.message,
                  "warn",
                  refusal.label,
                )
              }
            },
          },
        )
      }
    }

    // Every accepted TCP socket, including those still in the TLS handshake (not yet a Wire): they
    // count against max_connections and the per-IP limit, and shutdown cuts them (server.close()
    // alone would wait for them).
    const sockets = new Set<net.Socket>()
    const admit = (raw: net.Socket): Refusal | undefined => {
      if (draining) return { label: "shutting_down", message: "node is shutting down" }
      if (sockets.size + outbound >= settings.max_connections) {
        return { label: "max_connections", message: `max_connections (${settings.max_connections}) reached` }
      }
      if ((perIp.get(raw.remoteAddress ?? "?") ?? 0) >= maxPerIp) {
        return {
          label: "per_ip_limit",
          message: `max_connections_per_ip (${maxPerIp}) reached for ${raw.remoteAddress ?? "?"}`,
        }
      }
      return undefined
    }
    const onTcp = (raw: net.Socket) => {
      const ip = raw.remoteAddress ?? "?"
      const remote = `${ip}:${raw.remotePort ?? "?"}`
      remoteOf.set(raw, remote)
      acceptedAt.set(raw, Date.now())
      const refusal = admit(raw)
      if (refusal !== undefined) {
        const level = refusal.label === "shutting_down" ? "debug" : "warn"
        if (settings.enable_tls) {
          // No frame can be sent before TLS: cut the socket.
          cutByUs.add(raw)
          raw.destroy()
          countRefused(refusal.label)
          log(level, `connection refused: ${refusal.message}`, { remote })
        } else {
          const wire = new Wire(raw, {
            id: nextId++,
            side: "inbound",
            maxFrameSize: settings.max_frame_size,
            preAuthMaxFrameSize: PRE_AUTH_MAX_FRAME_SIZE,
            idleTimeoutMillis: idleTimeout,
            log,
            onPreAuthClose: countRefused,
            remote,
          })
          wire.close(refusal.message, level, refusal.label)
        }
        return
      }
      sockets.add(raw)
      perIp.set(ip, (perIp.get(ip) ?? 0) + 1)
      raw.once("close", () => {
        sockets.delete(raw)
        const n = (perIp.get(ip) ?? 1) - 1
        if (n === 0) perIp.delete(ip)
        else perIp.set(ip, n)
      })
      if (!settings.enable_tls) onConnection(raw, remote)
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
          (socket) => onConnection(socket, remoteOf.get(tcpOf(socket)), acceptedAt.get(tcpOf(socket))),
        )
      : net.createServer()
    server.on("tlsClientError", (e: Error & { code?: string }, socket: tls.TLSSocket) => {
      // Node leaves the socket open after a handshake error, a handshake timeout included.
      socket.destroy()
      const raw = tcpOf(socket)
      if (cutByUs.has(raw)) return
      const remote = remoteOf.get(raw) ?? `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`
      if (e.code === "ECONNRESET" && raw.bytesRead === 0) {
        // Connected and closed without a ClientHello: a reachability probe, not an attack.
        countRefused("probe")
        log("debug", "probe: connected and closed before TLS", { remote })
        return
      }
      countRefused(e.code === "ERR_TLS_HANDSHAKE_TIMEOUT" ? "timeout" : "tls")
      // A client certificate refused by Node after the OpenSSL handshake surfaces as a hang-up;
      // the real reason is on the socket.
      const why = socket.authorizationError ? { code: String(socket.authorizationError) } : e
      log("warn", `TLS handshake refused: ${tlsReason(why)}`, { remote })
    })
    server.on("error", (e) => log("error", `listener error: ${e.message}`, {}))
    server.on("connection", onTcp)

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

    // A span per dial; its traceparent goes in the Hello, so the peer's accept joins this trace.
    const dialOnce = (target: string, dialOptions: DialOptions): Effect.Effect<Connection, DialError> =>
      Effect.flatMap(TraceContext.current, (traceparent) => dialTraced(target, dialOptions, traceparent)).pipe(
        Effect.withSpan("network.dial", { attributes: { "peer.target": target } }),
      )

    const dialTraced = (
      target: string,
      dialOptions: DialOptions,
      traceparent: Option.Option<string>,
    ): Effect.Effect<Connection, DialError> =>
      Effect.async<Connection, DialError>((resume) => {
        const pinned = parsePeer(target)
        const { host, port } = pinned
        const expectedNodeId = dialOptions.nodeId ?? pinned.nodeId
        const id = nextId++
        const timeoutMs = Duration.toMillis(dialOptions.timeout ?? settings.conn_timeout)
        let settled = false
        const fail = (reason: string, retryable: boolean, cause?: unknown) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          socket.destroy()
          resume(Effect.fail(new DialError({ peer: target, reason, retryable, cause })))
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
              // Peers are identified by node id (the certificate's CN/SAN, checked below against the
              // pinned id and the Welcome), not by the host name they were dialed at.
              checkServerIdentity: () => undefined,
              minVersion: "TLSv1.2",
            })
          : net.connect({ host, port })
        socket.once(settings.enable_tls ? "secureConnect" : "connect", () => {
          const peerCert = settings.enable_tls ? (socket as tls.TLSSocket).getPeerX509Certificate() : undefined
          // Checked before the Hello goes out, so that a token is never sent to the wrong server.
          if (peerCert !== undefined && expectedNodeId !== undefined && !certificateNames(peerCert, expectedNodeId)) {
            fail(
              `server certificate names ${describeNames(peerCert)}, expected node "${peerText(expectedNodeId)}"`,
              false,
            )
            return
          }
          if (
            peerCert !== undefined &&
            dialOptions.fingerprint !== undefined &&
            CertificateAuthority.fingerprint(peerCert) !==
              CertificateAuthority.normalizeFingerprint(dialOptions.fingerprint)
          ) {
            fail(
              `server certificate fingerprint ${CertificateAuthority.fingerprint(peerCert)} is not the pinned one`,
              false,
            )
            return
          }
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
                preAuthMaxFrameSize: PRE_AUTH_MAX_FRAME_SIZE,
                idleTimeoutMillis: idleTimeout,
                log,
              })
              const early: Array<Frame> = []
              wire.closed.then((reason) => fail(`closed during handshake: ${reason}`, true))
              wire.onFrame = (frame) => {
                if (frame.type === FrameType.Refused) {
                  const body = parseJson(frame.payload)
                  const why = peerText(body?.reason)
                  fail(
                    `refused: ${why}: ${peerText(body?.message)}`,
                    why === "max_connections" || why === "shutting_down" || why === "per_ip_limit",
                  )
                  return
                }
                if (frame.type !== FrameType.Welcome) {
                  fail(`protocol error: expected Welcome, got frame type ${frame.type}`, false)
                  return
                }
                const welcomed = parseJson(frame.payload)?.node_id
                const nodeId = typeof welcomed === "string" ? welcomed : ""
                // The Welcome's node id is bound to the server's certificate (the mirror of the Hello check).
                if (peerCert !== undefined && !certificateNames(peerCert, nodeId)) {
                  fail(
                    `identity refused: Welcome says "${peerText(nodeId)}" but the server certificate names ${describeNames(peerCert)}`,
                    false,
                  )
                  return
                }
                if (peerCert === undefined && expectedNodeId !== undefined && nodeId !== expectedNodeId) {
                  fail(
                    `identity refused: Welcome says "${peerText(nodeId)}", expected "${peerText(expectedNodeId)}"`,
                    false,
                  )
                  return
                }
                wire.onFrame = (f) => {
                  if (early.push(f) > MAX_EARLY_FRAMES)
                    fail("protocol error: too many frames before establishing", false)
                }
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
                    peerCert === undefined ? "claimed" : "certificate",
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
                      outbound++
                      wire.closed.then(() => {
                        live.delete(wire)
                        outbound--
                      })
                      resume(Effect.succeed(established.value))
                    },
                  },
                )
              }
              wire
                .send(
                  json(FrameType.Hello, {
                    node_id: security.nodeId,
                    token: dialOptions.token,
                    traceparent: Option.getOrUndefined(traceparent),
                  }),
                )
                .catch((e) => fail(`cannot send Hello: ${String(e)}`, true, e))
            },
          })
        })
        // `on`, not `once`: a second error event without a listener would crash the process.
        socket.on("error", (e: Error & { code?: string }) =>
          // A certificate or protocol refusal will not go away by retrying.
          typeof e.code === "string" && PERMANENT_TLS.test(e.code)
            ? fail(`TLS handshake failed: ${tlsReason(e)}`, false, e)
            : fail(e.message, true, e),
        )
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
    const link = (target: string) => {
      // The node id the peer proved (certificate) on the first link is pinned for every re-dial.
      let learned = parsePeer(target).nodeId
      return Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* Effect.suspend(() =>
            dial(target, { token: options.peerToken, keepAlive: true, nodeId: learned }),
          ).pipe(Effect.retry({ schedule: peerSchedule, while: (e) => e.retryable }))
          if (conn.peerNodeIdSource === "certificate") learned ??= conn.peerNodeId
          peers.set(target, conn)
          yield* Effect.logInfo(`peer ${target} connected (${conn.peer.name})`)
          const reason = yield* conn.awaitClose
          yield* Effect.logInfo(`peer ${target} disconnected: ${reason}`)
        }).pipe(Effect.ensuring(Effect.sync(() => peers.delete(target)))),
      ).pipe(
        Effect.catchAll((e) =>
          Effect.logError(`peer ${target} cannot be linked: ${e.reason}; trying again in 30 s`).pipe(
            Effect.zipRight(Effect.sleep("30 seconds")),
          ),
        ),
        // A peer that accepts and drops at once must not be redialed in a tight loop.
        Effect.repeat(Schedule.spaced("100 millis")),
      )
    }
    for (const target of settings.peers) yield* Effect.forkScoped(link(target))

    return {
      address: { host: address.address, port: address.port },
      accepted,
      connectionCount: Effect.sync(() => sockets.size + outbound),
      peers: Effect.sync(() => new Map(peers)),
      dial,
    } satisfies Network
  })
