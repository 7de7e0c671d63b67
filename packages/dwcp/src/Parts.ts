/**
 * The real engines: each v3 part from its package (AMST, ACP, HDE, PBA, ITP; state sync from the
 * node's `StateStore`), and the v1 transport (one TLS stream through the same AMST receiver, so a
 * v1 sender and a v3 receiver, or the reverse, interoperate). Each start runs in the part's own
 * scope, so a failed part's workers, sockets and connections are released before it is retried.
 *
 * Each part's package is imported when the part first starts, not with this module: a part that
 * is off (flag, rollout) never loads its package or native addon, and a node on v1 pays for AMST
 * alone (measured in apps/node/bench/RESULTS.md).
 *
 * @since 0.1.0
 */
import type * as tls from "node:tls"
import type { Amst, TransportSettings } from "@novacron/dwcp-amst"
import type { StateStore } from "@novacron/dwcp-ass"
import type { Hde } from "@novacron/dwcp-hde"
import type { CompressionSettings } from "@novacron/dwcp-hde/HdeSettings"
import { Effect, Either, Option, type Redacted, Schema, Scope } from "effect"
import type { Congestion, V3Engines } from "./Dwcp.js"
import * as Engine from "./Engine.js"
import { type Name, PartFailure } from "./Part.js"

/**
 * Where a peer's DWCP receiver listens, and how to reach it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Link {
  /** `host:port` of the peer's AMST receiver (the node's id → address is the host's). */
  readonly resolve: (
    peer: string,
  ) => Effect.Effect<{ readonly host: string; readonly port: number }, Engine.TransferFailed>
  /** Client TLS (the node certificate, the cluster CA); absent = plain TCP, for tests on loopback. */
  readonly tls?: tls.ConnectionOptions | undefined
  /** Client TLS for one peer (e.g. checking its certificate names it); wins over `tls`. */
  readonly tlsFor?: ((peer: string) => tls.ConnectionOptions) | undefined
  readonly token?: Redacted.Redacted<string> | undefined
}

/**
 * Imports an ES module by specifier. A host that runs this package from a CommonJS bundle passes its
 * own (Node 20 drops the `import()` callback in scripts compiled from a code cache).
 *
 * @since 0.1.0
 * @category models
 */
export type Importer = (specifier: string) => Promise<unknown>

/**
 * `import()` itself.
 *
 * @since 0.1.0
 * @category constructors
 */
export const nativeImport: Importer = (specifier) => import(specifier)

// Lazy package loads: a failed import is the part failing to start (so it runs v1 and is retried).
const load = <M>(part: Name, name: string, importer: Importer): Effect.Effect<M, PartFailure> =>
  Effect.tryPromise({
    try: () => importer(name) as Promise<M>,
    catch: (e) =>
      new PartFailure({ part, reason: `${name} did not load: ${e instanceof Error ? e.message : String(e)}` }),
  })
type AmstModule = typeof import("@novacron/dwcp-amst")

const amstSend = (
  importer: Importer,
  service: Amst.Service,
  link: Link,
  request: Parameters<Engine.Transport["send"]>[0],
  streams: number | undefined,
): Effect.Effect<Engine.Delivery, Engine.TransferFailed> =>
  Effect.gen(function* () {
    const at = yield* link.resolve(request.peer)
    const { Source } = yield* load<AmstModule>("transport", "@novacron/dwcp-amst", importer).pipe(
      Effect.mapError((e) => new Engine.TransferFailed({ peer: request.peer, reason: e.reason })),
    )
    const r = yield* service
      .send({
        host: at.host,
        port: at.port,
        source: Source.fromBuffer(request.payload, request.name),
        tls: link.tlsFor?.(request.peer) ?? link.tls,
        token: link.token,
        streams,
        mode: request.row.transport === "rdma-multistream" ? "datacenter" : request.row.linkClass,
        predictedBandwidth: request.predictedBps === undefined ? undefined : () => request.predictedBps,
        onSocket: request.onSocket,
      })
      .pipe(Effect.mapError((e) => new Engine.TransferFailed({ peer: request.peer, reason: e.message })))
    return {
      bytes: r.size,
      streams: streams ?? 0,
      carrier:
        streams === 1
          ? link.tls || link.tlsFor
            ? "tls-single"
            : "tcp-single"
          : `${request.row.transport} (${r.transport.transport}: ${r.transport.reason})`,
    }
  })

