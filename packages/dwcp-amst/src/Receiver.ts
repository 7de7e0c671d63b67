/**
 * The receiving end: a TCP (or TLS) listener that accepts the streams of any number of transfers,
 * reassembles each in order into a private staging directory (`<dir>/.amst-staging`, mode 0700,
 * files 0600 opened without following links), acknowledges every chunk once it is written,
 * persists progress so a transfer resumes after a full disconnect or a restart, checks the
 * sender's digest (XXH3-64, or SHA-256 over plain TCP with a token) and links the file into place as `<dir>/<name>`. An existing file is never
 * replaced: the transfer is refused with `exists`.
 *
 * Senders must authenticate: by a client certificate from `tls.ca` (mutual TLS, optionally checked
 * by `authorizePeer`), or by proving `token` in their HELLO. An unauthenticated listener is only
 * allowed on a loopback address (or with `allowUnauthenticated`). Connections, transfers and
 * reorder memory are capped; a stream must say HELLO within `helloTimeout`; a transfer whose last
 * stream is gone releases its file and hashing worker after `releaseAfter`.
 *
 * Malformed frames close the connection that sent them and are reported as a typed
 * {@link Frame.FrameError} or {@link TransferError.ProtocolError} naming the byte offset.
 *
 * @since 0.1.0
 */
import { isIP } from "node:net"
import type * as tls from "node:tls"
import { TraceContext } from "@novacron/wire"
import { Deferred, Duration, Effect, FiberId, Queue, Redacted, type Scope } from "effect"
import type { FrameError } from "./Frame.js"
import { type Completed, ReceiverEngine, type ReceiverFault, type ReceiverProgress } from "./internal/receiver.js"
import { ListenError, type ProtocolError } from "./TransferError.js"

/**
 * A transfer written and verified.
 *
 * @since 0.1.0
 */
export type { Completed, ReceiverProgress }

/**
 * A connection closed for breaking the protocol, or a transfer that failed verification.
 *
 * @since 0.1.0
 */
export interface Fault extends ReceiverFault {
  readonly error: FrameError | ProtocolError | Error
}

/**
 * Receiver options.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Directory the files are written to. */
  readonly dir: string
  readonly host?: string | undefined
  /** 0 (default) picks a free port. */
  readonly port?: number | undefined
  /**
   * TLS server options. With `ca` (the node CA) client certificates are required and verified
   * (mutual TLS) unless `requestCert: false` is given.
   */
  readonly tls?: tls.TlsOptions | undefined
  /**
   * Identity check of a verified client certificate (e.g. its CN against the cluster's nodes).
   *
   * @since 0.2.0
   */
  readonly authorizePeer?: ((peer: tls.PeerCertificate) => boolean) | undefined
  /**
   * Shared secret senders prove in their HELLO (HMAC; the token is not sent). For receivers
   * without client certificates, such as the standalone CLI.
   *
   * @since 0.2.0
   */
  readonly token?: Redacted.Redacted<string> | undefined
  /**
   * Accept unauthenticated senders on a non-loopback address. Anyone who can connect can then
   * write files into `dir`.
   *
   * @since 0.2.0
   */
  readonly allowUnauthenticated?: boolean | undefined
  /** Transfers open at once (default 32); more are refused with `busy`. @since 0.2.0 */
  readonly maxTransfers?: number | undefined
  /** Connections at once (default 1024). @since 0.2.0 */
  readonly maxConnections?: number | undefined
  /** Connections at once from one address (default 512: `max_streams` plus reconnects). @since 0.2.0 */
  readonly maxConnectionsPerAddress?: number | undefined
  /** Reorder memory of all transfers together (default 256 MiB): each reserves its window. @since 0.2.0 */
  readonly maxReorderBytes?: number | undefined
  /** A connection must have its HELLO answered within this (default 10 s). @since 0.2.0 */
  readonly helloTimeout?: Duration.DurationInput | undefined
  /** A connection silent this long is closed (default 5 min). @since 0.2.0 */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** A transfer with no stream left releases its file and worker after this (default 30 s). @since 0.2.0 */
  readonly releaseAfter?: Duration.DurationInput | undefined
  /** Reorder buffer bound per transfer, bytes (default 64 MiB); senders keep at most this in flight. */
  readonly window?: number | undefined
  /** Largest frame payload accepted, bytes (default 16 MiB, `network.max_frame_size`). */
  readonly maxFrameSize?: number | undefined
  /** Persist progress every this many bytes (default 8 MiB). */
  readonly persistEvery?: number | undefined
  readonly onProgress?: ((p: ReceiverProgress) => void) | undefined
}

