/**
 * The cluster CA on the seed node and the join tokens it hands out. `init` makes sure
 * `<data_dir>/tls` holds a CA with its key (reusing the node CA `@novacron/security` issued on an
 * earlier start) and records the join address; tokens live in `<data_dir>/cluster/tokens.json`
 * (0600, written atomically under a lock file) as derived keys with an expiry and a usage count.
 *
 * @since 0.1.0
 */
import { X509Certificate } from "node:crypto"
import * as path from "node:path"
import { DurableFile } from "@novacron/init"
import { CertificateAuthority, SecuritySettings } from "@novacron/security"
import { Duration, Effect, Schema } from "effect"
import { ClusterCaError, ClusterStateError, TokenNotFound } from "./ClusterError.js"
import { errorText, readIfExists } from "./internal/files.js"
import * as store from "./internal/tokens.js"
import * as JoinToken from "./JoinToken.js"

/**
 * Where a node keeps its cluster material.
 *
 * @since 0.1.0
 * @category paths
 */
export const paths = (dataDir: string) => {
  const tls = path.join(dataDir, "tls")
  const cluster = path.join(dataDir, "cluster")
  return {
    tls,
    caCert: path.join(tls, "ca.crt"),
    caKey: path.join(tls, "ca.key"),
    nodeCert: path.join(tls, "node.crt"),
    nodeKey: path.join(tls, "node.key"),
    cluster,
    clusterFile: path.join(cluster, "cluster.json"),
    tokensFile: path.join(cluster, "tokens.json"),
  }
}

/**
 * SHA-256 of a certificate (DER), lowercase hex without colons.
 *
 * @since 0.1.0
 * @category fingerprints
 */
export const fingerprintOf = (certPem: string): string => CertificateAuthority.fingerprint(new X509Certificate(certPem))

/**
 * What `init` records on the seed.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ClusterInfo = Schema.Struct({
  ca_fingerprint: Schema.String,
  /** Written into join tokens. */
  join_address: Schema.String,
  created_at: Schema.Date,
})

/**
 * @since 0.1.0
 * @category models
 */
export type ClusterInfo = typeof ClusterInfo.Type

const ClusterInfoJson = Schema.parseJson(ClusterInfo)

const readText = (file: string) =>
  Effect.tryPromise({
    try: () => readIfExists(file),
    catch: (cause) => new ClusterStateError({ reason: `cannot read: ${errorText(cause)}`, path: file, cause }),
  })

const writeText = (file: string, text: string, mode: number) =>
  DurableFile.write(file, text, { mode, directoryMode: 0o700 }).pipe(
    Effect.mapError((e) => new ClusterStateError({ reason: `cannot write: ${e.reason}`, path: file, cause: e.cause })),
  )

/**
 * The CA certificate and key of this node, with the certificate's fingerprint. Fails when the key is
 * missing: only the seed (where `init` ran) signs.
 *
 * @since 0.1.0
 * @category CA
 */
export const loadCa = (
  dataDir: string,
): Effect.Effect<
  { readonly certPem: string; readonly keyPem: string; readonly fingerprint: string },
  ClusterCaError | ClusterStateError
> =>
  Effect.gen(function* () {
    const p = paths(dataDir)
    const certPem = yield* readText(p.caCert)
    const keyPem = yield* readText(p.caKey)
    if (certPem === undefined) {
      return yield* new ClusterCaError({
        reason: "no cluster CA certificate; run `novacron-node cluster init` first",
        path: p.caCert,
      })
    }
    if (keyPem === undefined) {
      return yield* new ClusterCaError({
        reason:
          "this node has the cluster CA certificate but not its key (it joined a cluster); create tokens on the seed",
        path: p.caKey,
      })
    }
    const fingerprint = yield* Effect.try({
      try: () => {
        const ca = CertificateAuthority.parseBundle(certPem)[0]
        if (ca === undefined || !ca.ca) throw new Error("not a CA certificate")
        return CertificateAuthority.fingerprint(ca)
      },
      catch: (cause) =>
        new ClusterCaError({ reason: `invalid CA certificate: ${errorText(cause)}`, path: p.caCert, cause }),
    })
    return { certPem, keyPem, fingerprint }
  })

/**
 * What `init` recorded, if it ran here.
 *
 * @since 0.1.0
 * @category CA
 */
export const info = (dataDir: string): Effect.Effect<ClusterInfo | undefined, ClusterStateError> =>
  Effect.gen(function* () {
    const file = paths(dataDir).clusterFile
    const text = yield* readText(file)
    if (text === undefined) return undefined
    return yield* Schema.decodeUnknown(ClusterInfoJson)(text).pipe(
      Effect.mapError(
        (e) => new ClusterStateError({ reason: `invalid cluster file: ${e.message}`, path: file, cause: e }),
      ),
    )
  })

/**
 * Options of `init`.
 *
 * @since 0.1.0
 * @category CA
 */
export interface InitOptions {
  readonly dataDir: string
  readonly nodeId: string
  /** `network.listen_address`: the node certificate's IP name. Default `127.0.0.1`. */
  readonly listenAddress?: string | undefined
  /** `host:port` written into tokens, as the other nodes reach this one. */
  readonly joinAddress: string
}