/**
 * v1 transport: AMST with one stream and its controller off (AMST is loaded on the first send).
 *
 * @since 0.1.0
 * @category engines
 */
export const v1Transport = (
  settings: TransportSettings.TransportSettings,
  link: Link,
  importer: Importer = nativeImport,
): Engine.Transport => {
  const service = memo(
    Effect.flatMap(load<AmstModule>("transport", "@novacron/dwcp-amst", importer), ({ Amst }) =>
      Amst.make({ ...settings, enable_rdma: false }),
    ),
  )
  return {
    send: (request) =>
      Effect.flatMap(
        service.pipe(Effect.mapError((e) => new Engine.TransferFailed({ peer: request.peer, reason: e.reason }))),
        (s) => amstSend(importer, s, link, request, 1),
      ),
  }
}

/**
 * State sync on the node's cluster state store (etcd in Raft mode, the node database alone).
 *
 * @since 0.1.0
 * @category engines
 */
export const stateSync = (store: StateStore.StateStoreApi): Engine.StateSync => {
  const broken = (e: { readonly _tag: string; readonly message: string }) =>
    new PartFailure({ part: "state_sync", reason: `${e._tag}: ${e.message}` })
  return {
    kind: store.mode === "etcd" ? "etcd (raft)" : "local",
    put: (k, v) => Effect.asVoid(store.put(k, v)).pipe(Effect.mapError(broken)),
    get: (k) =>
      Effect.map(
        store.get(k),
        Option.map((e) => e.value),
      ).pipe(Effect.mapError(broken)),
  }
}

/**
 * The v3 engines from the packages, with the settings the host decoded. State sync uses the
 * node's cluster state store (the `state-sync` component's); without one it stays on v1.
 *
 * @since 0.1.0
 * @category engines
 */
