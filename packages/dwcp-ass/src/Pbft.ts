/**
 * The PBFT engine (Castro & Liskov): one replica as a pure, deterministic state machine. It takes
 * signed messages and the time, and returns what to send; the caller owns sockets and timers.
 * n ≥ 4 replicas tolerate f = ⌊(n - 1) / 3⌋ Byzantine ones: quorums of ⌈(n + f + 1) / 2⌉ matching
 * votes (2f+1 when n = 3f+1), sequence-number watermarks,
 * checkpoints that garbage-collect the log, view change with prepared proofs and a new-view that
 * re-proposes them and fills gaps with null requests, duplicate-request suppression, and
 * view-change timers that double. Signing is injected (Ed25519 keys from node:crypto in
 * production: {@link ed25519}).
 *
 * The store mode over it is {@link PbftStore} (`algorithm: pbft`).
 *
 * @example
 * ```ts
 * import { Pbft } from "@novacron/dwcp-ass"
 * import { generateKeyPairSync } from "node:crypto"
 *
 * const keys = [0, 1, 2, 3].map(() => generateKeyPairSync("ed25519"))
 * const client = generateKeyPairSync("ed25519")
 * const principals = new Map([
 *   ...keys.map((k, i) => [String(i), k.publicKey] as const),
 *   ["client-a", client.publicKey] as const,
 * ])
 * const replicas = keys.map(
 *   (k, id) => new Pbft.Replica({ id, n: 4, ...Pbft.ed25519(k.privateKey, principals), apply: (op) => op.toUpperCase() }),
 * )
 * const request = Pbft.signRequest({ client: "client-a", timestamp: 1, op: "hello" }, Pbft.ed25519(client.privateKey, principals).signer)
 * const out = replicas[0]!.receive(request, 0) // the primary of view 0 broadcasts a pre-prepare
 * console.log(out.map((o) => o.kind))
 * ```
 *
 * @since 0.4.0
 */
import { sign as edSign, verify as edVerify, type KeyObject } from "node:crypto"
import { bytesOf, type Reply, type Request, type Signed } from "./internal/pbftMessages.js"
import type { Signer, Verifier } from "./internal/pbftReplica.js"

export type {
  Checkpoint,
  Commit,
  Message,
  NewView,
  PrePrepare,
  Prepare,
  PreparedProof,
  Reply,
  Request,
  Signed,
  ViewChange,
} from "./internal/pbftMessages.js"
/**
 * @since 0.4.0
 * @category constants
 */
export { digestOf, NULL_DIGEST } from "./internal/pbftMessages.js"
export type {
  CheckpointState,
  CommitCertificate,
  Output,
  Rejection,
  ReplicaConfig,
  Signer,
  Verifier,
} from "./internal/pbftReplica.js"
/**
 * One replica. `receive(message, now)` and `tick(now)` return the outputs: messages to broadcast
 * or send, replies to clients, executed requests, view changes.
 *
 * @since 0.4.0
 * @category models
 */
export { Replica } from "./internal/pbftReplica.js"

/**
 * Ed25519 signing with node:crypto: `key` signs, `principals` (replica index as a string, or
 * client id, to public key) verify. An unknown principal never verifies.
 *
 * @since 0.4.0
 * @category signing
 */
export const ed25519 = (
  key: KeyObject,
  principals: ReadonlyMap<string, KeyObject>,
): { readonly signer: Signer; readonly verifier: Verifier } => ({
  signer: { sign: (bytes) => new Uint8Array(edSign(null, bytes, key)) },
  verifier: {
    verify: (from, bytes, signature) => {
      const pub = principals.get(from)
      return pub !== undefined && edVerify(null, bytes, pub, signature)
    },
  },
})

/**
 * A client's signed request.
 *
 * @since 0.4.0
 * @category constructors
 */
export const signRequest = (
  request: { readonly client: string; readonly timestamp: number; readonly op: string },
  signer: Signer,
): Signed<Request> => {
  const message: Request = { type: "request", ...request }
  return { from: request.client, message, signature: signer.sign(bytesOf(message)) }
}

/**
 * The client's side of the reply rule: a result counts once f+1 distinct replicas signed the same
 * result for the request's timestamp (at least one of them is correct).
 *
 * @since 0.4.0
 * @category models
 */
export class ReplyCollector {
  private readonly votes = new Map<number, string>()
  constructor(
    private readonly f: number,
    private readonly client: string,
    private readonly timestamp: number,
    private readonly verifier: Verifier,
  ) {}

  /** The result once f+1 matching replies arrived. */
  add(reply: Signed<Reply>): string | undefined {
    const r = reply.message
    if (r.type !== "reply" || r.client !== this.client || r.timestamp !== this.timestamp) return this.result()
    if (reply.from !== String(r.replica) || !this.verifier.verify(reply.from, bytesOf(r), reply.signature))
      return this.result()
    if (!this.votes.has(r.replica)) this.votes.set(r.replica, r.result)
    return this.result()
  }

  result(): string | undefined {
    const count = new Map<string, number>()
    for (const v of this.votes.values()) {
      const c = (count.get(v) ?? 0) + 1
      if (c >= this.f + 1) return v
      count.set(v, c)
    }
    return undefined
  }
}
