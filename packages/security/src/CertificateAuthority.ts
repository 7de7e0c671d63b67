/**
 * Node certificates for mutual TLS. With `cert_file`, `key_file` and `ca_file` all empty, a node CA
 * and a node certificate (ECDSA P-256) are issued into `<data_dir>/tls` on first start (private keys
 * mode 0600) and reused afterwards; a node certificate that expired or no longer matches its CA is
 * re-issued. A node that joined a cluster holds the cluster's `ca.crt` without `ca.key`: its node
 * certificate is used as it is, and when it is missing, expired or not issued by that CA the start
 * fails asking for a re-join (a new CA is never minted over a cluster's). In production the three
 * configured files are used as they are, after checking their validity period.
 *
 * @since 0.1.0
 */
import { createPrivateKey, X509Certificate } from "node:crypto"
import * as fs from "node:fs/promises"
import { isIP } from "node:net"
import * as path from "node:path"
import { DurableFile } from "@novacron/init"
import { Effect } from "effect"
import { type Role, roles } from "./Authorization.js"
import { errorText, readIfExists } from "./internal/files.js"
import * as x509 from "./internal/x509.js"
import { CertificateError, SecuritySettingsError } from "./SecurityError.js"
import type { NodeInfo, SecuritySettings } from "./SecuritySettings.js"

/**
 * A certificate and its private key, PEM encoded.
 *
 * @since 0.1.0
 */
export interface Issued {
  readonly certPem: string
  readonly keyPem: string
}

/**
 * Options of an issued leaf certificate.
 *
 * @since 0.1.0
 */
export interface CertificateOptions {
  /** Subject alternative DNS names. Default `["localhost"]`. */
  readonly dnsNames?: ReadonlyArray<string> | undefined
  /** Subject alternative IP addresses. Default `["127.0.0.1", "::1"]`. */
  readonly ipAddresses?: ReadonlyArray<string> | undefined
  /** Default 825 days (capped by the CA's own validity). */
  readonly validDays?: number | undefined
  /**
   * The role a client certificate carries, as its subject's organizational unit (`OU=operator`):
   * what the API grants a caller presenting it. Node certificates carry none (role `node`).
   */
  readonly role?: Role | undefined
}

/**
 * The TLS material of this node.
 *
 * @since 0.1.0
 */
export interface NodeTls {
  /** Node certificate, PEM. */
  readonly cert: string
  /** Node private key, PEM. */
  readonly key: string
  /** Trusted CA certificate(s), PEM. */
  readonly ca: string
  /** Parsed trusted CA certificates. */
  readonly caCertificates: ReadonlyArray<X509Certificate>
  readonly certificate: X509Certificate
  /** SHA-256 fingerprint of the node certificate: lowercase hex, no colons. */
  readonly fingerprint: string
  readonly commonName: string
  /** `configured`: the settings' files; `issued`: created now; `reused`: issued on an earlier start. */
  readonly source: "configured" | "issued" | "reused"
  /** Milliseconds spent issuing (0 unless something was issued). */
  readonly issueMillis: number
}

/**
 * Issues a self-signed CA certificate (ECDSA P-256, path length 0).
 *
 * @since 0.1.0
 */
export const issueCa = (commonName: string, validDays = 3650): Effect.Effect<Issued, CertificateError> =>
  Effect.tryPromise({
    try: () => x509.issueCa(commonName, validDays),
    catch: (cause) => new CertificateError({ reason: `cannot issue CA: ${errorText(cause)}`, cause }),
  })

/**
 * Issues a leaf certificate (server and client authentication) signed by `ca`.
 *
 * @since 0.1.0
 */
export const issueCertificate = (
  ca: Issued,
  commonName: string,
  options: CertificateOptions = {},
): Effect.Effect<Issued, CertificateError> =>
  Effect.tryPromise({
    try: () =>
      x509.issueCertificate(ca, commonName, {
        dnsNames: options.dnsNames ?? ["localhost"],
        ipAddresses: options.ipAddresses ?? ["127.0.0.1", "::1"],
        validDays: options.validDays ?? 825,
        organizationalUnit: options.role,
      }),
    catch: (cause) => new CertificateError({ reason: `cannot issue certificate: ${errorText(cause)}`, cause }),
  })