/**
 * A listening receiver.
 *
 * @since 0.1.0
 */
export interface Receiver {
  readonly host: string
  readonly port: number
  /** Completed transfers, in completion order. */
  readonly completed: Queue.Dequeue<Completed>
  /** Faults, in order (the latest 1024 when they are not taken). */
  readonly faults: Queue.Dequeue<Fault>
  /** Waits for the completion of the given transfer (hex id) or of the next one. */
  readonly awaitCompleted: (transferId?: string) => Effect.Effect<Completed>
}

/**
 * Runs `effect` (the work done with a received transfer) as a child of the sender's span, named
 * by the `traceparent` its HELLO carried; unchanged when it carried none.
 *
 * @since 0.2.0
 * @category tracing
 */
export const continueTrace =
  (completed: Completed) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    TraceContext.continueFrom(completed.traceparent)(effect)

/**
 * Starts a receiver in the current Scope; closing the scope stops it (progress is persisted).
 *
 * @since 0.1.0
 */
export const listen = (options: Options): Effect.Effect<Receiver, ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const completed = yield* Queue.unbounded<Completed>()
    // Sliding: a flood of hostile connections must not grow memory when nobody reads the faults.
    const faults = yield* Queue.sliding<Fault>(1024)
    const waiters = new Map<string, Deferred.Deferred<Completed>>()
    const waiterFor = (id: string) => {
      let d = waiters.get(id)
      if (!d) {
        d = Deferred.unsafeMake<Completed>(FiberId.none)
        waiters.set(id, d)
      }
      return d
    }
    const host = options.host ?? "127.0.0.1"
    const tlsOptions = mutualTls(options.tls)
    const certificates = tlsOptions?.requestCert === true && tlsOptions.rejectUnauthorized !== false
    if (!certificates && options.token === undefined && !isLoopback(host) && options.allowUnauthenticated !== true) {
      return yield* new ListenError({
        address: host,
        port: options.port ?? 0,
        reason:
          "no sender authentication on a non-loopback address (give tls.ca for client certificates or a token, " +
          "or allowUnauthenticated)",
      })
    }
    const ms = (d: Duration.DurationInput | undefined, dflt: Duration.DurationInput) =>
      Duration.toMillis(Duration.decode(d ?? dflt))
    const engine = new ReceiverEngine(
      {
        host,
        port: options.port ?? 0,
        dir: options.dir,
        tls: tlsOptions,
        window: options.window ?? 64 * 1024 * 1024,
        maxFrameSize: options.maxFrameSize ?? 16 * 1024 * 1024,
        persistEvery: options.persistEvery ?? 8 * 1024 * 1024,
        token: options.token === undefined ? undefined : Buffer.from(Redacted.value(options.token)),
        authorizePeer: options.authorizePeer,
        maxTransfers: options.maxTransfers ?? 32,
        maxConnections: options.maxConnections ?? 1024,
        maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? 512,
        maxReorderBytes: options.maxReorderBytes ?? 256 * 1024 * 1024,
        helloTimeoutMs: ms(options.helloTimeout, "10 seconds"),
        idleTimeoutMs: ms(options.idleTimeout, "5 minutes"),
        releaseAfterMs: ms(options.releaseAfter, "30 seconds"),
      },
      {
        onComplete: (c) => {
          Effect.runSync(Deferred.succeed(waiterFor(c.transferId), c))
          Queue.unsafeOffer(completed, c)
        },
        // offer (not unsafeOffer) applies the sliding strategy; it never suspends on a sliding queue.
        onFault: (f) => Effect.runSync(Queue.offer(faults, f)),
        onProgress: options.onProgress,
      },
    )
    const port = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => engine.listen(),
        catch: (e) =>
          new ListenError({ address: host, port: options.port ?? 0, reason: (e as Error).message, cause: e }),
      }),
      () => Effect.promise(() => engine.close()),
    )
    return {
      host,
      port,
      completed,
      faults,
      awaitCompleted: (transferId) =>
        transferId === undefined ? Queue.take(completed) : Deferred.await(waiterFor(transferId)),
    } satisfies Receiver
  })

/** With a CA, client certificates are required unless the caller said otherwise. */
const mutualTls = (o: tls.TlsOptions | undefined): tls.TlsOptions | undefined =>
  o?.ca === undefined ? o : { requestCert: true, rejectUnauthorized: true, ...o }

const isLoopback = (host: string) =>
  host === "localhost" || (isIP(host) === 4 ? host.startsWith("127.") : host === "::1")
