/**
 * DWCP on a running node: the receiver every node runs (v3 multi-stream and v1 single-stream
 * transfers land in the same AMST receiver, over mutual TLS with the node CA), its endpoint and
 * offer published in the cluster state under a lease, and peers resolved from there. The host
 * supplies the node's TLS material and its cluster state store; this module does the rest.
 *
 * @since 0.1.0
 */
import { X509Certificate } from "node:crypto"
import { mkdirSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { networkInterfaces } from "node:os"
import { join } from "node:path"
import type * as tls from "node:tls"
import type { Receiver, TransferError, TransportSettings } from "@novacron/dwcp-amst"
import type { StateStore } from "@novacron/dwcp-ass"
import type { CompressionSettings } from "@novacron/dwcp-hde/HdeSettings"
import { BootStatus } from "@novacron/init"
import { Cause, Context, Deferred, type Duration, Effect, Either, Exit, Layer, Option, Queue, Schedule } from "effect"
import * as Dwcp from "./Dwcp.js"
import * as Endpoint from "./Endpoint.js"
import * as Engine from "./Engine.js"
import type { LinkClassifier } from "./LinkClassifier.js"
import * as Parts from "./Parts.js"
import type * as Rollout from "./Rollout.js"

/**
 * The node's TLS material and how it checks a peer's certificate (the security service's).
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeTls {
  readonly cert: string
  readonly key: string
  readonly ca: string
  /** Whether a verified certificate belongs to a cluster node (not an operator's client certificate). */
  readonly isNode: (cert: X509Certificate) => boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<R> {
  readonly nodeId: string
  /** Received transfers are written under `<dataDir>/dwcp/inbox`. */
  readonly dataDir: string
  readonly flags: Rollout.Flags
  readonly transport: TransportSettings.TransportSettings
  readonly compression: CompressionSettings
  /** Where the receiver listens; port 0 picks a free one (it is published either way). */
  readonly listen: { readonly host: string; readonly port: number }
  /** The address peers dial; default: the listen address, or the first external IPv4 when it listens on all. */
  readonly advertise?: string | undefined
  /** The node's TLS (from the security service); absent = plain TCP, for loopback tests only. */
  readonly tls?: Effect.Effect<NodeTls, never, R> | undefined
  /** The node's cluster state store (from the `state-sync` component). */
  readonly store: Effect.Effect<StateStore.StateStoreApi, never, R>
  /** TTL of the published endpoint (default 15 s). */
  readonly endpointTtl?: Duration.DurationInput | undefined
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
  /** How the part packages and AMST are imported (see {@link Parts.Importer}). */
  readonly importer?: Parts.Importer | undefined
}

/**
 * What the node receives: completed transfers (verified, in place under the inbox) and the
 * receiver's address.
 *
 * @since 0.1.0
 * @category models
 */
export interface InboxService {
  /** The published address, once the receiver listens (it starts after READY on a booting node). */
  readonly address: Effect.Effect<{ readonly host: string; readonly port: number }, TransferError.ListenError>
  /** `listening`, `starting`, or why the receiver could not listen. */
  readonly receiver: Effect.Effect<ReceiverState>
  /** The next completed transfer. */
  readonly take: Effect.Effect<Receiver.Completed>
  /** Reads and decodes a received transfer (its DWCP envelope); `maxSize` bounds the output. */
  readonly open: (completed: Receiver.Completed, maxSize: number) => Effect.Effect<Uint8Array, Dwcp.OpenError>
}

/**
 * @since 0.1.0
 * @category models
 */
export type ReceiverState =
  | { readonly _tag: "starting" }
  | { readonly _tag: "listening"; readonly host: string; readonly port: number }
  | { readonly _tag: "failed"; readonly reason: string }

/**
 * @since 0.1.0
 * @category tags
 */
export class Inbox extends Context.Tag("@novacron/dwcp/Inbox")<Inbox, InboxService>() {}

const external = (): string | undefined => {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address
  }
  return undefined
}

