import { createPrivateKey, randomBytes, webcrypto } from "node:crypto"
import { isIP } from "node:net"

export interface Issued {
  readonly certPem: string
  readonly keyPem: string
}

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const
const DAY = 86_400_000

// Loaded only when something is issued: later starts reuse files and never pay for it.
const lib = async () => {
  await import("reflect-metadata")
  return await import("@peculiar/x509")
}

// Positive 128-bit serial (RFC 5280: at most 20 octets, non-negative).
const serial = () => {
  const b = randomBytes(16)
  b[0] = b[0]! & 0x7f
  return b.toString("hex")
}

const dnEscape = (value: string) => value.replace(/([,+"\\<>;=])/g, "\\$1")

const exportKey = async (key: webcrypto.CryptoKey) =>
  createPrivateKey({
    key: Buffer.from(await webcrypto.subtle.exportKey("pkcs8", key)),
    format: "der",
    type: "pkcs8",
  })
    .export({ format: "pem", type: "pkcs8" })
    .toString()

const importSigningKey = (pem: string) =>
  webcrypto.subtle.importKey(
    "pkcs8",
    createPrivateKey(pem).export({ format: "der", type: "pkcs8" }),
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["sign"],
  )

const newKeys = () => webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])

// biome-ignore lint/suspicious/noExplicitAny: the library types Crypto against the DOM lib, which this package does not load.
const provider = webcrypto as any

export const issueCa = async (commonName: string, validDays: number): Promise<Issued> => {
  const x509 = await lib()
  const keys = await newKeys()
  const now = Date.now()
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name: `CN=${dnEscape(commonName)}`,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + validDays * DAY),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, provider),
      ],
    },
    provider,
  )
  return { certPem: cert.toString("pem"), keyPem: await exportKey(keys.privateKey) }
}

export interface CertificateOptions {
  readonly dnsNames: ReadonlyArray<string>
  readonly ipAddresses: ReadonlyArray<string>
  readonly validDays: number
}

export const issueCertificate = async (
  ca: Issued,
  commonName: string,
  options: CertificateOptions,
): Promise<Issued> => {
  const x509 = await lib()
  const caCert = new x509.X509Certificate(ca.certPem)
  const signingKey = await importSigningKey(ca.keyPem)
  const keys = await newKeys()
  const now = Date.now()
  const names = [
    ...options.dnsNames.map((value) => ({ type: "dns" as const, value })),
    ...options.ipAddresses.filter((ip) => isIP(ip) !== 0).map((value) => ({ type: "ip" as const, value })),
  ]
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial(),
      subject: `CN=${dnEscape(commonName)}`,
      issuer: caCert.subject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(Math.min(now + options.validDays * DAY, caCert.notAfter.getTime())),
      signingKey,
      publicKey: keys.publicKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : []),
        await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, provider),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, provider),
      ],
    },
    provider,
  )
  return { certPem: cert.toString("pem"), keyPem: await exportKey(keys.privateKey) }
}