/**
 * Signs a leaf certificate (server and client authentication) for a public key someone else holds
 * (a node joining the cluster sends its SubjectPublicKeyInfo, DER; its private key never leaves it).
 *
 * @since 0.2.0
 */
export const signCertificate = (
  ca: Issued,
  commonName: string,
  subjectPublicKey: Buffer,
  options: CertificateOptions = {},
): Effect.Effect<string, CertificateError> =>
  Effect.tryPromise({
    try: () =>
      x509.signLeaf(ca, commonName, subjectPublicKey, {
        dnsNames: options.dnsNames ?? ["localhost"],
        ipAddresses: options.ipAddresses ?? ["127.0.0.1", "::1"],
        validDays: options.validDays ?? 825,
        organizationalUnit: options.role,
      }),
    catch: (cause) => new CertificateError({ reason: `cannot sign certificate: ${errorText(cause)}`, cause }),
  })

/**
 * Issues a client certificate for an API caller: common name `name` (the principal's name in the
 * audit log) and the role in the subject's organizational unit (`OU=<role>`), signed by `ca`.
 * Only the holder of the CA key (the node that minted the cluster CA) can issue one.
 *
 * @since 0.3.0
 */
export const issueClientCertificate = (
  ca: Issued,
  name: string,
  role: Role,
  options: Omit<CertificateOptions, "role"> = {},
): Effect.Effect<Issued, CertificateError> =>
  issueCertificate(ca, name, { dnsNames: [], ipAddresses: [], ...options, role })

/**
 * The role a certificate carries in its subject's organizational unit (`OU=<role>`), if it names one.
 *
 * @since 0.3.0
 */
export const roleOf = (cert: X509Certificate): Role | undefined => {
  for (const line of cert.subject.split("\n")) {
    const ou = line.startsWith("OU=") ? line.slice(3) : undefined
    if (ou !== undefined && (roles as ReadonlyArray<string>).includes(ou)) return ou as Role
  }
  return undefined
}

/**
 * SHA-256 fingerprint as lowercase hex without colons.
 *
 * @since 0.1.0
 */
export const fingerprint = (cert: X509Certificate): string => cert.fingerprint256.replaceAll(":", "").toLowerCase()

/**
 * Normalises a configured fingerprint (any case, with or without colons).
 *
 * @since 0.1.0
 */
export const normalizeFingerprint = (text: string): string => text.replaceAll(":", "").trim().toLowerCase()

/**
 * The subject common name, if any.
 *
 * @since 0.1.0
 */
export const commonName = (cert: X509Certificate): string | undefined => {
  for (const line of cert.subject.split("\n")) if (line.startsWith("CN=")) return line.slice(3)
  return undefined
}

/**
 * Splits a PEM bundle into certificates.
 *
 * @since 0.1.0
 */
export const parseBundle = (pem: string): ReadonlyArray<X509Certificate> =>
  (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((b) => new X509Certificate(b))

/**
 * Whether `cert` was signed by one of `cas` and is within its validity period.
 *
 * @since 0.1.0
 */
export const isIssuedBy = (cert: X509Certificate, cas: ReadonlyArray<X509Certificate>, now = Date.now()): boolean =>
  new Date(cert.validFrom).getTime() <= now &&
  now <= new Date(cert.validTo).getTime() &&
  cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))

/**
 * Where issued material lives.
 *
 * @since 0.1.0
 */
export const tlsDir = (node: NodeInfo): string => path.join(node.data_dir, "tls")

const read = (file: string) =>
  Effect.tryPromise({
    try: () => readIfExists(file),
    catch: (cause) => new CertificateError({ reason: `cannot read: ${errorText(cause)}`, path: file, cause }),
  }).pipe(Effect.map((b) => b?.toString("utf8")))

