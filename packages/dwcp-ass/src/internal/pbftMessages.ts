// PBFT messages as plain data, their canonical bytes (what is signed) and digests.
import { createHash } from "node:crypto"

export interface Request {
  readonly type: "request"
  readonly client: string
  /** per client, strictly increasing: orders a client's requests and suppresses duplicates */
  readonly timestamp: number
  readonly op: string
}

/** The null request a new primary assigns to sequence numbers nobody proved prepared. */
export const NULL_DIGEST = "null"

export interface PrePrepare {
  readonly type: "pre-prepare"
  readonly view: number
  readonly seq: number
  readonly digest: string
  /** the request itself, or null for the null request (digest {@link NULL_DIGEST}) */
  readonly request: Signed<Request> | null
}

export interface Prepare {
  readonly type: "prepare"
  readonly view: number
  readonly seq: number
  readonly digest: string
  readonly replica: number
}

export interface Commit {
  readonly type: "commit"
  readonly view: number
  readonly seq: number
  readonly digest: string
  readonly replica: number
}

export interface Checkpoint {
  readonly type: "checkpoint"
  readonly seq: number
  readonly state: string
  readonly replica: number
}

/** A prepared certificate: the pre-prepare and 2f matching prepares from distinct backups. */
export interface PreparedProof {
  readonly prePrepare: Signed<PrePrepare>
  readonly prepares: ReadonlyArray<Signed<Prepare>>
}

export interface ViewChange {
  readonly type: "view-change"
  readonly view: number
  /** the sender's last stable checkpoint and its 2f+1 checkpoint messages (none for 0) */
  readonly stable: number
  readonly checkpointProof: ReadonlyArray<Signed<Checkpoint>>
  /** for each sequence number above `stable` prepared at the sender, the highest-view proof */
  readonly prepared: ReadonlyArray<PreparedProof>
  readonly replica: number
}

export interface NewView {
  readonly type: "new-view"
  readonly view: number
  readonly viewChanges: ReadonlyArray<Signed<ViewChange>>
  readonly prePrepares: ReadonlyArray<Signed<PrePrepare>>
}

export interface Reply {
  readonly type: "reply"
  readonly view: number
  readonly timestamp: number
  readonly client: string
  readonly replica: number
  readonly result: string
}

export type Message = Request | PrePrepare | Prepare | Commit | Checkpoint | ViewChange | NewView | Reply

/** A message with its sender (a replica index as a string, or a client id) and signature. */
export interface Signed<M extends Message = Message> {
  readonly from: string
  readonly message: M
  readonly signature: Uint8Array
}

/** Key-sorted JSON: the same message always gives the same bytes; signatures are base64. */
const canonical = (value: unknown): string => {
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString("base64"))
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`
  }
  return JSON.stringify(value)
}

export const bytesOf = (message: Message): Uint8Array => Buffer.from(canonical(message), "utf8")

export const digestOf = (request: Request): string => createHash("sha256").update(bytesOf(request)).digest("hex")

export const chain = (previous: string, seq: number, digest: string, result: string): string =>
  createHash("sha256").update(`${previous}\n${seq}\n${digest}\n${result}`).digest("hex")
