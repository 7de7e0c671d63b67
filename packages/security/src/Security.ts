/**
 * Authentication and authorization for the node: the service the network layer and the API take
 * as a dependency. It holds the node's TLS material, checks peer certificates against the CA and
 * `trusted_nodes`, checks API tokens against their stored hashes, and authorizes by role.
 *
 * @since 0.1.0
 */
import { createHash, randomBytes, timingSafeEqual, type X509Certificate } from "node:crypto"
import { isIPv4, isIPv6 } from "node:net"
import { Context, Effect, Layer, Option } from "effect"
import { authorize, type Permission, type Principal } from "./Authorization.js"
import * as CertificateAuthority from "./CertificateAuthority.js"
import * as Encryption from "./Encryption.js"
import * as SecretsManager from "./SecretsManager.js"
import { type Forbidden, SecuritySettingsError, type SecurityStartError, Unauthenticated } from "./SecurityError.js"
import type { AuthMethod, NodeInfo, SecuritySettings } from "./SecuritySettings.js"

/**
 * The security service.
 *
 * @since 0.1.0
 */
export interface Security {
  readonly authMethod: AuthMethod
  readonly nodeId: string
  /** The node's certificate, key and trusted CAs (always loaded: TLS may be on with any auth method). */
  readonly tls: CertificateAuthority.NodeTls
  /**
   * Authenticates a peer by its certificate: it must be issued by a trusted CA, be within its
   * validity, and, when `trusted_nodes` is not empty, match one entry by fingerprint or common name.
   * The principal's role is the subject's `OU=` when it names a role (client certificates from
   * `CertificateAuthority.issueClientCertificate`), `node` otherwise.
   */
  readonly authenticateCertificate: (cert: X509Certificate) => Effect.Effect<Principal, Unauthenticated>
  /** Authenticates a bearer token against the configured SHA-256 hashes, in constant time. */
  readonly authenticateToken: (token: string) => Effect.Effect<Principal, Unauthenticated>
  /** The principal of unauthenticated callers: `Some` (admin) only with `auth_method: none`. */
  readonly anonymous: Option.Option<Principal>
  readonly authorize: (principal: Principal, permission: Permission) => Effect.Effect<void, Forbidden>
}

/**
 * The service tag.
 *
 * @since 0.1.0
 */
export const Security = Context.GenericTag<Security>("@novacron/security/Security")

/**
 * SHA-256 of a token, lowercase hex: what `security.tokens[].sha256` holds.
 *
 * @since 0.1.0
 */
export const hashToken = (token: string): string => createHash("sha256").update(token, "utf8").digest("hex")

/**
 * A new random token (256 bits, base64url) for an operator to hand out; store only its hash.
 *
 * @since 0.1.0
 */
export const generateToken = (): string => randomBytes(32).toString("base64url")

/**
 * The entropy floor of an operator-chosen token, in bits.
 *
 * @since 0.1.0
 */
export const minTokenBits = 128

/**
 * An estimate of a token's entropy: its length times log2 of the alphabet its characters span
 * (hex digits 16; else lowercase 26, uppercase 26, digits 10, `-`/`_` 2, anything else 32). It is an
 * upper bound for random tokens and generous to words, so it refuses short or narrow tokens only.
 *
 * @since 0.1.0
 */
export const tokenEntropyBits = (token: string): number => {
  if (token === "") return 0
  const size = /^[0-9a-fA-F]+$/.test(token)
    ? 16
    : (/[a-z]/.test(token) ? 26 : 0) +
      (/[A-Z]/.test(token) ? 26 : 0) +
      (/[0-9]/.test(token) ? 10 : 0) +
      (/[-_]/.test(token) ? 2 : 0) +
      (/[^a-zA-Z0-9_-]/.test(token) ? 32 : 0)
  return [...token].length * Math.log2(size)
}

/**
 * The `sha256` to configure for an operator-chosen token, refusing one below {@link minTokenBits}
 * bits (by {@link tokenEntropyBits}) or with fewer than 8 distinct characters. Tools that take a
 * token from the operator use this rather than {@link hashToken}; {@link generateToken} always passes.
 *
 * @since 0.1.0
 */
export const hashChosenToken = (token: string): Effect.Effect<string, SecuritySettingsError> => {
  const bits = tokenEntropyBits(token)
  const distinct = new Set(token).size
  return bits < minTokenBits || distinct < 8
    ? Effect.fail(
        new SecuritySettingsError({
          reason:
            `token too weak: about ${Math.floor(bits)} bits from ${token.length} characters (${distinct} distinct); ` +
            `at least ${minTokenBits} bits are required (e.g. 32 random hex digits, or Security.generateToken())`,
        }),
      )
    : Effect.succeed(hashToken(token))
}

/**
 * A parsed `trusted_nodes` entry.
 *
 * @since 0.1.0
 */
export type TrustedNode =
  | { readonly _tag: "Fingerprint"; readonly sha256: string }
  | { readonly _tag: "CommonName"; readonly name: string }

/**
 * Reads a `trusted_nodes` entry: `sha256:<hex>` (any case, colons optional) or `cn:<name>`; the bare
 * forms are aliases: 64 hex digits (colons optional) is a fingerprint, anything else a common name.
 * A common name that looks like a fingerprint must be written `cn:<name>`.
 *
 * @since 0.1.0
 */
