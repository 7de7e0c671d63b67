/**
 * The join token an operator copies from the seed to a new node, kubeadm style: one string
 * `ncj1.<id>.<secret>.<ca-sha256>.<host:port>` that says where to join, proves the right to join,
 * and pins the CA the new node must find there (SHA-256 of the CA certificate, lowercase hex, as
 * `openssl x509 -noout -fingerprint -sha256` prints it without colons).
 *
 * The secret never travels: the joiner sends an HMAC of its request under a key derived from it,
 * and the seed stores only that derived key (never the secret, so a lost token cannot be printed again).
 *
 * @since 0.1.0
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import { Effect, Either, ParseResult, Schema } from "effect"
import { TokenFormatError } from "./ClusterError.js"
import { HostPort } from "./ClusterSettings.js"

/**
 * The version prefix of the token format.
 *
 * @since 0.1.0
 * @category constants
 */
export const PREFIX = "ncj1"

/**
 * A token id: 8 lowercase letters or digits (shown by `cluster token list`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const TokenId = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9]{8}$/, { message: () => "expected a token id of 8 lowercase letters or digits" }),
)

/**
 * The decoded parts of a join token.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JoinTokenParts = Schema.Struct({
  id: TokenId,
  /** 16 random bytes, base64url. */
  secret: Schema.String.pipe(
    Schema.pattern(/^[A-Za-z0-9_-]{22}$/, { message: () => "expected a secret of 22 base64url characters" }),
  ),
  /** SHA-256 of the cluster CA certificate (DER), lowercase hex. */
  caFingerprint: Schema.String.pipe(
    Schema.pattern(/^[0-9a-f]{64}$/, { message: () => "expected a CA fingerprint of 64 lowercase hex digits" }),
  ),
  /** Where the seed's join server listens. */
  address: HostPort,
})

/**
 * @since 0.1.0
 * @category models
 */
export type JoinToken = typeof JoinTokenParts.Type

/**
 * A join token from / to its one-string form.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JoinTokenFromString: Schema.Schema<JoinToken, string> = Schema.transformOrFail(
  Schema.String,
  JoinTokenParts,
  {
    strict: true,
    decode: (s, _, ast) => {
      const parts = s.trim().split(".")
      if (parts[0] !== PREFIX) {
        return ParseResult.fail(new ParseResult.Type(ast, s, `expected a token starting with "${PREFIX}."`))
      }
      if (parts.length < 5) {
        return ParseResult.fail(
          new ParseResult.Type(ast, s, `expected ${PREFIX}.<id>.<secret>.<ca-sha256>.<host:port> (5 parts)`),
        )
      }
      // The address is last and may itself contain dots.
      return ParseResult.succeed({
        id: parts[1]!,
        secret: parts[2]!,
        caFingerprint: parts[3]!,
        address: parts.slice(4).join("."),
      })
    },
    encode: (t) => ParseResult.succeed(`${PREFIX}.${t.id}.${t.secret}.${t.caFingerprint}.${t.address}`),
  },
)

const decodeEither = Schema.decodeUnknownEither(JoinTokenFromString, { errors: "all" })

/**
 * Decodes a token an operator pasted, failing with what is wrong with it.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (text: string): Effect.Effect<JoinToken, TokenFormatError> =>
  Either.match(decodeEither(text), {
    onLeft: (e) =>
      Effect.fail(
        new TokenFormatError({
          reason: ParseResult.ArrayFormatter.formatErrorSync(e)
            .map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message))
            .join("; "),
        }),
      ),
    onRight: Effect.succeed,
  })

/**
 * The one-string form.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode: (token: JoinToken) => string = Schema.encodeSync(JoinTokenFromString)

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"

/**
 * A fresh token id and secret.
 *
 * @since 0.1.0
 * @category constructors
 */
export const generate = (): { readonly id: string; readonly secret: string } => {
  // 8 of 36 symbols; 256 % 36 != 0, so reject the top bytes to keep the choice uniform.
  let id = ""
  while (id.length < 8) {
    for (const b of randomBytes(16)) if (b < 252 && id.length < 8) id += ALPHABET[b % 36]
  }
  return { id, secret: randomBytes(16).toString("base64url") }
}

/**
 * The HMAC key a token's secret stands for: the only thing the seed stores. Binding the id means
 * one secret cannot be replayed under another token's id.
 *
 * @since 0.1.0
 * @category proof
 */
export const deriveKey = (id: string, secret: string): Buffer =>
  createHmac("sha256", Buffer.from(secret, "base64url")).update(`novacron-join-v1 ${id}`).digest()

/**
 * The proof sent with a join request: HMAC-SHA256 of the exact request body under the derived key, hex.
 *
 * @since 0.1.0
 * @category proof
 */
export const proof = (key: Uint8Array, body: Uint8Array | string): string =>
  createHmac("sha256", key).update(body).digest("hex")

/**
 * Whether `given` is the proof of `body` under `key` (constant time).
 *
 * @since 0.1.0
 * @category proof
 */
export const verifyProof = (key: Uint8Array, body: Uint8Array | string, given: string): boolean => {
  const expected = Buffer.from(proof(key, body), "hex")
  const actual = /^[0-9a-f]{64}$/.test(given) ? Buffer.from(given, "hex") : Buffer.alloc(0)
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}
