/**
 * The receiving end: a TCP (or TLS) listener that accepts the streams of any number of transfers,
 * reassembles each in order into `<dir>/<name>` (via `<name>.amst-part`), acknowledges every chunk
 * once it is written, persists progress so a transfer resumes after a full disconnect or a restart,
 * and checks the sender's SHA-256 before renaming the file into place.
 *
 * Malformed frames close the connection that sent them and are reported as a typed
 * {@link Frame.FrameError} or {@link TransferError.ProtocolError} naming the byte offset.
 *
 * @since 0.1.0
 */
import type * as tls from "node:tls"
import { Deferred, Effect, FiberId, Queue, type Scope } from "effect"
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
  /** TLS server options (certificate, key, and `ca` + `requestCert` for mutual TLS). */
  readonly tls?: tls.TlsOptions | undefined
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
  /** Faults, in order. */
  readonly faults: Queue.Dequeue<Fault>
  /** Waits for the completion of the given transfer (hex id) or of the next one. */
  readonly awaitCompleted: (transferId?: string) => Effect.Effect<Completed>
}

/**
 * Starts a receiver in the current Scope; closing the scope stops it (progress is persisted).
 *
 * @since 0.1.0
 */
export const listen = (options: Options): Effect.Effect<Receiver, ListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const completed = yield* Queue.unbounded<Completed>()
    const faults = yield* Queue.unbounded<Fault>()
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
    const engine = new ReceiverEngine(
      {
        host,
        port: options.port ?? 0,
        dir: options.dir,
        tls: options.tls,
        window: options.window ?? 64 * 1024 * 1024,
        maxFrameSize: options.maxFrameSize ?? 16 * 1024 * 1024,
        persistEvery: options.persistEvery ?? 8 * 1024 * 1024,
      },
      {
        onComplete: (c) => {
          Effect.runSync(Deferred.succeed(waiterFor(c.transferId), c))
          Queue.unsafeOffer(completed, c)
        },
        onFault: (f) => Queue.unsafeOffer(faults, f),
        onProgress: options.onProgress,
      },
    )
    const port = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => engine.listen(),
        catch: (e) =>
          new ListenError({ message: `cannot listen on ${host}:${options.port ?? 0}: ${(e as Error).message}` }),
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
