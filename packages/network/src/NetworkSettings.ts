/**
 * The `network` section of the node configuration (same names and defaults as `@novacron/config`).
 *
 * @since 0.1.0
 */
import { Duration as D, ParseResult, Schema } from "effect"

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * A duration written `500ms`, `30s`, `5m` or `1h`, decoded to an effect `Duration`.
 *
 * @since 0.1.0
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
        : ParseResult.fail(new ParseResult.Type(ast, s, 'expected a duration such as "500ms", "30s" or "5m"'))
    },
    encode: (d) => ParseResult.succeed(`${D.toMillis(d)}ms`),
  },
)

/**
 * The `network` section.
 *
 * @since 0.1.0
 */
export const NetworkSettings = Schema.Struct({
  listen_address: Schema.optionalWith(Schema.NonEmptyString, { default: () => "127.0.0.1" }),
  /** 0: any free port. */
  bind_port: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 65535)), { default: () => 7700 }),
  enable_tls: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  max_connections: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 1_000_000)), { default: () => 1000 }),
  /** Bound on establishing a connection: TCP connect, TLS handshake and the Hello/Welcome exchange. */
  conn_timeout: Schema.optionalWith(Duration, { default: () => D.seconds(10) }),
  /** A connection that receives nothing for this long is closed. */
  idle_timeout: Schema.optionalWith(Duration, { default: () => D.minutes(5) }),
  max_frame_size: Schema.optionalWith(Schema.Int.pipe(Schema.between(1024, 2 ** 31)), { default: () => 16_777_216 }),
  peers: Schema.optionalWith(
    Schema.Array(Schema.String.pipe(Schema.pattern(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/))),
    { default: () => [] },
  ),
})

/**
 * @since 0.1.0
 */
export type NetworkSettings = typeof NetworkSettings.Type

/**
 * Decodes a `network` section written as in a settings file (throws on invalid input).
 *
 * @since 0.1.0
 */
export const decode: (input: unknown) => NetworkSettings = Schema.decodeUnknownSync(NetworkSettings)

/**
 * The defaults.
 *
 * @since 0.1.0
 */
export const defaults: NetworkSettings = decode({})

/**
 * Splits `"host:port"` (IPv6 in brackets).
 *
 * @since 0.1.0
 */
export const parseHostPort = (text: string): { readonly host: string; readonly port: number } => {
  const i = text.lastIndexOf(":")
  const host = text.slice(0, i)
  return { host: host.startsWith("[") ? host.slice(1, -1) : host, port: Number(text.slice(i + 1)) }
}