/**
 * Makes this node the cluster's seed: CA and node certificate in `<data_dir>/tls` (the existing ones
 * when present), `<data_dir>/cluster/cluster.json` with the join address. Running it again keeps the
 * CA and updates the address.
 *
 * @since 0.1.0
 * @category CA
 */
export const init = (options: InitOptions): Effect.Effect<ClusterInfo, ClusterCaError | ClusterStateError> =>
  Effect.gen(function* () {
    const p = paths(options.dataDir)
    yield* CertificateAuthority.ensureNodeTls(SecuritySettings.defaults, {
      data_dir: options.dataDir,
      node_id: options.nodeId,
      listen_address: options.listenAddress ?? "127.0.0.1",
    }).pipe(
      Effect.mapError(
        (e) => new ClusterCaError({ reason: `cannot make the node CA: ${e.message}`, path: p.tls, cause: e }),
      ),
    )
    const ca = yield* loadCa(options.dataDir)
    const before = yield* info(options.dataDir)
    const next: ClusterInfo = {
      ca_fingerprint: ca.fingerprint,
      join_address: options.joinAddress,
      created_at: before?.created_at ?? new Date(),
    }
    yield* writeText(p.clusterFile, `${Schema.encodeSync(ClusterInfoJson)(next)}\n`, 0o644)
    return next
  })

/**
 * A stored token, as `token list` shows it (no secret, no key).
 *
 * @since 0.1.0
 * @category tokens
 */
export interface TokenSummary {
  readonly id: string
  readonly createdAt: Date
  readonly expiresAt: Date
  readonly uses: number
  readonly maxUses: number
  readonly status: store.Status
  readonly joined: ReadonlyArray<string>
}

const summary = (t: store.TokenRecord, now: number): TokenSummary => ({
  id: t.id,
  createdAt: t.created_at,
  expiresAt: t.expires_at,
  uses: t.uses,
  maxUses: t.max_uses,
  status: store.statusOf(t, now),
  joined: t.joined,
})

const storeError = (file: string) => (cause: unknown) =>
  new ClusterStateError({ reason: `token store: ${errorText(cause)}`, path: file, cause })

/**
 * Creates a join token on the seed. The returned token is the only copy of its secret.
 *
 * @since 0.1.0
 * @category tokens
 */
export const createToken = (
  dataDir: string,
  options: { readonly ttl: Duration.DurationInput; readonly uses: number },
): Effect.Effect<
  { readonly token: JoinToken.JoinToken; readonly summary: TokenSummary },
  ClusterCaError | ClusterStateError
> =>
  Effect.gen(function* () {
    const ca = yield* loadCa(dataDir)
    const cluster = yield* info(dataDir)
    if (cluster === undefined) {
      return yield* new ClusterCaError({
        reason: "this node is not a cluster seed; run `novacron-node cluster init` first",
        path: paths(dataDir).clusterFile,
      })
    }
    const file = paths(dataDir).tokensFile
    const now = Date.now()
    const { id, secret } = JoinToken.generate()
    const record: store.TokenRecord = {
      id,
      key: JoinToken.deriveKey(id, secret).toString("hex"),
      created_at: new Date(now),
      expires_at: new Date(now + Duration.toMillis(Duration.decode(options.ttl))),
      uses: 0,
      max_uses: options.uses,
      joined: [],
    }
    // Expired and used-up tokens older than a week are dropped so the file does not grow forever.
    const week = 7 * 86_400_000
    yield* Effect.tryPromise({
      try: () =>
        store.update(file, async (tokens) => [
          [...tokens.filter((t) => store.statusOf(t, now) === "active" || now - t.expires_at.getTime() < week), record],
          undefined,
        ]),
      catch: storeError(file),
    })
    return {
      token: { id, secret, caFingerprint: ca.fingerprint, address: cluster.join_address },
      summary: summary(record, now),
    }
  })

/**
 * The stored tokens, oldest first.
 *
 * @since 0.1.0
 * @category tokens
 */
export const listTokens = (dataDir: string): Effect.Effect<ReadonlyArray<TokenSummary>, ClusterStateError> => {
  const file = paths(dataDir).tokensFile
  return Effect.tryPromise({ try: () => store.read(file), catch: storeError(file) }).pipe(
    Effect.map((tokens) => tokens.map((t) => summary(t, Date.now()))),
  )
}

/**
 * Revokes a token: later joins with it are refused.
 *
 * @since 0.1.0
 * @category tokens
 */
export const revokeToken = (
  dataDir: string,
  id: string,
): Effect.Effect<TokenSummary, ClusterStateError | TokenNotFound> => {
  const file = paths(dataDir).tokensFile
  return Effect.tryPromise({
    try: () =>
      store.update(file, async (tokens) => {
        const found = tokens.find((t) => t.id === id)
        if (found === undefined) return [tokens, undefined] as const
        const revoked = { ...found, revoked_at: found.revoked_at ?? new Date() }
        return [tokens.map((t) => (t === found ? revoked : t)), revoked] as const
      }),
    catch: storeError(file),
  }).pipe(
    Effect.flatMap((t) =>
      t === undefined ? Effect.fail(new TokenNotFound({ id, path: file })) : Effect.succeed(summary(t, Date.now())),
    ),
  )
}
