/**
 * The `cluster` section of the node configuration: where a seed serves joins and how long the join
 * tokens it creates live. Exported on its own subpath (`@novacron/cluster/ClusterSettings`) so the
 * configuration loader can take the schema without loading the join server.
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Duration as D, Schema } from "effect"

/**
 * A duration written `500ms`, `30s`, `5m` or `1h` (the configuration's one duration schema,
 * from `@novacron/init/CommonSettings`; encodes as `"30s"`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Duration = Common.Duration

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
  join_port: Schema.optionalWith(Common.Port, { default: () => 7790, exact: true }),
  /** Address written into join tokens. Empty: `<network.listen_address>:<join_port>`. */
  join_address: Schema.optionalWith(Schema.Union(Schema.Literal(""), HostPort), {
    default: () => "" as const,
    exact: true,
  }),
  /** Lifetime of a new join token. */
  token_ttl: Schema.optionalWith(Duration, { default: () => D.hours(24), exact: true }),
  /** How many nodes one token may join. */
  token_uses: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 10_000)), { default: () => 1, exact: true }),
  /** Largest join request body accepted, in bytes. */
  max_request_bytes: Schema.optionalWith(Common.bytes(1024, 1_048_576), { default: () => 65_536, exact: true }),
  /** Join requests accepted per remote address per minute (refusals included). */
  requests_per_minute: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 10_000)), {
    default: () => 30,
    exact: true,
  }),
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
