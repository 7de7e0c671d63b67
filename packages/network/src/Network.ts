/**
 * The node's cluster transport: a TCP listener on `listen_address:bind_port` (TLS when
 * `enable_tls`, mutual TLS when `security.auth_method` is `mtls`), framed messages, and dialing
 * of peers with exponential backoff and jitter.
 *
 * Connection life: the client sends Hello (`node_id`, and `token` with token auth); the server
 * authenticates it (certificate, token or none), checks that the certificate names the Hello's node
 * id (mtls), and answers Welcome, or Refused and closes. Beyond `max_connections` or
 * `max_connections_per_ip` (handshaking sockets count) a new connection is refused. Until
 * authenticated, frames are capped at 16 KiB and the bytes all such connections hold are bounded.
 * A connection that is not established within `conn_timeout` (TLS handshake included), or that is
 * silent for `idle_timeout`, is closed. The dialer checks the server certificate against a pinned
 * node id or fingerprint before its Hello, and the Welcome's node id against the certificate.
 * A malformed or oversized frame closes its connection with a logged reason; nothing throws.
 * When the layer's scope closes the listener stops, every connection gets Goodbye, and the rest
 * are cut after the drain timeout.
 *
 * @since 0.1.0
 */
import type { Authorization, Security } from "@novacron/security"
import { Context, type Duration, Effect, Layer, type Mailbox, type Schedule, type Scope } from "effect"
import type { Connection } from "./Connection.js"
import * as internalBackoff from "./internal/backoff.js"
import * as internal from "./internal/network.js"
import type { DialError, ListenError, NetworkSettingsError } from "./NetworkError.js"
import type { NetworkSettings } from "./NetworkSettings.js"

/**
 * Options beyond the settings section.
 *
 * @since 0.1.0
 */
export interface NetworkOptions {
  /** How long shutdown waits for connections to close after Goodbye. Default 5 s. */
  readonly drainTimeout?: Duration.DurationInput | undefined
  /** Established inbound connections not yet taken from `accepted`. Default 1024; beyond it, refused. */
  readonly acceptBacklog?: number | undefined
  /** Permission an inbound peer's role must hold to be admitted. Default `cluster:message` (admin, node). */
  readonly requiredPermission?: Authorization.Permission | undefined
  /** Token presented to configured `peers` (token auth). */
  readonly peerToken?: string | undefined
  /** Retry schedule of the links to configured `peers`. Default `backoff({ attempts: Infinity })`. */
  readonly peerBackoff?: Schedule.Schedule<unknown> | undefined
  /**
   * Bound on the bytes all not-yet-authenticated inbound connections together may buffer (each is
   * also limited to 16 KiB frames until authenticated). Beyond it the connection is refused. Default 4 MiB.
   *
   * @since 0.2.0
   */
  readonly preAuthBufferBytes?: number | undefined
}

/**
 * Options of one dial.
 *
 * @since 0.1.0
 */
export interface DialOptions {
  /** Token presented in Hello (token auth). */
  readonly token?: string | undefined
  /** Default `conn_timeout`. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Ping every third of `idle_timeout` so that a quiet connection stays open (links to `peers` do). */
  readonly keepAlive?: boolean | undefined
  /**
   * The node the server must be: its certificate must name it (CN or DNS SAN), checked before the
   * Hello (and any token) is sent. Default: the `node-id@` of a `node-id@host:port` target.
   *
   * @since 0.2.0
   */
  readonly nodeId?: string | undefined
  /**
   * SHA-256 fingerprint the server certificate must have (any case, colons optional).
   *
   * @since 0.2.0
   */
  readonly fingerprint?: string | undefined
  /** Client certificate, key and CA overriding the node's own (tools, tests). */
  readonly tls?: { readonly cert?: string; readonly key?: string; readonly ca?: string } | undefined
}

/**
 * The network service.
 *
 * @since 0.1.0
 */
export interface Network {
  /** The bound address (the real port when `bind_port` is 0). */
  readonly address: { readonly host: string; readonly port: number }
  /** Established, authenticated inbound connections, in order. Ends on shutdown. */
  readonly accepted: Mailbox.ReadonlyMailbox<Connection>
  /** Open connections, both sides, including those still handshaking inbound. */
  readonly connectionCount: Effect.Effect<number>
  /**
   * The live outbound connection to each configured peer (`network.peers`). Each peer has a link that
   * dials with backoff, and dials again when the connection closes, until the network shuts down.
   */
  readonly peers: Effect.Effect<ReadonlyMap<string, Connection>>
  /**
   * Connects to `"host:port"` (or `"node-id@host:port"`, pinning the node) once; the connection is
   * closed (Goodbye) when the scope closes.
   */
  readonly dial: (target: string, options?: DialOptions) => Effect.Effect<Connection, DialError, Scope.Scope>
}

/**
 * The service tag.
 *
 * @since 0.1.0
 */
export const Network = Context.GenericTag<Network>("@novacron/network/Network")

/**
 * Starts the listener in the current scope; the scope's close drains it.
 *
 * @since 0.1.0
 */
export const make: (
  settings: NetworkSettings,
  options?: NetworkOptions,
) => Effect.Effect<Network, ListenError | NetworkSettingsError, Scope.Scope | Security.Security> = internal.make

/**
 * The network layer; needs the `Security` service.
 *
 * @since 0.1.0
 */
export const layer = (
  settings: NetworkSettings,
  options?: NetworkOptions,
): Layer.Layer<Network, ListenError | NetworkSettingsError, Security.Security> =>
  Layer.scoped(Network, make(settings, options))

/**
 * Backoff for dialing peers: exponential from `base` (default 100 ms, doubling), each delay capped at
 * `max` (default 30 s) and jittered (×0.8..1.2), for at most `attempts` retries (default 10; `Infinity`).
 *
 * @since 0.1.0
 */
export const backoff: (options?: BackoffOptions) => Schedule.Schedule<unknown> = internalBackoff.backoff

/**
 * @since 0.1.0
 */
export type BackoffOptions = internalBackoff.BackoffOptions

/**
 * Dials with retries on retryable failures (unreachable, timed out, peer at `max_connections`);
 * a refused certificate or token fails at once.
 *
 * @since 0.1.0
 */
export const dialWithRetry = (
  target: string,
  options: DialOptions & { readonly schedule?: Schedule.Schedule<unknown> | undefined } = {},
): Effect.Effect<Connection, DialError, Network | Scope.Scope> =>
  Effect.flatMap(Network, (network) =>
    network
      .dial(target, options)
      .pipe(Effect.retry({ schedule: options.schedule ?? backoff(), while: (e) => e.retryable })),
  )