const write = (file: string, text: string, mode: number) =>
  DurableFile.write(file, text, { mode, directoryMode: 0o700 }).pipe(
    Effect.mapError((e) => new CertificateError({ reason: `cannot write: ${e.reason}`, path: file, cause: e.cause })),
  )

const material = (
  cert: string,
  key: string,
  ca: string,
  source: NodeTls["source"],
  issueMillis: number,
  where: string,
): Effect.Effect<NodeTls, CertificateError> =>
  Effect.try({
    try: () => {
      const certificate = new X509Certificate(cert)
      const caCertificates = parseBundle(ca)
      if (caCertificates.length === 0) throw new Error("no CA certificate found")
      if (!certificate.checkPrivateKey(createPrivateKey(key))) throw new Error("private key does not match certificate")
      return {
        cert,
        key,
        ca,
        caCertificates,
        certificate,
        fingerprint: fingerprint(certificate),
        commonName: commonName(certificate) ?? "",
        source,
        issueMillis,
      }
    },
    catch: (cause) => new CertificateError({ reason: `invalid TLS material: ${errorText(cause)}`, path: where, cause }),
  })

const caMatches = (certPem: string, keyPem: string): boolean => {
  try {
    const ca = parseBundle(certPem)[0]
    return ca?.ca === true && ca.checkPrivateKey(createPrivateKey(keyPem)) && isIssuedBy(ca, [ca])
  } catch {
    return false
  }
}

// ca.crt without ca.key: the node joined a cluster and only the cluster's seed may sign for it.
const joinedOnly = (where: string, problem: string) =>
  new CertificateError({
    reason:
      `this node joined a cluster (tls/ca.crt is the cluster CA and tls/ca.key is absent) but ${problem}: ` +
      "re-join the cluster with a new join token (novacron join) to get a new node certificate; " +
      "no new CA is minted over the cluster's",
    path: where,
  })

const leafNames = (node: NodeInfo): Required<Pick<CertificateOptions, "dnsNames" | "ipAddresses">> => {
  const dns = new Set(["localhost"])
  if (/^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/.test(node.node_id)) dns.add(node.node_id)
  const ips = new Set(["127.0.0.1", "::1"])
  if (isIP(node.listen_address) !== 0 && node.listen_address !== "0.0.0.0" && node.listen_address !== "::") {
    ips.add(node.listen_address)
  }
  return { dnsNames: [...dns], ipAddresses: [...ips] }
}

const DAY = 86_400_000

/**
 * Within this many days of its end, a certificate in use is warned about at load.
 *
 * @since 0.1.0
 */
export const expiryWarningDays = 30

/**
 * Fails when the node certificate is outside its validity period or no CA of the bundle is within
 * its own; warns, with the days left, for each that ends within {@link expiryWarningDays}.
 *
 * @since 0.1.0
 */
export const checkValidity = (tls: NodeTls, where: string, now = Date.now()): Effect.Effect<void, CertificateError> =>
  Effect.gen(function* () {
    const from = (c: X509Certificate) => new Date(c.validFrom).getTime()
    const to = (c: X509Certificate) => new Date(c.validTo).getTime()
    if (now > to(tls.certificate)) {
      return yield* new CertificateError({ reason: `certificate expired on ${tls.certificate.validTo}`, path: where })
    }
    if (now < from(tls.certificate)) {
      return yield* new CertificateError({
        reason: `certificate is not valid before ${tls.certificate.validFrom}`,
        path: where,
      })
    }
    if (!tls.caCertificates.some((ca) => from(ca) <= now && now <= to(ca))) {
      return yield* new CertificateError({
        reason: `every CA certificate has expired or is not yet valid (${tls.caCertificates.map((c) => c.validTo).join(", ")})`,
        path: where,
      })
    }
    for (const [what, c] of [
      ["certificate", tls.certificate] as const,
      ...tls.caCertificates.map((ca) => ["CA certificate", ca] as const),
    ]) {
      const left = Math.floor((to(c) - now) / DAY)
      if (to(c) >= now && left < expiryWarningDays) {
        yield* Effect.logWarning(
          `${what} ${commonName(c) ?? c.subject} in ${where} expires in ${left} days (${c.validTo})`,
        )
      }
    }
  })

