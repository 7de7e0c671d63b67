/**
 * Joining a node to a cluster with a token from the seed: connect to the token's address over
 * TLS, refuse unless the server presents the CA the token pins, send a request proven with the
 * token's secret (which never travels), and write `<data_dir>/tls/{ca.crt,node.crt,node.key}`.
 * The node's key pair is generated here; no `ca.key` is written: only the seed signs.
 *
 * @since 0.1.0
 */
import { createHash, generateKeyPairSync, X509Certificate } from "node:crypto"
import * as fs from "node:fs/promises"
import * as http from "node:http"
import { isIP } from "node:net"
import * as path from "node:path"
import * as tls from "node:tls"
import { DurableFile } from "@novacron/init"
import { Effect, Schema } from "effect"
import * as ClusterCa from "./ClusterCa.js"
import {
  ClusterStateError,
  DataDirInUse,
  FingerprintMismatch,
  JoinRefused,
  JoinTransportError,
  type TokenFormatError,
} from "./ClusterError.js"
import { errorText, exists, readIfExists } from "./internal/files.js"
import { JOIN_PATH, JoinResponse, PROOF_HEADER, Refusal } from "./internal/protocol.js"
import * as JoinToken from "./JoinToken.js"

/**
 * Options of `join`.
 *
 * @since 0.1.0
 * @category models
 */
export interface JoinOptions {
  /** The token printed by `cluster init` / `cluster token create` on the seed. */
  readonly token: string
  /** This node's `system.data_dir`. */
  readonly dataDir: string
  /** This node's `system.node_id`: the certificate's common name. */
  readonly nodeId: string
  /** Extra DNS names for the certificate. Default `["localhost"]` (the node id is always included). */
  readonly dnsNames?: ReadonlyArray<string> | undefined
  /** IP addresses for the certificate. Default `["127.0.0.1", "::1"]`. */
  readonly ipAddresses?: ReadonlyArray<string> | undefined
  /** Bound on the whole exchange. Default 15 s. */
  readonly timeoutMillis?: number | undefined
  /** Move TLS material of another CA in the data directory aside (to `tls.before-join-<time>`) instead of refusing. */
  readonly force?: boolean | undefined
}

/**
 * The outcome of a join.
 *
 * @since 0.1.0
 * @category models
 */
export interface Joined {
  readonly nodeId: string
  readonly caFingerprint: string
  /** The seed's `network.peers` entry, when the seed knows it. */
  readonly peerAddress?: string | undefined
  readonly certificate: X509Certificate
  /** Where earlier TLS material was moved, with `force`. */
  readonly movedAside?: string | undefined
}

const hostPort = (text: string) => {
  const i = text.lastIndexOf(":")
  const host = text.slice(0, i)
  return { host: host.startsWith("[") ? host.slice(1, -1) : host, port: Number(text.slice(i + 1)) }
}

const sha256 = (der: Buffer) => createHash("sha256").update(der).digest("hex")

interface PeerCert {
  readonly raw: Buffer
  readonly issuerCertificate?: PeerCert | undefined
}

// The chain the server sent, leaf first (a self-signed root points at itself: stop there).
const chainOf = (socket: tls.TLSSocket): ReadonlyArray<Buffer> => {
  const out: Array<Buffer> = []
  let c = socket.getPeerCertificate(true) as unknown as PeerCert | undefined
  while (c?.raw !== undefined && out.length < 8 && !out.some((d) => d.equals(c!.raw))) {
    out.push(c.raw)
    c = c.issuerCertificate
  }
  return out
}

const MAX_RESPONSE = 1_048_576

/**
 * Connects, checks the pin, posts `body`: the answer's status and text. The request is written only
 * after the server's CA matched the token.
 */
