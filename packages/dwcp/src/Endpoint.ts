/**
 * Where a node's DWCP receiver listens and what it takes, as published in the cluster state
 * (`dwcp/endpoints/<node id>`, under a lease: a node that is gone stops being dialed). Senders
 * resolve peers from here and negotiate from the published offer before a byte goes out.
 *
 * @since 0.1.0
 */
import { Either, ParseResult, Schema } from "effect"
import * as Negotiation from "./Negotiation.js"

/**
 * The record.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Endpoint = Schema.Struct({
  host: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(255)),
  port: Schema.Int.pipe(Schema.between(1, 65535)),
  offer: Negotiation.Offer,
})

/**
 * @since 0.1.0
 * @category models
 */
export type Endpoint = typeof Endpoint.Type

/**
 * The key prefix of every node's endpoint.
 *
 * @since 0.1.0
 * @category keys
 */
export const prefix = "dwcp/endpoints/"

/**
 * The key of a node's endpoint.
 *
 * @since 0.1.0
 * @category keys
 */
export const key = (nodeId: string): string => `${prefix}${nodeId}`

const json = Schema.parseJson(Endpoint)

/**
 * The stored text of a record.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (endpoint: Endpoint): string => Schema.encodeSync(json)(endpoint)

/**
 * A stored record, or why it is not one (naming the key).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (nodeId: string, text: string): Either.Either<Endpoint, string> =>
  Either.mapLeft(
    Schema.decodeUnknownEither(json)(text),
    (e) => `${key(nodeId)}: ${ParseResult.TreeFormatter.formatErrorSync(e)}`,
  )
