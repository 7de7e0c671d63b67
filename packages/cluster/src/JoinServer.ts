/**
 * The join server of the seed node: HTTPS (`node:https`) with the node's certificate, no client
 * certificate required (the joiner has none yet). A joiner posts its node id, its own public key
 * and the id of its token, with an HMAC of the body under the token's key as proof; it gets back a
 * node certificate for that id signed by the cluster CA, and the CA certificate.
 *
 * Bodies are bounded, slow requests time out, each remote address gets a number of requests per
 * minute, and every refusal is logged with the remote address and the reason (the joiner is told
 * less: an unknown token and a wrong secret look the same to it).
 *
 * @since 0.1.0
 */
import { createPublicKey } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import * as https from "node:https"
import { isIP } from "node:net"
import { CertificateAuthority } from "@novacron/security"
import { Context, Data, Effect, FiberSet, Layer, Schema, type Scope } from "effect"
import * as ClusterCa from "./ClusterCa.js"
import { type ClusterCaError, type ClusterStateError, JoinServerError } from "./ClusterError.js"
import { defaults } from "./ClusterSettings.js"
import { errorText, readIfExists } from "./internal/files.js"
import { JOIN_PATH, JoinRequest, type JoinResponse, PROOF_HEADER } from "./internal/protocol.js"
import * as store from "./internal/tokens.js"
import * as JoinToken from "./JoinToken.js"

/**
 * Options of the join server.
 *
 * @since 0.1.0
 * @category models
 */
export interface JoinServerOptions {
  /** The seed's `system.data_dir` (holds `tls/ca.key` and `cluster/tokens.json`). */
  readonly dataDir: string
  /** Address to listen on. Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** `cluster.join_port`; 0: any free port. */
  readonly port: number
  /** The seed's own `network.peers` entry (`listen_address:bind_port`), handed to joiners. */
  readonly peerAddress?: string | undefined
  /** `cluster.max_request_bytes`. */
  readonly maxRequestBytes?: number | undefined
  /** `cluster.requests_per_minute`, per remote address. */
  readonly requestsPerMinute?: number | undefined
  /** Validity of issued node certificates. Default 825 days (capped by the CA's). */
  readonly validDays?: number | undefined
  /** Whole-request deadline (headers and body). Default 15 s. */
  readonly requestTimeoutMillis?: number | undefined
}

/**
 * A running join server.
 *
 * @since 0.1.0
 * @category models
 */
export interface JoinServerInfo {
  readonly host: string
  /** The bound port (the actual one when 0 was asked). */
  readonly port: number
  /** SHA-256 of the CA certificate tokens must pin. */
  readonly caFingerprint: string
}

/**
 * @since 0.1.0
 * @category tags
 */
export class JoinServer extends Context.Tag("@novacron/cluster/JoinServer")<JoinServer, JoinServerInfo>() {}

// A refused request: what the joiner is told (status, public reason) and what is logged.
class Refused extends Data.TaggedError("Refused")<{
  readonly status: number
  readonly reason: string
  readonly detail?: string | undefined
}> {}

const readBody = (req: IncomingMessage, limit: number): Effect.Effect<Buffer, Refused> =>
  Effect.async<Buffer, Refused>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const tooLarge = () =>
      new Refused({ status: 413, reason: `request body over ${limit} bytes`, detail: `body over ${limit} bytes` })
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        resume(Effect.fail(tooLarge()))
      } else chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(Buffer.concat(chunks)))
    }
    const onError = (e: Error) => {
      cleanup()
      resume(Effect.fail(new Refused({ status: 400, reason: "request aborted", detail: errorText(e) })))
    }
    const cleanup = () => {
      req.off("data", onData)
      req.off("end", onEnd)
      req.off("error", onError)
    }
    const declared = Number(req.headers["content-length"] ?? "0")
    if (declared > limit) return resume(Effect.fail(tooLarge()))
    req.on("data", onData)
    req.on("end", onEnd)
    req.on("error", onError)
    return Effect.sync(cleanup)
  })

const decodeRequest = Schema.decodeUnknownEither(Schema.parseJson(JoinRequest), { errors: "all" })

