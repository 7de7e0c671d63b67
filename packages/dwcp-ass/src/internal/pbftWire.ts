// PBFT's frames on the peer links, the one place they are encoded and decoded: `@novacron/wire`
// frames (magic "PB", version 1, no fields), the frame type naming the kind, the payload JSON
// decoded with the Schemas below (byte arrays as base64 strings) before anything reads it. A frame
// whose payload does not decode is refused with its first Schema issue; the engine only ever sees
// messages of the shapes of `pbftMessages.ts` (its own semantic checks still apply).
import { Wire } from "@novacron/wire"
import { Either, ParseResult, Schema } from "effect"
import type * as M from "./pbftMessages.js"
import type {
  CheckpointState as CheckpointStateType,
  CommitCertificate as CommitCertificateType,
} from "./pbftReplica.js"

const Nat = Schema.Int.pipe(Schema.between(0, Number.MAX_SAFE_INTEGER))
/** a replica index (the engine checks it against n) */
const Index = Schema.Int.pipe(Schema.between(0, 255))
const Id = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256))
/** a hex digest, "null", or (checkpoints) a state hash */
const Digest = Schema.String.pipe(Schema.maxLength(128))
/** ECDSA, EdDSA or RSA up to 4096 bits: at most 512 bytes */
const Signature = Schema.compose(Schema.String.pipe(Schema.maxLength(1024)), Schema.Uint8ArrayFromBase64)

const strict = { onExcessProperty: "error" } as const
/** a Struct refusing unknown fields, named in issues ("Expected Prepare, actual 7") */
const struct = <F extends Schema.Struct.Fields>(identifier: string, fields: F) =>
  Schema.Struct(fields).annotations({ identifier, parseOptions: strict })

const signed = <A extends M.Message, I>(name: string, message: Schema.Schema<A, I>) =>
  struct(`Signed${name}`, { from: Id, message, signature: Signature })

const Request = struct("Request", { type: Schema.Literal("request"), client: Id, timestamp: Nat, op: Schema.String })
const SignedRequest = signed("Request", Request)
const PrePrepare = struct("PrePrepare", {
  type: Schema.Literal("pre-prepare"),
  view: Nat,
  seq: Nat,
  digest: Digest,
  request: Schema.NullOr(SignedRequest),
})
const SignedPrePrepare = signed("PrePrepare", PrePrepare)
const vote = <T extends "prepare" | "commit">(name: string, type: T) =>
  struct(name, { type: Schema.Literal(type), view: Nat, seq: Nat, digest: Digest, replica: Index })
const Prepare = vote("Prepare", "prepare")
const Commit = vote("Commit", "commit")
const Checkpoint = struct("Checkpoint", { type: Schema.Literal("checkpoint"), seq: Nat, state: Digest, replica: Index })
const PreparedProof = struct("PreparedProof", {
  prePrepare: SignedPrePrepare,
  prepares: Schema.Array(signed("Prepare", Prepare)),
})
const ViewChange = struct("ViewChange", {
  type: Schema.Literal("view-change"),
  view: Nat,
  stable: Nat,
  checkpointProof: Schema.Array(signed("Checkpoint", Checkpoint)),
  prepared: Schema.Array(PreparedProof),
  replica: Index,
})
const NewView = struct("NewView", {
  type: Schema.Literal("new-view"),
  view: Nat,
  viewChanges: Schema.Array(signed("ViewChange", ViewChange)),
  prePrepares: Schema.Array(SignedPrePrepare),
})
const Reply = struct("Reply", {
  type: Schema.Literal("reply"),
  view: Nat,
  timestamp: Nat,
  client: Id,
  replica: Index,
  result: Schema.String,
})
const Message = Schema.Union(Request, PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView, Reply).annotations({
  identifier: "Message",
})
const CommitCertificate = struct("CommitCertificate", {
  prePrepare: SignedPrePrepare,
  commits: Schema.Array(signed("Commit", Commit)),
})
const CheckpointState = struct("CheckpointState", {
  seq: Nat,
  proof: Schema.Array(signed("Checkpoint", Checkpoint)),
  snapshot: Schema.String,
})