export const fromPackages = (options: {
  readonly transport: TransportSettings.TransportSettings
  readonly compression: CompressionSettings
  readonly link: Link
  /** The node's cluster state store; absent = state sync has no v3 (it runs v1, node-local). */
  readonly stateStore?: StateStore.StateStoreApi | undefined
  readonly importer?: Importer | undefined
}): V3Engines => {
  const importer = options.importer ?? nativeImport
  return {
    transport: Effect.flatMap(load<AmstModule>("transport", "@novacron/dwcp-amst", importer), ({ Amst }) =>
      Effect.map(Amst.make(options.transport), (service) => ({
        send: (request) => amstSend(importer, service, options.link, request, undefined),
      })),
    ),
    congestion: Effect.flatMap(
      load<typeof import("@novacron/dwcp-acp")>("congestion", "@novacron/dwcp-acp", importer),
      ({ Acp, CongestionControl }) =>
        Effect.map(
          Acp.make(Schema.decodeSync(Acp.Settings)({ congestion_algorithm: options.transport.congestion_algorithm })),
          (): Congestion => ({
            order: (row) =>
              Effect.succeed({
                order: row.congestion,
                // A socket that refuses every algorithm keeps the kernel default: not worth dropping it.
                onSocket: (socket) =>
                  CongestionControl.apply(socket, row.congestion, `mode table: ${row.mode}/${row.linkClass}`).pipe(
                    Effect.tapError((e) => Effect.logDebug(`ACP: ${e._tag}`)),
                    Effect.ignore,
                  ),
              }),
          }),
        ),
    ),
    compression: Effect.gen(function* () {
      const scope = yield* Effect.scope
      const [{ Hde }, { CompressionSettings }] = yield* Effect.all([
        load<typeof import("@novacron/dwcp-hde")>("compression", "@novacron/dwcp-hde", importer),
        load<typeof import("@novacron/dwcp-hde/HdeSettings")>(
          "compression",
          "@novacron/dwcp-hde/HdeSettings",
          importer,
        ),
      ])
      // One HDE per row's compression (at most three), built when a row first asks for it.
      const byRow = new Map<string, Effect.Effect<Hde.Hde, PartFailure>>()
      const hdeFor = (c: { algorithm: string; level: number }) => {
        const key = `${c.algorithm}:${c.level}`
        let got = byRow.get(key)
        if (got === undefined) {
          const settings = Schema.decodeUnknownSync(CompressionSettings)({ ...options.compression, ...c })
          got = memo(
            Hde.make(settings).pipe(
              Scope.extend(scope),
              Effect.mapError((e) => new PartFailure({ part: "compression", reason: e.message })),
            ),
          )
          byRow.set(key, got)
        }
        return got
      }
      const decoder = yield* hdeFor({ algorithm: options.compression.algorithm, level: options.compression.level })
      const fail = (e: { readonly message: string }) => new PartFailure({ part: "compression", reason: e.message })
      return {
        encoding: "hde",
        encode: (data, o) =>
          Effect.flatMap(hdeFor(o.compression), (h) =>
            h.encode(data, o.objectId ? { objectId: o.objectId } : undefined).pipe(Effect.mapError(fail)),
          ),
        decode: (data, maxSize) =>
          decoder
            .decode(data, { maxSize })
            .pipe(Effect.mapError((e) => new Engine.BadPayload({ reason: e.message, offset: e.offset }))),
      } satisfies Engine.Compression
    }),
    prediction: Effect.flatMap(
      load<typeof import("@novacron/dwcp-pba")>("prediction", "@novacron/dwcp-pba", importer),
      ({ Pba }) =>
        // No model of its own: the agent's one model is the ML engine's, served through
        // `Dwcp.setPredictor`; until then (or without an ML engine) PBA's baseline predicts.
        Effect.map(
          Pba.make(Schema.decodeSync(Pba.PbaSettings)({ enableV3Prediction: true, loadModel: false })),
          (pba): Engine.Prediction => ({
            predict: (peer, served) =>
              Effect.map(pba.predict(peer, served), (p) =>
                p.status === "ok" ? { bps: p.oneSecond.mean, predictor: p.predictor } : undefined,
              ),
            observe: (peer, bps) => pba.push(peer, bps),
            baseline: pba.baseline,
          }),
        ),
    ),
    state_sync:
      options.stateStore === undefined
        ? Effect.fail(new PartFailure({ part: "state_sync", reason: "this node has no cluster state store" }))
        : Effect.succeed(stateSync(options.stateStore)),
    placement: Effect.map(
      load<typeof import("@novacron/dwcp-itp")>("placement", "@novacron/dwcp-itp", importer),
      ({ Scheduler }) => ({
        place: (w: Engine.WorkloadRequest, hosts: ReadonlyArray<Engine.HostSpec>) =>
          Effect.suspend(() => {
            // ITP decides on this snapshot: each host's capacity is what it has free now.
            const s = Scheduler.make()
            for (const h of hosts) {
              const j = s.join(h)
              if (Either.isLeft(j))
                return Effect.fail(new Engine.NoHostFits({ workload: w.id, reason: `host ${h.id}: ${j.left._tag}` }))
            }
            const r = s.place(w)
            return Either.isRight(r)
              ? Effect.succeed(r.right.allocation.host)
              : Effect.fail(
                  new Engine.NoHostFits({ workload: w.id, reason: `${r.left._tag}: ${JSON.stringify(r.left)}` }),
                )
          }),
      }),
    ),
  }
}

// The first caller runs it, later callers share its result.
const memo = <A, E>(self: Effect.Effect<A, E>): Effect.Effect<A, E> => Effect.runSync(Effect.cached(self))
