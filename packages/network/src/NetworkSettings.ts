/**
 * The `network` section of the node configuration (same names and defaults as `@novacron/config`).
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
 */
export const Duration = Common.Duration

const durationBetween = (key: string, min: D.Duration, max: D.Duration) =>
  Duration.pipe(
    Schema.filter((d) => D.between(d, { minimum: min, maximum: max }), {
      message: () => `network.${key} must be between ${D.format(min)} and ${D.format(max)}`,
    }),
  )

const intBetween = (key: string, min: number, max: number) =>
  Schema.Int.pipe(
    Schema.filter((n) => n >= min && n <= max, {
      message: (issue) => `network.${key} must be an integer from ${min} to ${max}, got ${String(issue.actual)}`,
    }),
  )

/**
 * Default of `max_connections_per_ip`.
 *
 * @since 0.2.0
 */
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 64

/**
 * A configured peer: `host:port`, optionally `node-id@host:port` to pin the node its certificate
 * must name. IPv6 in brackets.
 *
 * @since 0.2.0
 */
export const PEER_PATTERN = /^(?:[^\s@:[\]]+@)?(\[[0-9a-fA-F:.]+\]|[^\s:@[\]]+):\d{1,5}$/

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
  max_connections: Schema.optionalWith(intBetween("max_connections", 1, 1_000_000), { default: () => 1000 }),
  /**
   * Inbound connections (handshaking ones included) from one IP address. Optional in the type so
   * that sections decoded elsewhere (`@novacron/config`) still fit; default 64.
   */
  max_connections_per_ip: Schema.optional(intBetween("max_connections_per_ip", 1, 1_000_000)),
  /**
   * Bound on establishing a connection: TCP connect, TLS handshake and the Hello/Welcome exchange
   * (100 ms to 10 minutes: 0 would refuse every peer).
   */
  conn_timeout: Schema.optionalWith(durationBetween("conn_timeout", D.millis(100), D.minutes(10)), {
    default: () => D.seconds(10),
  }),
  /** A connection that receives nothing for this long is closed. */
  idle_timeout: Schema.optionalWith(Duration, { default: () => D.minutes(5) }),
  /** Largest application frame payload, 1 KiB to 1 GiB. */
  max_frame_size: Schema.optionalWith(intBetween("max_frame_size", 1024, 2 ** 30), { default: () => 16_777_216 }),
  /** `host:port` or `node-id@host:port` (the node id is then checked against the peer's certificate). */
  peers: Schema.optionalWith(
    Schema.Array(
      Schema.String.pipe(
        Schema.filter((s) => PEER_PATTERN.test(s), {
          message: (issue) => `network.peers: expected "host:port" or "node-id@host:port", got ${String(issue.actual)}`,
        }),
      ),
    ),
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
 * Splits `"host:port"` (IPv6 in brackets); a `node-id@` prefix is ignored.
 *
 * @since 0.1.0
 */
export const parseHostPort = (text: string): { readonly host: string; readonly port: number } => {
  const { host, port } = parsePeer(text)
  return { host, port }
}

/**
 * Splits `"node-id@host:port"` or `"host:port"` (IPv6 in brackets).
 *
 * @since 0.2.0
 */
export const parsePeer = (
  text: string,
): { readonly nodeId: string | undefined; readonly host: string; readonly port: number } => {
  const at = text.lastIndexOf("@")
  const nodeId = at > 0 ? text.slice(0, at) : undefined
  const address = at >= 0 ? text.slice(at + 1) : text
  const i = address.lastIndexOf(":")
  const host = address.slice(0, i)
  return { nodeId, host: host.startsWith("[") ? host.slice(1, -1) : host, port: Number(address.slice(i + 1)) }
}
