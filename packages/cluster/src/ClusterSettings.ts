/**
 * The `cluster` section of the node configuration: where a seed serves joins and how long the join
 * tokens it creates live. Exported on its own subpath (`@novacron/cluster/ClusterSettings`) so the
 * configuration loader can take the schema without loading the join server.
 *
 * @since 0.1.0
 */
import { Duration as D, ParseResult, Schema } from "effect"

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * A duration written `500ms`, `30s`, `5m` or `1h` (as in the rest of the configuration).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Duration: Schema.Schema<D.Duration, string> = Schema.transformOrFail(
  Schema.String,
  Schema.DurationFromSelf,
  {
    strict: true,
    decode: (s, _, ast) => {
      const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s.trim())
      return m
        ? ParseResult.succeed(D.millis(Number(m[1]) * units[m[2]!]!))
        : ParseResult.fail(new ParseResult.Type(ast, s, 'expected a duration such as "30m", "24h" or "168h"'))
    },
    encode: (d) => ParseResult.succeed(`${D.toMillis(d)}ms`),
  },
)

/**
 * `"host:port"`, IPv6 in brackets.
 *
 * @since 0.1.0
 * @category schemas
 */
export const HostPort = Schema.String.pipe(
  Schema.pattern(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, { message: () => 'expected "host:port"' }),
)

/**
 * The `cluster` section.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ClusterSettings = Schema.Struct({
  /** Port of the join server (HTTPS) on a node that holds the cluster CA key. 0: any free port. */
  join_port: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 65535)), { default: () => 7790 }),
  /** Address written into join tokens. Empty: `<network.listen_address>:<join_port>`. */
  join_address: Schema.optionalWith(Schema.Union(Schema.Literal(""), HostPort), { default: () => "" as const }),
  /** Lifetime of a new join token. */
  token_ttl: Schema.optionalWith(Duration, { default: () => D.hours(24) }),
  /** How many nodes one token may join. */
  token_uses: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 10_000)), { default: () => 1 }),
  /** Largest join request body accepted, in bytes. */
  max_request_bytes: Schema.optionalWith(Schema.Int.pipe(Schema.between(1024, 1_048_576)), {
    default: () => 65_536,
  }),
  /** Join requests accepted per remote address per minute (refusals included). */
  requests_per_minute: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 10_000)), { default: () => 30 }),
})

/**
 * @since 0.1.0
 * @category models
 */
export type ClusterSettings = typeof ClusterSettings.Type

/**
 * Decodes a `cluster` section written as in a settings file (throws a readable error on invalid input).
 *
 * @since 0.1.0
 * @category constructors
 */
export const decode: (input: unknown) => ClusterSettings = Schema.decodeUnknownSync(ClusterSettings)

/**
 * The defaults (the decoding of an empty section).
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaults: ClusterSettings = decode({})
