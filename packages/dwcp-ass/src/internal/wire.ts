// The gossip datagram, the one place it is encoded and decoded. Every datagram is signed with the
// sender's node key and carries its node certificate; the receiver accepts it only when the
// certificate was issued by the cluster CA, is valid now, and the signature checks, and then
// knows the sender as the certificate's common name (the node id). Why not an HMAC with a key
// derived from the CA: the CA certificate is public, and a node that joined a cluster holds no
// ca.key (see @novacron/security), so no secret shared by all members exists to derive it from.
//
//   "NG" | version u8 | sent-at ms u48 | cert length u16 | cert DER | payload length u16 |
//   payload (JSON, Schema-decoded) | signature length u8 | signature (over everything before it)
import { createHash, type KeyObject, sign, verify, X509Certificate } from "node:crypto"
import { Either, ParseResult, Schema } from "effect"
import type { Message } from "./gossip.js"

/** Largest datagram sent or accepted: under the 65507-byte UDP limit. */
export const MAX_DATAGRAM = 60 * 1024
const MAGIC0 = 0x4e
const MAGIC1 = 0x47
const VERSION = 1
const HEADER = 2 + 1 + 6 + 2

const Id = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128))
const Addr = Schema.String.pipe(Schema.maxLength(256))
const Meta = Schema.String.pipe(Schema.maxLength(512))
const Inc = Schema.Int.pipe(Schema.between(0, 2 ** 32))
const Seq = Schema.Int.pipe(Schema.between(0, Number.MAX_SAFE_INTEGER))
const Bytes = Schema.Uint8ArrayFromBase64
const few = <A, I>(s: Schema.Schema<A, I>, n: number) => Schema.Array(s).pipe(Schema.maxItems(n))

const Rumor = Schema.Union(
  Schema.Struct({ t: Schema.Literal("alive"), id: Id, inc: Inc, addr: Addr, meta: Meta }),
  Schema.Struct({ t: Schema.Literal("suspect"), id: Id, inc: Inc, from: Id }),
  Schema.Struct({ t: Schema.Literal("dead"), id: Id, inc: Inc, from: Id }),
)
const Rumors = few(Rumor, 64)
const WireMember = Schema.Struct({
  id: Id,
  addr: Addr,
  inc: Inc,
  state: Schema.Literal("alive", "suspect", "dead", "left"),
  meta: Meta,
})
const Delta = Schema.Struct({ o: Id, u: Bytes })
const Digest = Schema.Struct({ o: Id, sv: Bytes })

/** Every gossip message, decoded with bounds (list lengths, string sizes). */
export const MessageSchema = Schema.Union(
  Schema.Struct({ k: Schema.Literal("ping"), seq: Seq, target: Id, g: Rumors }),
  Schema.Struct({ k: Schema.Literal("ack"), seq: Seq, g: Rumors }),
  Schema.Struct({ k: Schema.Literal("nack"), seq: Seq }),
  Schema.Struct({ k: Schema.Literal("pingreq"), seq: Seq, target: Id, addr: Addr, g: Rumors }),
  Schema.Struct({ k: Schema.Literal("gossip"), g: Rumors }),
  Schema.Struct({ k: Schema.Literal("sync"), reply: Schema.Boolean, members: few(WireMember, 4096) }),
  Schema.Struct({ k: Schema.Literal("delta"), d: few(Delta, 256) }),
  Schema.Struct({ k: Schema.Literal("push"), d: few(Delta, 4096) }),
  Schema.Struct({ k: Schema.Literal("ae"), reply: Schema.Boolean, dg: few(Digest, 4096), u: few(Delta, 4096) }),
)

const json = Schema.parseJson(MessageSchema)
const decodeJson = Schema.decodeUnknownEither(json)
const encodeJson = Schema.encodeEither(json)

export interface Identity {
  readonly id: string
  readonly cert: Buffer
  readonly key: KeyObject
}

export interface Trust {
  readonly ca: X509Certificate
  /** Datagrams sent longer ago (or further ahead) than this are refused as replays. */
  readonly maxSkewMs: number
}

export type Opened =
  | { readonly _tag: "Ok"; readonly from: string; readonly message: Message }
  | { readonly _tag: "Refused"; readonly reason: string }

const refused = (reason: string): Opened => ({ _tag: "Refused", reason })

/** The node id a certificate names (its subject CN). */
export const commonName = (cert: X509Certificate): string | undefined => {
  for (const line of cert.subject.split("\n")) if (line.startsWith("CN=")) return line.slice(3)
  return undefined
}