// The Schemas decode to exactly the engine's types (a change on either side fails to compile).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const same = <A, B>(_: Same<A, B>) => undefined
same<typeof Message.Type, M.Message>(true)
same<typeof SignedPrePrepare.Type, M.Signed<M.PrePrepare>>(true)
same<typeof NewView.Type, M.NewView>(true)
same<typeof CommitCertificate.Type, CommitCertificateType>(true)
same<typeof CheckpointState.Type, CheckpointStateType>(true)

// `Schema.Struct({})` accepts any value but null and undefined: a frame without a body is `{}` exactly.
const Empty = Schema.declare(
  (u: unknown): u is {} => typeof u === "object" && u !== null && !Array.isArray(u) && Object.keys(u).length === 0,
  { identifier: "EmptyObject", description: "{}" },
)

/** Each frame kind: its wire frame type and the Schema of its payload. */
const kinds = {
  /** a signed protocol message */
  m: { type: 1, body: struct("MessageFrame", { m: signed("Message", Message) }) },
  /** a signed reply to one of the receiver's clients */
  r: { type: 2, body: struct("ReplyFrame", { m: signed("Reply", Reply) }) },
  /** asks for the sender's stable checkpoint at `seq` or later (state transfer) */
  sq: { type: 3, body: struct("StateQuery", { seq: Nat }) },
  /** asks for the newest new-view message */
  "nv?": { type: 4, body: Empty },
  /** asks for commit certificates from `seq` on */
  cq: { type: 5, body: struct("CertificateQuery", { seq: Nat }) },
  /** commit certificates (at most 16, as asked) */
  c: {
    type: 6,
    body: struct("Certificates", { certs: Schema.Array(CommitCertificate).pipe(Schema.maxItems(16)) }),
  },
  /** a stable checkpoint with its proof and snapshot (state transfer) */
  s: { type: 7, body: struct("StateOffer", { state: CheckpointState }) },
} as const

export type Kind = keyof typeof kinds
export type Frame = { [K in Kind]: { readonly t: K } & (typeof kinds)[K]["body"]["Type"] }[Kind]

const byType = new Map<
  number,
  { readonly t: Kind; readonly decode: (text: string) => Either.Either<unknown, ParseResult.ParseError> }
>(
  Object.entries(kinds).map(([t, k]) => [
    k.type,
    {
      t: t as Kind,
      decode: Schema.decodeUnknownEither(Schema.parseJson(k.body as Schema.Schema<unknown, unknown>)),
    },
  ]),
)

/** The frame format of PBFT peer links (see `@novacron/wire`'s README table). */
export const format: Wire.Format = Wire.format({
  protocol: "pbft",
  magic: 0x5042,
  version: 1,
  fieldsSize: 0,
  isType: (type) => byType.has(type),
})

/** The first issue of a failed decode, as `path: message`. */
const firstIssue = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return "invalid"
  const path = issue.path.length === 0 ? "(payload)" : issue.path.join(".")
  return `${path}: ${issue.message}`.slice(0, 300)
}

/**
 * Encodes a frame: its JSON with byte arrays as base64, what the Schemas decode. Not through the
 * Schemas: a frame's type already says it has their shape, and the Schema encoder cost as much as
 * the decoder (about 10 µs a vote). The tests decode every kind back to the same value.
 */
export const encode = (frame: Frame): Buffer => {
  const { t, ...body } = frame
  const json = JSON.stringify(body, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v))
  return Wire.encode(format, kinds[t].type, Buffer.from(json, "utf8"))
}

/** Decodes a frame's payload by its type; a Left names the kind and the first Schema issue. */
export const decode = (frame: Wire.Frame): Either.Either<Frame, string> => {
  const kind = byType.get(frame.type)
  // the decoder's isType refused other types already
  if (kind === undefined) return Either.left(`frame type ${frame.type}: unknown`)
  return Either.match(kind.decode(frame.payload.toString("utf8")), {
    onLeft: (e) => Either.left(`${kind.t} frame: ${firstIssue(e)}`),
    onRight: (body) => Either.right({ ...(body as object), t: kind.t } as Frame),
  })
}
