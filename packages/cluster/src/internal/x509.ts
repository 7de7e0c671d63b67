// Signs a node certificate for a public key the joiner generated (its private key never leaves it).
// @novacron/security's issueCertificate always makes the key pair itself, so this is the same
// encoding (@peculiar/asn1-x509, ECDSA P-256 with SHA-256) taking the subject's SPKI instead.
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign } from "node:crypto"
import { isIP } from "node:net"

const DAY = 86_400_000
const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
const COMMON_NAME = "2.5.4.3"

// Loaded on the first join only: a node that never signs never pays for the ASN.1 schemas.
const lib = async () => {
  const [schema, x509] = await Promise.all([import("@peculiar/asn1-schema"), import("@peculiar/asn1-x509")])
  return { schema, x509 }
}
type Lib = Awaited<ReturnType<typeof lib>>

// Random 128-bit serial, positive and minimally encoded (DER refuses a redundant leading zero).
const serial = () => {
  const b = randomBytes(16)
  b[0] = (b[0]! & 0x7f) | 0x01
  return b
}

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

export interface LeafRequest {
  readonly commonName: string
  /** SubjectPublicKeyInfo, DER. */
  readonly subjectSpki: Buffer
  readonly dnsNames: ReadonlyArray<string>
  readonly ipAddresses: ReadonlyArray<string>
  readonly validDays: number
}

/** A leaf certificate (server and client authentication) for `request.subjectSpki`, signed by the CA. */
export const signLeaf = async (caCertPem: string, caKeyPem: string, request: LeafRequest): Promise<string> => {
  const l = await lib()
  const { schema, x509 } = l
  const caDer = Buffer.from(caCertPem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ""), "base64")
  const caCert = schema.AsnConvert.parse(caDer, x509.Certificate)
  const caSpki = createPublicKey(createPrivateKey(caKeyPem)).export({ type: "spki", format: "der" })
  const names = [
    ...request.dnsNames.map((dNSName) => new x509.GeneralName({ dNSName })),
    ...request.ipAddresses.filter((ip) => isIP(ip) !== 0).map((iPAddress) => new x509.GeneralName({ iPAddress })),
  ]
  const algorithm = new x509.AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 })
  const caNotAfter = caCert.tbsCertificate.validity.notAfter.getTime()
  const tbs = new x509.TBSCertificate({
    version: x509.Version.v3,
    serialNumber: new Uint8Array(serial()).buffer,
    signature: algorithm,
    issuer: caCert.tbsCertificate.subject,
    validity: new x509.Validity({
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Math.min(Date.now() + request.validDays * DAY, caNotAfter.getTime())),
    }),
    subject: new x509.Name([
      new x509.RelativeDistinguishedName([
        new x509.AttributeTypeAndValue({
          type: COMMON_NAME,
          value: new x509.AttributeValue({ utf8String: request.commonName }),
        }),
      ]),
    ]),
    subjectPublicKeyInfo: schema.AsnConvert.parse(request.subjectSpki, x509.SubjectPublicKeyInfo),
    extensions: new x509.Extensions([
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
        new x509.SubjectKeyIdentifier(keyIdentifier(request.subjectSpki, l)),
      ),
    ]),
  })
  const signature = sign("sha256", Buffer.from(schema.AsnConvert.serialize(tbs)), { key: caKeyPem, dsaEncoding: "der" })
  const cert = new x509.Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: algorithm,
    signatureValue: new Uint8Array(signature).buffer,
  })
  return toPem(schema.AsnConvert.serialize(cert))
}
