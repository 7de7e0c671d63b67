import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign } from "node:crypto"
import { isIP } from "node:net"

export interface Issued {
  readonly certPem: string
  readonly keyPem: string
}

export interface CertificateOptions {
  readonly dnsNames: ReadonlyArray<string>
  readonly ipAddresses: ReadonlyArray<string>
  readonly validDays: number
  /** Subject organizational unit (a client certificate's role for the API). */
  readonly organizationalUnit?: string | undefined
}

const DAY = 86_400_000
const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
const COMMON_NAME = "2.5.4.3"
const ORGANIZATIONAL_UNIT = "2.5.4.11"

// The ASN.1 schemas of X.509 (@peculiar/asn1-x509) are loaded only when something is issued: later
// starts reuse files and never pay for them. The high-level @peculiar/x509 on top of them costs about
// three times as much to load (it pulls in RSA, CMS, PKCS#9 schemas and a DI container).
const lib = async () => {
  const [schema, x509] = await Promise.all([import("@peculiar/asn1-schema"), import("@peculiar/asn1-x509")])
  return { schema, x509 }
}
type Lib = Awaited<ReturnType<typeof lib>>

// Random 128-bit serial, positive (top bit clear) and minimally encoded (first byte non-zero): DER
// refuses an INTEGER with a redundant leading zero byte.
const serial = () => {
  const b = randomBytes(16)
  b[0] = (b[0]! & 0x7f) | 0x01
  return b
}

const name = ({ x509 }: Lib, commonName: string, organizationalUnit?: string) =>
  new x509.Name([
    ...(organizationalUnit === undefined
      ? []
      : [
          new x509.RelativeDistinguishedName([
            new x509.AttributeTypeAndValue({
              type: ORGANIZATIONAL_UNIT,
              value: new x509.AttributeValue({ utf8String: organizationalUnit }),
            }),
          ]),
        ]),
    new x509.RelativeDistinguishedName([
      new x509.AttributeTypeAndValue({ type: COMMON_NAME, value: new x509.AttributeValue({ utf8String: commonName }) }),
    ]),
  ])

const extension = ({ schema, x509 }: Lib, extnID: string, critical: boolean, value: unknown) =>
  new x509.Extension({ extnID, critical, extnValue: new schema.OctetString(schema.AsnConvert.serialize(value)) })

// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
const keyIdentifier = (spki: Uint8Array, { schema, x509 }: Lib) =>
  createHash("sha1")
    .update(Buffer.from(schema.AsnConvert.parse(spki, x509.SubjectPublicKeyInfo).subjectPublicKey))
    .digest()

const toPem = (der: ArrayBuffer) =>
  `-----BEGIN CERTIFICATE-----\n${Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .replace(/\n?$/, "\n")}-----END CERTIFICATE-----\n`

const build = (
  l: Lib,
  params: {
    readonly subject: string
    readonly organizationalUnit?: string | undefined
    readonly issuer: unknown
    readonly subjectSpki: Buffer
    readonly signingKeyPem: string
    readonly notAfter: Date
    readonly extensions: ReadonlyArray<unknown>
  },
): string => {
  const { schema, x509 } = l
  const algorithm = new x509.AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 })
  const tbs = new x509.TBSCertificate({
    version: x509.Version.v3,
    serialNumber: new Uint8Array(serial()).buffer,
    signature: algorithm,
    issuer: params.issuer as InstanceType<typeof x509.Name>,
    validity: new x509.Validity({ notBefore: new Date(Date.now() - 60_000), notAfter: params.notAfter }),
    subject: name(l, params.subject, params.organizationalUnit),
    subjectPublicKeyInfo: schema.AsnConvert.parse(params.subjectSpki, x509.SubjectPublicKeyInfo),
    extensions: new x509.Extensions(params.extensions as Array<InstanceType<typeof x509.Extension>>),
  })
  const signature = sign("sha256", Buffer.from(schema.AsnConvert.serialize(tbs)), {
    key: params.signingKeyPem,
    dsaEncoding: "der",
  })
  const cert = new x509.Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: algorithm,
    signatureValue: new Uint8Array(signature).buffer,
  })
  return toPem(schema.AsnConvert.serialize(cert))
}

