/**
 * Version negotiation between two DWCP nodes: each offers the protocol versions and payload
 * encodings it can take now; the transfer uses the highest common version and an encoding both
 * have (a v3 node sends `zstd3` to a v1 peer), and is refused with both offers named when there is
 * no common version. The offer travels in the cluster handshake (the host carries it; its Schema is
 * here so a malformed offer is refused with what and where).
 *
 * @since 0.1.0
 */
import { Data, Either, Schema } from "effect"

/**
 * What a node can take now.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Offer = Schema.Struct({
  versions: Schema.Array(Schema.Int.pipe(Schema.between(1, 255))).pipe(Schema.minItems(1), Schema.maxItems(16)),
  encodings: Schema.Array(Schema.String.pipe(Schema.pattern(/^[a-z0-9_-]{1,32}$/))).pipe(Schema.maxItems(16)),
})

/**
 * @since 0.1.0
 * @category models
 */
export type Offer = typeof Offer.Type

/**
 * Decodes a peer's offer (e.g. from the handshake's JSON).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeOffer = Schema.decodeUnknownEither(Offer)

/**
 * @since 0.1.0
 * @category models
 */
export interface Agreement {
  readonly version: number
  /** Encodings both take, in the local order of preference. */
  readonly encodings: ReadonlyArray<string>
}

/**
 * The two nodes share no protocol version.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoCommonVersion extends Data.TaggedError("NoCommonVersion")<{
  readonly peer: string
  readonly local: ReadonlyArray<number>
  readonly remote: ReadonlyArray<number>
}> {
  override get message(): string {
    return `no common DWCP version with ${this.peer}: this node speaks ${this.local.join(", ")}, the peer ${this.remote.join(", ")}`
  }
}

/**
 * The highest common version and the shared encodings.
 *
 * @example
 * ```ts
 * import { Negotiation } from "@novacron/dwcp"
 *
 * Negotiation.negotiate("node-2", { versions: [3, 1], encodings: ["hde", "zstd3"] }, { versions: [1], encodings: ["zstd3"] })
 * // Right({ version: 1, encodings: ["zstd3"] })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const negotiate = (peer: string, local: Offer, remote: Offer): Either.Either<Agreement, NoCommonVersion> => {
  const common = local.versions.filter((v) => remote.versions.includes(v))
  if (common.length === 0)
    return Either.left(new NoCommonVersion({ peer, local: local.versions, remote: remote.versions }))
  return Either.right({
    version: Math.max(...common),
    encodings: local.encodings.filter((e) => remote.encodings.includes(e)),
  })
}
