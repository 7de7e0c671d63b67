/**
 * The `network` section of the node configuration. This package owns it: `@novacron/config`
 * composes this schema (from the `@novacron/network/NetworkSettings` subpath) into `novacron.yaml`.
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

// Messages name the key: this schema is also decoded on its own (tests, tools), outside the loader.
// `override`: a value of the wrong type gets the same message as one out of range.
const durationBetween = (key: string, min: D.Duration, max: D.Duration) =>
  Duration.pipe(Schema.filter((d) => D.between(d, { minimum: min, maximum: max }))).annotations({
    message: () => ({
      message: `network.${key} must be between ${D.format(min)} and ${D.format(max)} (a duration such as "500ms", "30s" or "5m")`,
      override: true,
    }),
  })

const intBetween = (key: string, min: number, max: number) =>
  Schema.Int.pipe(Schema.filter((n) => n >= min && n <= max)).annotations({
    message: (issue) => ({
      message: `network.${key} must be an integer from ${min} to ${max}, got ${String(issue.actual)}`,
      override: true,
    }),
  })

const allowed = (message: string) => ({ message: () => ({ message, override: true }) })
const opt = <S extends Schema.Schema.AnyNoContext>(schema: S, value: () => Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: value, exact: true })

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
  listen_address: opt(Schema.NonEmptyString.annotations(allowed("expected an address")), () => "127.0.0.1"),
  /** 0: any free port. */
  bind_port: opt(Common.Port, () => 7700),
  enable_tls: opt(Schema.Boolean.annotations(allowed("expected true or false")), () => true),
  max_connections: opt(intBetween("max_connections", 1, 1_000_000), () => 1000),
  /** Inbound connections (handshaking ones included) from one IP address. */
  max_connections_per_ip: opt(intBetween("max_connections_per_ip", 1, 1_000_000), () => DEFAULT_MAX_CONNECTIONS_PER_IP),
  /**
   * Bound on establishing a connection: TCP connect, TLS handshake and the Hello/Welcome exchange
   * (100 ms to 10 minutes: 0 would refuse every peer).
   */
  conn_timeout: opt(durationBetween("conn_timeout", D.millis(100), D.minutes(10)), () => D.seconds(10)),
  /** A connection that receives nothing for this long is closed. */
  idle_timeout: opt(Duration, () => D.minutes(5)),
  /** Largest application frame payload, 1 KiB to 1 GiB. */
  max_frame_size: opt(intBetween("max_frame_size", 1024, 2 ** 30), () => 16_777_216),
  /** `host:port` or `node-id@host:port` (the node id is then checked against the peer's certificate). */
  peers: opt(
    Schema.Array(
      Schema.String.pipe(
        Schema.filter((s) => PEER_PATTERN.test(s), {
          message: (issue) => `network.peers: expected "host:port" or "node-id@host:port", got ${String(issue.actual)}`,
        }),
      ),
    ),
    () => [],
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