const newKeys = () => {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
  return {
    spki: publicKey.export({ type: "spki", format: "der" }),
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  }
}

export const issueCa = async (commonName: string, validDays: number): Promise<Issued> => {
  const l = await lib()
  const { x509 } = l
  const keys = newKeys()
  const certPem = build(l, {
    subject: commonName,
    issuer: name(l, commonName),
    subjectSpki: keys.spki,
    signingKeyPem: keys.keyPem,
    notAfter: new Date(Date.now() + validDays * DAY),
    extensions: [
      extension(l, x509.id_ce_basicConstraints, true, new x509.BasicConstraints({ cA: true, pathLenConstraint: 0 })),
      extension(
        l,
        x509.id_ce_keyUsage,
        true,
        new x509.KeyUsage(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign),
      ),
      extension(l, x509.id_ce_subjectKeyIdentifier, false, new x509.SubjectKeyIdentifier(keyIdentifier(keys.spki, l))),
    ],
  })
  return { certPem, keyPem: keys.keyPem }
}

/** A leaf certificate (server and client authentication) for `subjectSpki` (DER), signed by `ca`. */
export const signLeaf = async (
  ca: Issued,
  commonName: string,
  subjectSpki: Buffer,
  options: CertificateOptions,
): Promise<string> => {
  const l = await lib()
  const { schema, x509 } = l
  const caDer = Buffer.from(ca.certPem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ""), "base64")
  const caCert = schema.AsnConvert.parse(caDer, x509.Certificate)
  const caSpki = createPublicKey(createPrivateKey(ca.keyPem)).export({ type: "spki", format: "der" })
  const names = [
    ...options.dnsNames.map((dNSName) => new x509.GeneralName({ dNSName })),
    ...options.ipAddresses.filter((ip) => isIP(ip) !== 0).map((iPAddress) => new x509.GeneralName({ iPAddress })),
  ]
  const caNotAfter = caCert.tbsCertificate.validity.notAfter.getTime() // a Date
  return build(l, {
    subject: commonName,
    organizationalUnit: options.organizationalUnit,
    issuer: caCert.tbsCertificate.subject,
    subjectSpki,
    signingKeyPem: ca.keyPem,
    notAfter: new Date(Math.min(Date.now() + options.validDays * DAY, caNotAfter.getTime())),
    extensions: [
      extension(l, x509.id_ce_basicConstraints, true, new x509.BasicConstraints({ cA: false })),
      extension(
        l,
        x509.id_ce_keyUsage,
        true,
        new x509.KeyUsage(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement),
      ),
      extension(
        l,
        x509.id_ce_extKeyUsage,
        false,
        new x509.ExtendedKeyUsage([x509.id_kp_serverAuth, x509.id_kp_clientAuth]),
      ),
      ...(names.length > 0
        ? [extension(l, x509.id_ce_subjectAltName, false, new x509.SubjectAlternativeName(names))]
        : []),
      extension(
        l,
        x509.id_ce_authorityKeyIdentifier,
        false,
        new x509.AuthorityKeyIdentifier({ keyIdentifier: new x509.KeyIdentifier(keyIdentifier(caSpki, l)) }),
      ),
      extension(
        l,
        x509.id_ce_subjectKeyIdentifier,
        false,
        new x509.SubjectKeyIdentifier(keyIdentifier(subjectSpki, l)),
      ),
    ],
  })
}

export const issueCertificate = async (
  ca: Issued,
  commonName: string,
  options: CertificateOptions,
): Promise<Issued> => {
  const keys = newKeys()
  return { certPem: await signLeaf(ca, commonName, keys.spki, options), keyPem: keys.keyPem }
}