export const parseTrustedNode = (entry: string): TrustedNode => {
  if (entry.startsWith("sha256:")) {
    return { _tag: "Fingerprint", sha256: CertificateAuthority.normalizeFingerprint(entry.slice(7)) }
  }
  if (entry.startsWith("cn:")) return { _tag: "CommonName", name: entry.slice(3) }
  const print = CertificateAuthority.normalizeFingerprint(entry)
  return /^[0-9a-f]{64}$/.test(print) ? { _tag: "Fingerprint", sha256: print } : { _tag: "CommonName", name: entry }
}

/**
 * Whether an address is loopback only.
 *
 * @since 0.1.0
 */
export const isLoopback = (address: string): boolean =>
  address === "localhost" ||
  (isIPv4(address) && address.startsWith("127.")) ||
  (isIPv6(address) && (address === "::1" || /^::ffff:127\./i.test(address)))

/**
 * Builds the service from its parts (the layer does this with the node's own TLS material).
 *
 * @since 0.1.0
 */
export const make = (
  settings: SecuritySettings,
  node: NodeInfo,
  tls: CertificateAuthority.NodeTls,
): Effect.Effect<Security> =>
  Effect.gen(function* () {
    const tokenHashes = settings.tokens.map((t) => ({ ...t, digest: Buffer.from(t.sha256.toLowerCase(), "hex") }))
    const trusted = settings.trusted_nodes.map(parseTrustedNode)
    const trustedFingerprints = new Set(trusted.flatMap((t) => (t._tag === "Fingerprint" ? [t.sha256] : [])))
    const trustedNames = new Set(trusted.flatMap((t) => (t._tag === "CommonName" ? [t.name] : [])))

    if (settings.auth_method === "none") {
      if (isLoopback(node.listen_address)) {
        yield* Effect.logWarning("security.auth_method is none: every local caller is admin")
      } else {
        yield* Effect.logError(
          `SECURITY WARNING: security.auth_method is none and the node listens on ${node.listen_address}: ` +
            "ANY host that can reach it has full admin rights. Use mtls or token outside a lab.",
        )
      }
    }
    if (settings.auth_method === "token" && settings.tokens.length === 0) {
      yield* Effect.logWarning("security.auth_method is token but no tokens are configured: every caller is refused")
    }

    const authenticateCertificate = (cert: X509Certificate) =>
      Effect.suspend(() => {
        if (!CertificateAuthority.isIssuedBy(cert, tls.caCertificates)) {
          return Effect.fail(new Unauthenticated({ reason: "certificate not issued by a trusted CA or not valid now" }))
        }
        const name = CertificateAuthority.commonName(cert) ?? ""
        if (
          settings.trusted_nodes.length > 0 &&
          !trustedFingerprints.has(CertificateAuthority.fingerprint(cert)) &&
          !(name !== "" && trustedNames.has(name))
        ) {
          return Effect.fail(new Unauthenticated({ reason: `certificate of "${name}" is not in trusted_nodes` }))
        }
        // A client certificate carries its role in OU=; a node certificate has none.
        return Effect.succeed<Principal>({
          name,
          role: CertificateAuthority.roleOf(cert) ?? "node",
          method: "mtls",
        })
      })

    const authenticateToken = (token: string) =>
      Effect.sync(() => {
        const digest = createHash("sha256").update(token, "utf8").digest()
        // Compare against every entry so timing does not reveal which (if any) matched.
        let found: (typeof tokenHashes)[number] | undefined
        for (const entry of tokenHashes) {
          if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry
        }
        return found
      }).pipe(
        Effect.flatMap((entry) =>
          entry === undefined
            ? Effect.fail(new Unauthenticated({ reason: "unknown token" }))
            : Effect.succeed<Principal>({ name: entry.name, role: entry.role, method: "token" }),
        ),
      )

    return {
      authMethod: settings.auth_method,
      nodeId: node.node_id,
      tls,
      authenticateCertificate,
      authenticateToken,
      anonymous:
        settings.auth_method === "none"
          ? Option.some<Principal>({ name: "anonymous", role: "admin", method: "none" })
          : Option.none(),
      authorize,
    } satisfies Security
  })

/**
 * Everything the component provides.
 *
 * @since 0.1.0
 */
export type Services = Security | SecretsManager.SecretsManager | Encryption.Encryption

/**
 * The whole component: secrets (master key created on first start), encryption, TLS material
 * (issued on first start when no paths are configured) and the authentication service.
 *
 * @since 0.1.0
 */
export const layer = (settings: SecuritySettings, node: NodeInfo): Layer.Layer<Services, SecurityStartError> => {
  const secrets = SecretsManager.layer(settings, node)
  const security = Layer.effect(
    Security,
    Effect.flatMap(CertificateAuthority.ensureNodeTls(settings, node), (tls) => make(settings, node, tls)),
  )
  // Secrets first, then TLS: built side by side, a wrong master key interrupted the certificate
  // writes mid-way, and their promises went on writing under a data directory the failed boot
  // had already given up (a test's cleanup met files appearing under it). Secrets take milliseconds.
  return Layer.provideMerge(security, Layer.provideMerge(Encryption.layer, secrets))
}