/**
 * The address published for `listen` (see {@link Options.advertise}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const advertised = (listenHost: string, advertise?: string): string =>
  advertise !== undefined && advertise !== ""
    ? advertise
    : listenHost === "0.0.0.0" || listenHost === "::"
      ? (external() ?? "127.0.0.1")
      : listenHost

// Clients check the server's certificate names the peer they meant, not the host they dialed.
const clientTls = (t: NodeTls, peer: string): tls.ConnectionOptions => ({
  cert: t.cert,
  key: t.key,
  ca: t.ca,
  minVersion: "TLSv1.2",
  checkServerIdentity: (_host, cert) =>
    cert.subject?.CN === peer
      ? undefined
      : new Error(`server certificate names "${cert.subject?.CN}", expected "${peer}"`),
})

/**
 * Starts the receiver, publishes the endpoint, and builds the DWCP service on the packages'
 * engines with peers resolved from the cluster state.
 *
 * @since 0.1.0
 * @category constructors
 */
export const layer = <R>(
  options: Options<R>,
): Layer.Layer<Dwcp.Dwcp | Inbox, TransferError.ListenError, LinkClassifier | R> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const store = yield* options.store
      const nodeTls = options.tls === undefined ? undefined : yield* options.tls
      const retry = options.retry ?? Schedule.exponential("1 second").pipe(Schedule.union(Schedule.spaced("1 minute")))
      const link: Parts.Link = {
        resolve: (peer) =>
          Effect.flatMap(
            store
              .get(Endpoint.key(peer))
              .pipe(
                Effect.mapError(
                  (e) => new Engine.TransferFailed({ peer, reason: `resolving its endpoint: ${e.message}` }),
                ),
              ),
            (entry) =>
              Option.match(entry, {
                onNone: () =>
                  Effect.fail(
                    new Engine.TransferFailed({
                      peer,
                      reason: `no DWCP endpoint for it in the cluster state (${Endpoint.key(peer)})`,
                    }),
                  ),
                onSome: (e) =>
                  Either.match(Endpoint.decode(peer, e.value), {
                    onLeft: (reason) => Effect.fail(new Engine.TransferFailed({ peer, reason })),
                    onRight: (r) => Effect.succeed({ host: r.host, port: r.port }),
                  }),
              }),
          ),
        tlsFor: nodeTls === undefined ? undefined : (peer) => clientTls(nodeTls, peer),
      }
      const importer = options.importer ?? Parts.nativeImport
      const base = yield* Dwcp.make({
        nodeId: options.nodeId,
        flags: options.flags,
        v3: Parts.fromPackages({
          transport: options.transport,
          compression: options.compression,
          link,
          stateStore: store,
          importer,
        }),
        v1Transport: Parts.v1Transport(options.transport, link, importer),
        retry: options.retry,
      })

      // The receiver is what v1 needs too: without it the node cannot take a transfer at all.
      const dir = join(options.dataDir, "dwcp", "inbox")
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      type Listening = {
        readonly rx: Receiver.Receiver
        readonly address: { readonly host: string; readonly port: number }
        readonly Receiver: typeof import("@novacron/dwcp-amst")["Receiver"]
      }
      const listening = yield* Deferred.make<Listening, TransferError.ListenError>()
      const start = Effect.gen(function* () {
        const { Receiver } = yield* Effect.promise(
          () => importer("@novacron/dwcp-amst") as Promise<typeof import("@novacron/dwcp-amst")>,
        )
        const rx = yield* Receiver.listen({
          dir,
          host: options.listen.host,
          port: options.listen.port,
          tls: nodeTls === undefined ? undefined : { cert: nodeTls.cert, key: nodeTls.key, ca: nodeTls.ca },
          authorizePeer:
            nodeTls === undefined
              ? undefined
              : (peer) => {
                  try {
                    return nodeTls.isNode(new X509Certificate(peer.raw))
                  } catch {
                    return false
                  }
                },
        })
        const address = { host: advertised(options.listen.host, options.advertise), port: rx.port }
        yield* Effect.logInfo(
          `DWCP receiver on ${options.listen.host}:${rx.port}, published as ${address.host}:${rx.port}`,
        ).pipe(Effect.annotateLogs({ name: "dwcp.listening", host: address.host, port: rx.port }))
        return { rx, address, Receiver }
      })
      // On a booting node the receiver starts after READY: AMST is an ES module with its own copy of
      // effect, and loading it took ~450 ms of the boot otherwise. Without a kernel (tests, tools) it
      // starts now, and a port it cannot take fails the layer.
      const boot = yield* Effect.serviceOption(BootStatus)
      if (Option.isNone(boot)) {
        yield* Deferred.succeed(listening, yield* start)
      } else {
        yield* Effect.forkScoped(
          Effect.zipRight(
            boot.value.booted,
            Effect.flatMap(Effect.exit(start), (exit) =>
              Effect.zipRight(
                Exit.isFailure(exit)
                  ? Effect.logError(
                      `DWCP receiver did not start: ${Exit.match(exit, { onFailure: (c) => String(c), onSuccess: () => "" })}`,
                    ).pipe(Effect.annotateLogs({ name: "dwcp.listen_failed" }))
                  : Effect.void,
                Deferred.done(listening, exit),
              ),
            ),
          ),
        )
      }
      const address = Effect.map(Deferred.await(listening), (l) => l.address)

      // The endpoint lives under a lease: re-published after the lease is lost (store failover).
      const publish = Effect.gen(function* () {
        const { address } = yield* Deferred.await(listening)
        const lease = yield* store.lease(options.endpointTtl ?? "15 seconds")
        const offer = yield* base.offer
        yield* store.put(Endpoint.key(options.nodeId), Endpoint.encode({ ...address, offer }), { lease })
        yield* lease.lost
        return yield* Effect.fail(`lease ${lease.id} lost`)
      }).pipe(
        Effect.scoped,
        Effect.tapError((e) =>
          Effect.logWarning(
            `DWCP: publishing this node's endpoint failed (${typeof e === "string" ? e : e.message}); retrying`,
          ),
        ),
        Effect.retry(retry),
      )
      yield* Effect.forkScoped(Effect.ignore(publish))
      yield* Effect.addFinalizer(() => Effect.ignore(store.delete(Endpoint.key(options.nodeId))))

      const peerOffer = (peer: string) =>
        store.get(Endpoint.key(peer)).pipe(
          Effect.map((e) =>
            Option.flatMap(e, (entry) => Option.getRight(Endpoint.decode(peer, entry.value))).pipe(
              Option.map((r) => r.offer),
              Option.getOrUndefined,
            ),
          ),
          Effect.orElseSucceed(() => undefined),
        )
      const service: Dwcp.Service = {
        ...base,
        // The peer's published offer is what this node negotiates against when the caller has none.
        send: (request) =>
          Effect.flatMap(
            request.peerOffer === undefined ? peerOffer(request.peer) : Effect.succeed(request.peerOffer),
            (offer) => base.send({ ...request, peerOffer: offer }),
          ),
      }
      const inbox: InboxService = {
        address,
        receiver: Effect.flatMap(Deferred.isDone(listening), (done) =>
          done
            ? Effect.map(
                Effect.exit(Deferred.await(listening)),
                (e): ReceiverState =>
                  Exit.isSuccess(e)
                    ? { _tag: "listening", ...e.value.address }
                    : { _tag: "failed", reason: Cause.pretty(e.cause).split("\n")[0] ?? "" },
              )
            : Effect.succeed<ReceiverState>({ _tag: "starting" }),
        ),
        take: Effect.flatMap(Deferred.await(listening), (l) => Queue.take(l.rx.completed)).pipe(Effect.orDie),
        // The receiving side of a transfer: a child of the sender's dwcp.send span (its traceparent
        // came in the AMST HELLO), so one transfer is one trace over both nodes.
        open: (completed, maxSize) =>
          Effect.flatMap(
            Effect.tryPromise({
              try: () => readFile(completed.path),
              catch: (e) => new Engine.BadPayload({ reason: `reading ${completed.path}: ${String(e)}`, offset: 0 }),
            }),
            (bytes) => base.open(bytes, maxSize),
          ).pipe(
            Effect.withSpan("dwcp.receive", {
              kind: "consumer",
              attributes: { "dwcp.wire_bytes": completed.size, "dwcp.resumed_from": completed.resumedFrom },
            }),
            (self) =>
              Effect.flatMap(Deferred.await(listening).pipe(Effect.orDie), (l) =>
                l.Receiver.continueTrace(completed)(self),
              ),
          ),
      }
      return Context.make(Dwcp.Dwcp, service).pipe(Context.add(Inbox, inbox))
    }),
  )
