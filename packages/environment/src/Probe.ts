/**
 * The probe protocol the detector measures with: a responder that echoes 8-byte pings and
 * acknowledges bulk transfers, and a client that measures RTT (median), jitter, loss and
 * bandwidth towards a peer. The responder greets first (`NCPROBE1`); a peer that does not (any
 * other TCP listener, such as a node's cluster port) is measured by TCP connect times, without
 * bandwidth, and is sent no byte at all: it sees plain connect-and-close probes, which the network
 * listener counts as probes rather than as refused handshakes. Peers may be written `node-id@host:port`.
 *
 * @since 0.1.0
 */
import type { AddressInfo } from "node:net"
import { Data, Effect, type Scope } from "effect"
import type { PeerMeasurement } from "./Classify.js"
import * as internal from "./internal/probe.js"

/**
 * The responder could not listen.
 *
 * @since 0.1.0
 */
export class ProbeServerError extends Data.TaggedError("ProbeServerError")<{ readonly reason: string }> {
  override get message(): string {
    return `probe responder cannot listen: ${this.reason}`
  }
}

/**
 * A running responder.
 *
 * @since 0.1.0
 */
export interface Responder {
  readonly host: string
  readonly port: number
  /** `host:port`, as written in `network.peers`. */
  readonly address: string
}

/**
 * Runs a probe responder for the life of the scope. Port 0 picks a free port. `delayMs` holds
 * each echo back (to stand in for a long link in tests and drills).
 *
 * @since 0.1.0
 */
export const serve = (
  options: { readonly host?: string; readonly port?: number; readonly delayMs?: number } = {},
): Effect.Effect<Responder, ProbeServerError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => internal.startServer(options.host ?? "127.0.0.1", options.port ?? 0, options.delayMs ?? 0),
      catch: (e) => new ProbeServerError({ reason: String(e) }),
    }),
    (running) => Effect.promise(() => running.close()),
  ).pipe(
    Effect.map(({ server }) => {
      const a = server.address() as AddressInfo
      const host = a.family === "IPv6" ? `[${a.address}]` : a.address
      return { host: a.address, port: a.port, address: `${host}:${a.port}` }
    }),
  )

/**
 * How hard to probe.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Pings per peer. Default 10. */
  readonly count?: number | undefined
  /** Per ping / per connect timeout in ms; a ping past it counts as lost. Default 1000. */
  readonly timeoutMs?: number | undefined
  /** Bytes sent to measure bandwidth; 0 skips it. Default 8 MiB. */
  readonly bandwidthBytes?: number | undefined
}

/**
 * Measures one peer (`host:port`). Never fails: an unreachable peer has loss 1 and no RTT.
 *
 * @since 0.1.0
 */
export const measure = (peer: string, options: Options = {}): Effect.Effect<PeerMeasurement> =>
  Effect.promise(() =>
    internal.measure(peer, {
      count: options.count ?? 10,
      timeoutMs: options.timeoutMs ?? 1000,
      bandwidthBytes: options.bandwidthBytes ?? 8 * 1024 * 1024,
    }),
  )
