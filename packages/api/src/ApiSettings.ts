/**
 * The `api:` section of `novacron.yaml`, owned here and composed by `@novacron/config` (imported
 * on this subpath, so the config does not load the HTTP stack).
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Duration, Schema } from "effect"

const w = Common.withDefault

/**
 * The API's default port: beside health (7780) and metrics (7781), clear of Prometheus (9090).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultPort = 7782

/**
 * The gRPC server's default port: next to the REST API's.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultGrpcPort = 7783

/**
 * @since 0.1.0
 * @category schemas
 */
export const ApiSettings = Schema.Struct({
  /** Serve the API. `false`: the node runs without one (the boot table's row stays empty). */
  enabled: w(Common.bool, () => true),
  /**
   * Where the API listens. Loopback by default; `security.auth_method: none` is refused on any
   * other address.
   */
  listen_address: w(Common.nonEmpty("address"), () => "127.0.0.1"),
  port: w(Common.Port, () => defaultPort),
  /** The gRPC server's port (HTTP/2 + TLS, same auth as REST); 0: any free port. */
  grpc_port: w(Common.Port, () => defaultGrpcPort),
  /** Largest request body accepted (413 above it). */
  max_body_bytes: w(Common.bytes(1024, 64 * 1024 * 1024), () => 1024 * 1024),
  /** Sustained requests per second per principal (429 above it); 0 turns the limit off. */
  rate_limit: w(Common.int(0, 1_000_000), () => 100),
  /** Requests a principal may send at once above the sustained rate. */
  rate_burst: w(Common.int(1, 1_000_000), () => 200),
  /** How long open requests may finish on shutdown before their connections are closed. */
  shutdown_grace: w(Common.durationBetween(0, "1 minute"), () => Duration.seconds(2)),
})

/**
 * @since 0.1.0
 * @category models
 */
export type ApiSettings = typeof ApiSettings.Type

/**
 * The defaults (the decoding of an empty section).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: ApiSettings = Schema.decodeUnknownSync(ApiSettings)({})

/**
 * Decodes a raw section (throws a readable error on invalid input).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode: (input: unknown) => ApiSettings = Schema.decodeUnknownSync(ApiSettings)