const send = (res: ServerResponse, status: number, body: unknown, close = false) =>
  Effect.sync(() => {
    if (res.headersSent || res.destroyed) return
    const text = JSON.stringify(body)
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      ...(close ? { connection: "close" } : {}),
    })
    res.end(text)
  })

// Fixed one-minute windows per remote address; entries of past windows are dropped as the map grows.
const rateLimiter = (perMinute: number) => {
  const windows = new Map<string, { start: number; count: number }>()
  return (address: string, now: number): boolean => {
    if (windows.size > 10_000) for (const [k, w] of windows) if (now - w.start >= 60_000) windows.delete(k)
    const w = windows.get(address)
    if (w === undefined || now - w.start >= 60_000) {
      windows.set(address, { start: now, count: 1 })
      return true
    }
    w.count++
    return w.count <= perMinute
  }
}

/**
 * Starts the join server in the current scope (closed, with its connections, when the scope closes).
 * Fails when this node has no cluster CA key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: JoinServerOptions,
): Effect.Effect<JoinServerInfo, JoinServerError | ClusterCaError | ClusterStateError, Scope.Scope> =>
  Effect.gen(function* () {
    const host = options.host ?? "127.0.0.1"
    const limit = options.maxRequestBytes ?? defaults.max_request_bytes
    const allow = rateLimiter(options.requestsPerMinute ?? defaults.requests_per_minute)
    const validDays = options.validDays ?? 825
    const p = ClusterCa.paths(options.dataDir)
    const ca = yield* ClusterCa.loadCa(options.dataDir)
    const where = `${host.includes(":") ? `[${host}]` : host}:${options.port}`
    const [cert, key] = yield* Effect.tryPromise({
      try: () => Promise.all([readIfExists(p.nodeCert), readIfExists(p.nodeKey)]),
      catch: (cause) =>
        new JoinServerError({ reason: `cannot read the node certificate: ${errorText(cause)}`, address: where, cause }),
    })
    if (cert === undefined || key === undefined) {
      return yield* new JoinServerError({
        reason: `no node certificate in ${p.tls}; run cluster init first`,
        address: where,
      })
    }
    const run = yield* FiberSet.makeRuntime<never>()

    const redeem = (request: JoinRequest, body: Buffer, proof: string) =>
      Effect.tryPromise({
        try: () =>
          store.update<Refused | { readonly certificate: string; readonly tokenId: string }>(
            p.tokensFile,
            async (tokens) => {
              const now = Date.now()
              const token = tokens.find((t) => t.id === request.token_id)
              const invalid = (detail: string) =>
                [tokens, new Refused({ status: 403, reason: "invalid token", detail })] as const
              if (token === undefined) return invalid(`unknown token id ${request.token_id}`)
              if (!JoinToken.verifyProof(Buffer.from(token.key, "hex"), body, proof)) {
                return invalid(`wrong proof for token ${token.id} (wrong secret or altered request)`)
              }
              const status = store.statusOf(token, now)
              if (status !== "active") {
                const reason = `token ${token.id} is ${status}`
                return [tokens, new Refused({ status: 403, reason, detail: reason })] as const
              }
              const spki = createPublicKey(request.public_key).export({ type: "spki", format: "der" })
              // Inside the token store's locked update (a Promise engine): signed before the use is written.
              const certificate = await Effect.runPromise(
                CertificateAuthority.signCertificate(ca, request.node_id, spki, {
                  dnsNames: [...new Set([request.node_id, ...request.dns_names])].filter((n) => isIP(n) === 0),
                  ipAddresses: request.ip_addresses,
                  validDays,
                }),
              )
              const used = { ...token, uses: token.uses + 1, joined: [...token.joined, request.node_id] }
              return [tokens.map((t) => (t === token ? used : t)), { certificate, tokenId: token.id }] as const
            },
          ),
        catch: (cause) =>
          new Refused({ status: 500, reason: "internal error", detail: `token store: ${errorText(cause)}` }),
      }).pipe(Effect.flatMap((r) => (r instanceof Refused ? Effect.fail(r) : Effect.succeed(r))))

    const handle = (req: IncomingMessage, res: ServerResponse, remote: string) =>
      Effect.gen(function* () {
        if (!allow(remote, Date.now())) {
          return yield* new Refused({ status: 429, reason: "too many join requests; retry in a minute" })
        }
        if (req.url !== JOIN_PATH) return yield* new Refused({ status: 404, reason: `no such path ${req.url}` })
        if (req.method !== "POST") return yield* new Refused({ status: 405, reason: `${req.method} not allowed` })
        const proofHeader = req.headers[PROOF_HEADER]
        const body = yield* readBody(req, limit)
        if (typeof proofHeader !== "string")
          return yield* new Refused({ status: 401, reason: `missing ${PROOF_HEADER}` })
        const decoded = decodeRequest(body.toString("utf8"))
        if (decoded._tag === "Left") {
          return yield* new Refused({ status: 400, reason: `malformed join request: ${decoded.left.message}` })
        }
        const request = decoded.right
        const keyCheck = yield* Effect.try({
          try: () => createPublicKey(request.public_key).asymmetricKeyDetails?.namedCurve,
          catch: () => new Refused({ status: 400, reason: "public_key is not a PEM public key" }),
        })
        if (keyCheck !== "prime256v1") {
          return yield* new Refused({ status: 400, reason: "public_key must be an ECDSA P-256 key" })
        }
        for (const ip of request.ip_addresses) {
          if (isIP(ip) === 0)
            return yield* new Refused({ status: 400, reason: `ip_addresses: ${ip} is not an IP address` })
        }
        const issued = yield* redeem(request, body, proofHeader)
        const response: JoinResponse = {
          node_id: request.node_id,
          ca: ca.certPem,
          certificate: issued.certificate,
          ...(options.peerAddress === undefined ? {} : { peer_address: options.peerAddress }),
        }
        yield* Effect.logInfo(`joined node ${request.node_id} from ${remote} with token ${issued.tokenId}`)
        yield* send(res, 200, response)
      }).pipe(
        Effect.catchTag("Refused", (r) =>
          Effect.zipRight(
            Effect.logWarning(`join refused from ${remote}: ${r.detail ?? r.reason}`),
            send(res, r.status, { error: r.reason }, r.status === 413 || r.status === 429),
          ),
        ),
        Effect.annotateLogs({ component: "cluster-join", remote }),
      )

    const server = https.createServer(
      {
        // The CA goes with the node certificate so the joiner can compare it with the token's pin.
        cert: `${cert.trimEnd()}\n${ca.certPem}`,
        key,
        requestCert: false,
        minVersion: "TLSv1.2",
        // Node checks request and header deadlines only this often (default 30 s).
        connectionsCheckingInterval: 1_000,
      },
      (req, res) => {
        run(handle(req, res, req.socket.remoteAddress ?? "unknown"))
      },
    )
    const timeout = options.requestTimeoutMillis ?? 15_000
    server.requestTimeout = timeout
    server.headersTimeout = Math.min(timeout, 10_000)
    server.keepAliveTimeout = 5_000
    server.setTimeout(timeout)

    const port = yield* Effect.acquireRelease(
      Effect.async<number, JoinServerError>((resume) => {
        const onError = (cause: Error) =>
          resume(
            Effect.fail(new JoinServerError({ reason: `cannot listen: ${errorText(cause)}`, address: where, cause })),
          )
        server.once("error", onError)
        server.listen(options.port, host, () => {
          server.off("error", onError)
          const a = server.address()
          resume(Effect.succeed(typeof a === "object" && a !== null ? a.port : options.port))
        })
      }),
      () =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
          server.closeAllConnections()
        }),
    )
    server.on("error", (e) => run(Effect.logError(`join server on ${where}: ${errorText(e)}`)))
    server.on("tlsClientError", (e, socket) =>
      run(Effect.logWarning(`join refused from ${socket.remoteAddress ?? "unknown"}: TLS: ${errorText(e)}`)),
    )
    yield* Effect.logInfo(`join server listening on ${host}:${port} (CA sha256:${ca.fingerprint})`)
    return { host, port, caFingerprint: ca.fingerprint }
  })

/**
 * The join server as a scoped layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: JoinServerOptions,
): Layer.Layer<JoinServer, JoinServerError | ClusterCaError | ClusterStateError> =>
  Layer.scoped(JoinServer, make(options))