/**
 * Loads the configured certificate, key and CA, or issues/reuses the node's own under `<data_dir>/tls`.
 *
 * @since 0.1.0
 */
export const ensureNodeTls = (
  settings: SecuritySettings,
  node: NodeInfo,
): Effect.Effect<NodeTls, CertificateError | SecuritySettingsError> =>
  Effect.gen(function* () {
    const configured = [settings.cert_file, settings.key_file, settings.ca_file]
    if (configured.some((f) => f !== "")) {
      if (configured.some((f) => f === "")) {
        return yield* new SecuritySettingsError({
          reason: "security.cert_file, key_file and ca_file must be set together (or all left empty)",
        })
      }
      const [cert, key, ca] = yield* Effect.all(configured.map(read))
      for (const [i, text] of [cert, key, ca].entries()) {
        if (text === undefined) return yield* new CertificateError({ reason: "file not found", path: configured[i] })
      }
      const tls = yield* material(cert!, key!, ca!, "configured", 0, settings.cert_file)
      yield* checkValidity(tls, settings.cert_file)
      return tls
    }

    const dir = tlsDir(node)
    const files = {
      caCert: path.join(dir, "ca.crt"),
      caKey: path.join(dir, "ca.key"),
      cert: path.join(dir, "node.crt"),
      key: path.join(dir, "node.key"),
    }
    const [caCert, caKey, cert, key] = yield* Effect.all([
      read(files.caCert),
      read(files.caKey),
      read(files.cert),
      read(files.key),
    ])
    if (caCert !== undefined && cert !== undefined && key !== undefined) {
      const reused = yield* Effect.either(material(cert, key, caCert, "reused", 0, files.cert))
      if (reused._tag === "Right" && isIssuedBy(reused.right.certificate, reused.right.caCertificates)) {
        yield* checkValidity(reused.right, files.cert)
        return reused.right
      }
      if (caKey === undefined) {
        const why = reused._tag === "Left" ? reused.left.reason : "expired, not yet valid, or not issued by ca.crt"
        return yield* joinedOnly(files.cert, `the node certificate is unusable (${why})`)
      }
      yield* Effect.logWarning(`node certificate in ${dir} is invalid or expired; issuing a new one`)
    } else if (caCert !== undefined && caKey === undefined) {
      return yield* joinedOnly(dir, "node.crt or node.key is missing")
    }
    const started = performance.now()
    yield* Effect.tryPromise({
      try: () => fs.mkdir(dir, { recursive: true, mode: 0o700 }),
      catch: (cause) =>
        new CertificateError({ reason: `cannot create the TLS directory: ${errorText(cause)}`, path: dir, cause }),
    })
    let ca: Issued
    if (caCert !== undefined && caKey !== undefined && caMatches(caCert, caKey)) {
      ca = { certPem: caCert, keyPem: caKey }
    } else {
      ca = yield* issueCa(`NovaCron Node CA ${node.node_id}`)
      yield* write(files.caKey, ca.keyPem, 0o600)
      yield* write(files.caCert, ca.certPem, 0o644)
    }
    const leaf = yield* issueCertificate(ca, node.node_id, leafNames(node))
    yield* write(files.key, leaf.keyPem, 0o600)
    yield* write(files.cert, leaf.certPem, 0o644)
    const millis = performance.now() - started
    yield* Effect.logInfo(`issued node certificate for ${node.node_id} in ${dir} (${millis.toFixed(1)} ms)`)
    return yield* material(leaf.certPem, leaf.keyPem, ca.certPem, "issued", millis, files.cert)
  })
