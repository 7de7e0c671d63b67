import { Schema } from "effect"
import { TokenId } from "../JoinToken.js"

export const JOIN_PATH = "/v1/join"
export const PROOF_HEADER = "x-novacron-join-proof"

// Same rule as @novacron/security for a node id that is also a DNS name in its certificate.
const dnsName = /^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/

export const NodeId = Schema.String.pipe(
  Schema.maxLength(253),
  Schema.pattern(dnsName, { message: () => "expected a node id of letters, digits, '.' and '-' (a DNS name)" }),
)

export const JoinRequest = Schema.Struct({
  token_id: TokenId,
  node_id: NodeId,
  /** The joiner's public key, SPKI PEM. Its private key stays on the joiner. */
  public_key: Schema.String.pipe(Schema.maxLength(4096)),
  dns_names: Schema.Array(NodeId).pipe(Schema.maxItems(16)),
  ip_addresses: Schema.Array(Schema.String.pipe(Schema.maxLength(45))).pipe(Schema.maxItems(16)),
})
export type JoinRequest = typeof JoinRequest.Type

export const JoinResponse = Schema.Struct({
  node_id: Schema.String,
  ca: Schema.String,
  certificate: Schema.String,
  /** The seed's `network.peers` entry, when it knows it. */
  peer_address: Schema.optional(Schema.String),
})
export type JoinResponse = typeof JoinResponse.Type

export const Refusal = Schema.Struct({ error: Schema.String })