const exchange = (
  token: JoinToken.JoinToken,
  body: string,
  timeoutMillis: number,
): Effect.Effect<{ readonly status: number; readonly text: string }, FingerprintMismatch | JoinTransportError> =>
  Effect.async((resume) => {
    const { host, port } = hostPort(token.address)
    const fail = (reason: string, cause?: unknown) =>
      resume(Effect.fail(new JoinTransportError({ address: token.address, reason, cause })))
    const socket = tls.connect({
      host,
      port,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      // Trust comes from the pinned fingerprint, checked below, not from a CA store: the joiner has none yet.
      rejectUnauthorized: false,
    })
    const timer = setTimeout(() => {
      socket.destroy()
      fail(`no answer within ${timeoutMillis} ms`)
    }, timeoutMillis)
    let done = false
    const finish = (f: () => void) => {
      if (done) return
      done = true
      clearTimeout(timer)
      f()
    }
    socket.once("error", (e) => finish(() => fail(`cannot connect: ${errorText(e)}`, e)))
    socket.once("secureConnect", () => {
      const chain = chainOf(socket)
      const leaf = chain[0]
      const ca = chain.find((der) => sha256(der) === token.caFingerprint)
      const signed = (() => {
        try {
          return (
            leaf !== undefined &&
            ca !== undefined &&
            new X509Certificate(leaf).verify(new X509Certificate(ca).publicKey)
          )
        } catch {
          return false
        }
      })()
      if (!signed) {
        socket.destroy()
        const presented = chain.length > 0 ? sha256(chain[chain.length - 1]!) : "(no certificate)"
        return finish(() =>
          resume(
            Effect.fail(
              new FingerprintMismatch({ address: token.address, expected: token.caFingerprint, actual: presented }),
            ),
          ),
        )
      }
      const req = http.request({
        createConnection: () => socket,
        method: "POST",
        path: JOIN_PATH,
        headers: {
          host: token.address,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          [PROOF_HEADER]: JoinToken.proof(JoinToken.deriveKey(token.id, token.secret), body),
          connection: "close",
        },
      })
      req.on("error", (e) => finish(() => fail(`request failed: ${errorText(e)}`, e)))
      req.on("response", (res) => {
        const chunks: Array<Buffer> = []
        let size = 0
        res.on("data", (c: Buffer) => {
          size += c.length
          if (size > MAX_RESPONSE) {
            socket.destroy()
            finish(() => fail(`response over ${MAX_RESPONSE} bytes`))
          } else chunks.push(c)
        })
        res.on("error", (e) => finish(() => fail(`response failed: ${errorText(e)}`, e)))
        res.on("end", () =>
          finish(() => {
            socket.end()
            resume(Effect.succeed({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }))
          }),
        )
      })
      req.end(body)
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

const writeFile = (file: string, text: string, mode: number) =>
  DurableFile.write(file, text, { mode, directoryMode: 0o700 }).pipe(
    Effect.mapError((e) => new ClusterStateError({ reason: `cannot write: ${e.reason}`, path: file, cause: e.cause })),
  )

// A data directory with TLS material of another CA (e.g. from a standalone start) is not silently replaced.
const prepareDataDir = (dataDir: string, pinned: string, force: boolean) =>
  Effect.gen(function* () {
    const p = ClusterCa.paths(dataDir)
    const caPem = yield* Effect.promise(() => readIfExists(p.caCert).catch(() => undefined))
    const hasKey = yield* Effect.promise(() => exists(p.caKey))
    let current: string | undefined
    try {
      current = caPem === undefined ? undefined : ClusterCa.fingerprintOf(caPem)
    } catch {
      current = "unreadable"
    }
    if (current === pinned && hasKey) {
      return yield* new DataDirInUse({
        path: p.tls,
        reason: "this data directory is the cluster's seed (it holds ca.key)",
      })
    }
    if ((current === undefined || current === pinned) && !hasKey) return undefined
    if (!force) {
      return yield* new DataDirInUse({
        path: p.tls,
        reason: `this data directory already has TLS material of another CA (sha256:${current ?? "?"}${hasKey ? ", with its key" : ""}); use a fresh data directory, or force to move it aside`,
      })
    }
    const aside = path.join(dataDir, `tls.before-join-${new Date().toISOString().replace(/[:.]/g, "-")}`)
    yield* Effect.tryPromise({
      try: () => fs.rename(p.tls, aside),
      catch: (cause) => new ClusterStateError({ reason: `cannot move aside: ${errorText(cause)}`, path: p.tls, cause }),
    })
    return aside
  })

const decodeResponse = Schema.decodeUnknownEither(Schema.parseJson(JoinResponse))
const decodeRefusal = Schema.decodeUnknownEither(Schema.parseJson(Refusal))

/**
 * Joins this node to the cluster the token names.
 *
 * @since 0.1.0
 * @category joining
 */
export const join = (
  options: JoinOptions,
): Effect.Effect<
  Joined,
  TokenFormatError | FingerprintMismatch | JoinRefused | JoinTransportError | ClusterStateError | DataDirInUse
> =>
  Effect.gen(function* () {
    const token = yield* JoinToken.decode(options.token)
    const movedAside = yield* prepareDataDir(options.dataDir, token.caFingerprint, options.force === true)
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
    const body = JSON.stringify({
      token_id: token.id,
      node_id: options.nodeId,
      public_key: publicKey.export({ type: "spki", format: "pem" }).toString(),
      dns_names: options.dnsNames ?? ["localhost"],
      ip_addresses: options.ipAddresses ?? ["127.0.0.1", "::1"],
    })
    const answer = yield* exchange(token, body, options.timeoutMillis ?? 15_000)
    const bad = (reason: string) => new JoinTransportError({ address: token.address, reason })
    if (answer.status !== 200) {
      const refusal = decodeRefusal(answer.text)
      return yield* new JoinRefused({
        address: token.address,
        status: answer.status,
        reason: refusal._tag === "Right" ? refusal.right.error : answer.text.slice(0, 200),
      })
    }
    const decoded = decodeResponse(answer.text)
    if (decoded._tag === "Left") return yield* bad(`not a join response: ${decoded.left.message}`)
    const response = decoded.right
    // The TLS chain matched the pin; the CA handed over must be that same certificate.
    const caFingerprint = yield* Effect.try({
      try: () => ClusterCa.fingerprintOf(response.ca),
      catch: () => bad("the CA in the response is not a certificate"),
    })
    if (caFingerprint !== token.caFingerprint) {
      return yield* new FingerprintMismatch({
        address: token.address,
        expected: token.caFingerprint,
        actual: caFingerprint,
      })
    }
    const certificate = yield* Effect.try({
      try: () => new X509Certificate(response.certificate),
      catch: () => bad("the node certificate in the response is not a certificate"),
    })
    const ca = new X509Certificate(response.ca)
    if (!certificate.checkIssued(ca) || !certificate.verify(ca.publicKey)) {
      return yield* bad("the node certificate is not signed by the cluster CA")
    }
    if (!certificate.checkPrivateKey(privateKey)) return yield* bad("the node certificate is for another key")
    if (!certificate.subject.split("\n").includes(`CN=${options.nodeId}`)) {
      return yield* bad(`the node certificate is not for ${options.nodeId} (${certificate.subject})`)
    }
    const p = ClusterCa.paths(options.dataDir)
    yield* writeFile(p.nodeKey, privateKey.export({ type: "pkcs8", format: "pem" }).toString(), 0o600)
    yield* writeFile(p.nodeCert, response.certificate, 0o644)
    yield* writeFile(p.caCert, response.ca, 0o644)
    return { nodeId: options.nodeId, caFingerprint, peerAddress: response.peer_address, certificate, movedAside }
  })