/** Signs and frames a message. Throws RangeError when it would exceed {@link MAX_DATAGRAM}. */
export const seal = (me: Identity, message: Message, now: number): Buffer => {
  const text = encodeJson(message as Schema.Schema.Type<typeof MessageSchema>)
  if (Either.isLeft(text))
    throw new RangeError(
      `gossip ${message.k} message does not encode: ${ParseResult.TreeFormatter.formatErrorSync(text.left).slice(0, 200)}`,
    )
  const payload = Buffer.from(text.right, "utf8")
  const size = HEADER + me.cert.length + 2 + payload.length + 1 + 80
  if (size > MAX_DATAGRAM || payload.length > 0xffff)
    throw new RangeError(`gossip ${message.k} message of ${size} bytes exceeds ${MAX_DATAGRAM}`)
  const head = Buffer.alloc(HEADER)
  head[0] = MAGIC0
  head[1] = MAGIC1
  head[2] = VERSION
  head.writeUIntBE(now, 3, 6)
  head.writeUInt16BE(me.cert.length, 9)
  const plen = Buffer.alloc(2)
  plen.writeUInt16BE(payload.length)
  const signed = Buffer.concat([head, me.cert, plen, payload])
  const sig = sign("sha256", signed, me.key)
  return Buffer.concat([signed, Buffer.from([sig.length]), sig])
}

/**
 * Verifies and decodes a datagram. Caches certificates that passed (by SHA-256 of their DER) so
 * the chain check runs once per peer certificate; the signature is checked on every datagram.
 */
export class Opener {
  private readonly known = new Map<string, { id: string; key: KeyObject; notAfter: number }>()

  constructor(private readonly trust: Trust) {}

  open(datagram: Buffer, now: number): Opened {
    if (datagram.length > MAX_DATAGRAM) return refused(`datagram of ${datagram.length} bytes`)
    if (datagram.length < HEADER + 2 + 1) return refused(`datagram of ${datagram.length} bytes is too short`)
    if (datagram[0] !== MAGIC0 || datagram[1] !== MAGIC1) return refused("not a NovaCron gossip datagram")
    if (datagram[2] !== VERSION) return refused(`version ${datagram[2]}, expected ${VERSION}`)
    const sent = datagram.readUIntBE(3, 6)
    if (Math.abs(now - sent) > this.trust.maxSkewMs)
      return refused(`sent at ${new Date(sent).toISOString()}: outside the ${this.trust.maxSkewMs} ms replay window`)
    const clen = datagram.readUInt16BE(9)
    const pAt = HEADER + clen
    if (pAt + 2 > datagram.length) return refused("certificate length beyond the datagram")
    const plen = datagram.readUInt16BE(pAt)
    const sAt = pAt + 2 + plen
    if (sAt + 1 > datagram.length) return refused("payload length beyond the datagram")
    const slen = datagram[sAt]!
    if (sAt + 1 + slen !== datagram.length) return refused("signature length does not match the datagram")
    const certDer = datagram.subarray(HEADER, pAt)
    const fp = createHash("sha256").update(certDer).digest("base64")
    let peer = this.known.get(fp)
    if (peer === undefined || now > peer.notAfter) {
      let cert: X509Certificate
      try {
        cert = new X509Certificate(certDer)
      } catch (e) {
        return refused(`certificate does not parse: ${(e as Error).message}`)
      }
      if (!cert.checkIssued(this.trust.ca) || !cert.verify(this.trust.ca.publicKey))
        return refused(`certificate ${cert.subject.replaceAll("\n", ", ")} is not issued by the cluster CA`)
      const from = Date.parse(cert.validFrom)
      const to = Date.parse(cert.validTo)
      if (now < from || now > to) return refused(`certificate valid ${cert.validFrom} to ${cert.validTo}, not now`)
      const id = commonName(cert)
      if (id === undefined || id === "") return refused("certificate has no common name (node id)")
      peer = { id, key: cert.publicKey, notAfter: to }
      if (this.known.size > 4096) this.known.clear()
      this.known.set(fp, peer)
    }
    if (!verify("sha256", datagram.subarray(0, sAt), peer.key, datagram.subarray(sAt + 1)))
      return refused(`bad signature (claims ${peer.id})`)
    const decoded = decodeJson(datagram.subarray(pAt + 2, sAt).toString("utf8"))
    if (Either.isLeft(decoded))
      return refused(`from ${peer.id}: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left).slice(0, 300)}`)
    return { _tag: "Ok", from: peer.id, message: decoded.right as Message }
  }
}
