/**
 * The DWCP service: "send this state to that peer", "sync this state", "place this workload",
 * with each part behind it. Every part is supervised ({@link Part}): on v3 when its flag and the
 * rollout say so and it runs, on v1 otherwise (v1 = one TLS stream, zstd level 3 framing, no
 * prediction, first-fit placement, node-local state), with health `degraded` naming the part and
 * the cause while a v3 part is down and retried. Each transfer takes its link's row from the
 * {@link LinkClassifier} when it starts and keeps it to the end.
 *
 * @since 0.1.0
 */
import type { Socket } from "node:net"
import type { Component } from "@novacron/init"
import { Context, Data, Effect, Layer, Option, PubSub, type Queue, Ref, type Schedule, type Scope } from "effect"
import * as Engine from "./Engine.js"
import * as Envelope from "./Envelope.js"
import { LinkClassifier } from "./LinkClassifier.js"
import * as ModeTable from "./ModeTable.js"
import * as Negotiation from "./Negotiation.js"
import * as Part from "./Part.js"
import * as Rollout from "./Rollout.js"
import * as V1 from "./V1.js"

/**
 * Which version served each part of one operation.
 *
 * @since 0.1.0
 * @category models
 */
export type Served = Partial<Record<Part.Name, "v3" | "v1">>

/**
 * What a send did.
 *
 * @since 0.1.0
 * @category models
 */
export interface SendReport {
  readonly peer: string
  /** The row the transfer ran on, taken at its start. */
  readonly row: ModeTable.ResolvedRow
  readonly served: Served
  readonly encoding: string
  readonly bytes: number
  readonly wireBytes: number
  readonly delivery: Engine.Delivery
}

/**
 * A finished v3 transfer whose link throughput was predicted: the prediction beside what the
 * transfer measured, for whoever keeps the predictor's accuracy (the ML engine).
 *
 * @since 0.1.0
 * @category models
 */
export interface Observation {
  readonly peer: string
  /** Bytes/s predicted before the transfer. */
  readonly predictedBps: number
  /** Bytes/s measured: wire bytes over the transfer's wall time. */
  readonly measuredBps: number
  readonly predictor: string
  readonly wireBytes: number
}

/**
 * A payload encoded with something this node cannot decode now (e.g. `hde` while compression
 * runs v1 here): the sender must fall back to an encoding both ends have.
 *
 * @since 0.1.0
 * @category errors
 */
export class EncodingUnavailable extends Data.TaggedError("EncodingUnavailable")<{
  readonly encoding: string
  readonly available: ReadonlyArray<string>
}> {
  override get message(): string {
    return `DWCP payload encoded with "${this.encoding}", which this node cannot decode now (it has ${this.available.join(", ")})`
  }
}

/**
 * A payload of a protocol version this node does not speak.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnsupportedVersion extends Data.TaggedError("UnsupportedVersion")<{
  readonly version: number
  readonly supported: ReadonlyArray<number>
}> {
  override get message(): string {
    return `DWCP payload of protocol version ${this.version}; this node speaks ${this.supported.join(", ")}`
  }
}

/**
 * Why a received envelope did not open.
 *
 * @since 0.1.0
 * @category errors
 */
export type OpenError = Envelope.EnvelopeError | UnsupportedVersion | EncodingUnavailable | Engine.BadPayload

/**
 * What `/status` shows.
 *
 * @since 0.1.0
 * @category models
 */
export interface Status {
  readonly nodeId: string
  readonly mode: ModeTable.Mode
  /** The row of a link not measured yet (the mode's), with what this host replaced in it. */
  readonly modeRow: ModeTable.ResolvedRow
  readonly links: ReadonlyArray<{ readonly peer: string; readonly row: ModeTable.ResolvedRow }>
  readonly parts: ReadonlyArray<Part.Status>
  readonly stateStore: string
  /**
   * Which predictor forecasts link throughput: the served one's name (`setPredictor`), else the
   * prediction part's baseline, or `none` while prediction runs v1.
   */
  readonly predictor: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly send: (request: {
    readonly peer: string
    readonly name: string
    readonly data: Uint8Array
    /** Names the object (e.g. a VM's memory) so its next transfer can be a delta. */
    readonly objectId?: string | undefined
    /** What the peer said it takes (handshake); absent = assume it takes what this node sends. */
    readonly peerOffer?: Negotiation.Offer | undefined
  }) => Effect.Effect<SendReport, Engine.TransferFailed | Negotiation.NoCommonVersion>
  /** What this node takes now, for the handshake: every version it speaks, the encodings it can decode. */
  readonly offer: Effect.Effect<Negotiation.Offer>
  /** Decodes a received envelope; `maxSize` bounds the output. */
  readonly open: (bytes: Uint8Array, maxSize: number) => Effect.Effect<Uint8Array, OpenError>
  readonly sync: (key: string, value: string) => Effect.Effect<Served, Engine.SyncFailed>
  readonly read: (key: string) => Effect.Effect<Option.Option<string>, Engine.SyncFailed>
  readonly place: (
    workload: Engine.WorkloadRequest,
    hosts: ReadonlyArray<Engine.HostSpec>,
  ) => Effect.Effect<{ readonly host: string; readonly served: "v3" | "v1" }, Engine.NoHostFits>
  readonly status: Effect.Effect<Status>
  /**
   * Subscribes (until the scope closes) to each finished transfer that had a prediction. Bounded:
   * a subscriber that falls behind loses the oldest; it never slows a transfer.
   */
  readonly observations: Effect.Effect<Queue.Dequeue<Observation>, never, Scope.Scope>
  /**
   * Serves link predictions with `predictor` from now on (the prediction part keeps the histories),
   * also across restarts of the part; `undefined` goes back to the part's baseline. DWCP loads no
   * model itself: the host installs the ML engine's predictor here once both run.
   */
  readonly setPredictor: (predictor: Engine.Predictor | undefined) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Dwcp extends Context.Tag("@novacron/dwcp/Dwcp")<Dwcp, Service>() {}

/**
 * The v3 engines, each started in its own scope (a failed start is retried), and the ACP
 * congestion part, which decides the algorithm order a transport applies to its sockets.
 *
 * @since 0.1.0
 * @category models
 */
export interface V3Engines {
  readonly transport: Effect.Effect<Engine.Transport, unknown, Scope.Scope>
  readonly congestion: Effect.Effect<Congestion, unknown, Scope.Scope>
  readonly compression: Effect.Effect<Engine.Compression, unknown, Scope.Scope>
  readonly prediction: Effect.Effect<Engine.Prediction, unknown, Scope.Scope>
  readonly state_sync: Effect.Effect<Engine.StateSync, unknown, Scope.Scope>
  readonly placement: Effect.Effect<Engine.Placement, unknown, Scope.Scope>
}

/**
 * ACP for the service: the congestion algorithms, best first, for a row (v1: the kernel default).
 *
 * @since 0.1.0
 * @category models
 */
export interface Congestion {
  readonly order: (row: ModeTable.ResolvedRow) => Effect.Effect<
    {
      readonly order: ReadonlyArray<string>
      readonly onSocket?: ((socket: Socket) => Effect.Effect<void>) | undefined
    },
    Part.PartFailure
  >
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly nodeId: string
  readonly flags: Rollout.Flags
  readonly v3: V3Engines
  /** v1 transport: one TLS stream on the cluster listener (the host owns the listener). */
  readonly v1Transport: Engine.Transport
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
}

const v3 = <B>(b: B): readonly [B, "v3" | "v1"] => [b, "v3"]
const v1 = <B>(b: B): readonly [B, "v3" | "v1"] => [b, "v1"]

/**
 * Starts every part and the service in the current scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, never, LinkClassifier | Scope.Scope> =>
  Effect.gen(function* () {
    const classifier = yield* LinkClassifier
    const off = Rollout.decide(options.flags, options.nodeId)
    const local = V1.localState()
    const opts = (name: Part.Name) => ({ off: off[name], retry: options.retry })
    // What v1 kept while the store was down is written through before v3 serves again.
    const replay = (store: Engine.StateSync) =>
      Effect.gen(function* () {
        const pending = yield* local.drain
        for (const [k, v] of pending) {
          yield* store
            .put(k, v)
            .pipe(
              Effect.catchAll((e) =>
                Effect.logWarning(
                  `DWCP state_sync: replaying ${k} into the v3 store failed (${e.message}); kept on v1`,
                ).pipe(Effect.zipRight(local.put(k, v))),
              ),
            )
        }
        if (pending.length > 0)
          yield* Effect.logInfo(`DWCP state_sync: ${pending.length} keys written on v1 replayed into v3`)
      })
    // The parts start side by side: the slowest, not the sum, is what boot waits for.
    const [transport, congestion, compression, prediction, placement, stateSync] = yield* Effect.all(
      [
        Part.make("transport", options.v3.transport, opts("transport")),
        Part.make("congestion", options.v3.congestion, opts("congestion")),
        Part.make("compression", options.v3.compression, opts("compression")),
        Part.make("prediction", options.v3.prediction, opts("prediction")),
        Part.make("placement", options.v3.placement, opts("placement")),
        Part.make("state_sync", options.v3.state_sync, {
          ...opts("state_sync"),
          onRecover: (store: Engine.StateSync) => Effect.orDie(replay(store)),
        }),
      ],
      { concurrency: "unbounded" },
    )
    const parts = [transport, congestion, compression, prediction, stateSync, placement] as const

    const encodings = (v3Compression: Option.Option<Engine.Compression>) =>
      Option.match(v3Compression, {
        onNone: () => new Map([[V1.compression.encoding, V1.compression]]),
        onSome: (c) =>
          new Map([
            [c.encoding, c],
            [V1.compression.encoding, V1.compression],
          ]),
      })

    const offer = Effect.map(compression.current, (c) => ({
      versions: [...Envelope.versions],
      encodings: Option.match(c, {
        onNone: () => [V1.compression.encoding],
        onSome: (e) => [e.encoding, V1.compression.encoding],
      }),
    }))

    // Sliding: observations feed accuracy metrics; losing old ones beats blocking a send.
    const observed = yield* Effect.acquireRelease(PubSub.sliding<Observation>(1024), PubSub.shutdown)
    // Read on every prediction, so a swap applies to the next send and survives part restarts.
    const served = yield* Ref.make<Engine.Predictor | undefined>(undefined)

    const service: Service = {
      offer,
      observations: PubSub.subscribe(observed),
      send: (request) =>
        Effect.gen(function* () {
          const row = yield* classifier.rowFor(request.peer)
          yield* Effect.annotateCurrentSpan({
            "dwcp.mode": row.mode,
            "dwcp.link_class": row.linkClass,
            "dwcp.transport": row.transport,
          })
          const predictor = yield* Ref.get(served)
          const [forecast, p] = yield* prediction.use(
            (e) => Effect.map(e.predict(request.peer, predictor), v3),
            Effect.succeed(v1<Engine.Forecast | undefined>(undefined)),
          )
          const predictedBps = forecast?.bps
          const agreed =
            request.peerOffer === undefined
              ? undefined
              : yield* Negotiation.negotiate(request.peer, yield* offer, request.peerOffer)
          if (agreed !== undefined && !agreed.encodings.includes(V1.compression.encoding)) {
            return yield* new Engine.TransferFailed({
              peer: request.peer,
              reason: `the peer takes none of this node's encodings (it offers ${request.peerOffer?.encodings.join(", ") || "none"})`,
            })
          }
          // A peer that cannot decode the v3 encoding gets v1's: negotiated, not a fallback.
          const v3Encoding = Option.map(yield* compression.current, (e) => e.encoding)
          const peerTakesV3 =
            agreed === undefined || (Option.isSome(v3Encoding) && agreed.encodings.includes(v3Encoding.value))
          const v1Encode = Effect.map(V1.compression.encode(request.data, { compression: row.compression }), (bytes) =>
            v1({ bytes, encoding: V1.compression.encoding }),
          ).pipe(Effect.orDie)
          const [encoded, c] = peerTakesV3
            ? yield* compression.use(
                (e) =>
                  Effect.map(
                    e.encode(request.data, { compression: row.compression, objectId: request.objectId }),
                    (bytes) => v3({ bytes, encoding: e.encoding }),
                  ),
                v1Encode,
              )
            : yield* v1Encode
          const [order, g] = yield* congestion.use(
            (e) => Effect.map(e.order(row), v3),
            Effect.succeed(
              v1<{ order: ReadonlyArray<string>; onSocket?: (s: Socket) => Effect.Effect<void> }>({ order: [] }),
            ),
          )
          const wire = Envelope.encode({
            version: Math.min(c === "v3" ? 3 : 1, agreed?.version ?? 3),
            encoding: encoded.encoding,
            payload: encoded.bytes,
          })
          const sent = { ...row, congestion: order.order }
          const start = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
          const [delivery, t] = yield* transport.use(
            (e) =>
              Effect.map(
                e.send({
                  peer: request.peer,
                  name: request.name,
                  payload: wire,
                  row: sent,
                  predictedBps,
                  onSocket: order.onSocket,
                }),
                v3,
              ),
            Effect.map(
              options.v1Transport.send({
                peer: request.peer,
                name: request.name,
                payload: wire,
                row: sent,
                predictedBps: undefined,
              }),
              v1,
            ).pipe(
              Effect.catchTag("PartFailure", (e) =>
                Effect.fail(new Engine.TransferFailed({ peer: request.peer, reason: e.message })),
              ),
            ),
          )
          const ms = (yield* Effect.clockWith((clock) => clock.currentTimeMillis)) - start
          if (ms > 0) {
            const measuredBps = (wire.length * 1000) / ms
            yield* prediction.use((e) => e.observe(request.peer, measuredBps), Effect.void)
            if (forecast !== undefined) {
              yield* PubSub.publish(observed, {
                peer: request.peer,
                predictedBps: forecast.bps,
                measuredBps,
                predictor: forecast.predictor,
                wireBytes: wire.length,
              })
            }
          }
          const servedBy = { prediction: p, compression: c, congestion: g, transport: t }
          yield* Effect.annotateCurrentSpan({
            "dwcp.encoding": encoded.encoding,
            "dwcp.bytes": request.data.length,
            "dwcp.wire_bytes": wire.length,
            "dwcp.carrier": delivery.carrier,
            ...Object.fromEntries(Object.entries(servedBy).map(([part, v]) => [`dwcp.served.${part}`, v])),
          })
          return {
            peer: request.peer,
            row,
            served: servedBy,
            encoding: encoded.encoding,
            bytes: request.data.length,
            wireBytes: wire.length,
            delivery,
          }
        }).pipe(
          // Peer ids are cluster members, the rest are enumerations: bounded.
          Effect.withSpan("dwcp.send", { kind: "producer", attributes: { "peer.node_id": request.peer } }),
        ),
      open: (bytes, maxSize) =>
        Effect.gen(function* () {
          const e = yield* Envelope.decode(bytes)
          yield* Effect.annotateCurrentSpan({
            "dwcp.version": e.version,
            "dwcp.encoding": e.encoding.slice(0, 32),
            "dwcp.wire_bytes": bytes.length,
          })
          if (!(Envelope.versions as ReadonlyArray<number>).includes(e.version)) {
            return yield* new UnsupportedVersion({ version: e.version, supported: Envelope.versions })
          }
          const v3c = yield* compression.current
          const codecs = encodings(v3c)
          const codec = codecs.get(e.encoding)
          if (codec === undefined)
            return yield* new EncodingUnavailable({ encoding: e.encoding, available: [...codecs.keys()] })
          if (codec === V1.compression)
            return yield* V1.compression.decode(e.payload, maxSize).pipe(Effect.catchTag("PartFailure", Effect.die))
          return yield* compression.use(
            (c) => c.decode(e.payload, maxSize),
            Effect.fail(new EncodingUnavailable({ encoding: e.encoding, available: [V1.compression.encoding] })),
          )
        }).pipe(
          Effect.tap((out) => Effect.annotateCurrentSpan("dwcp.bytes", out.length)),
          Effect.withSpan("dwcp.open"),
        ),
      sync: (key, value) =>
        stateSync
          .use((s) => Effect.as(s.put(key, value), "v3" as const), Effect.as(local.put(key, value), "v1" as const))
          .pipe(
            Effect.map((v): Served => ({ state_sync: v })),
            Effect.catchTag("PartFailure", Effect.die),
          ),
      read: (key) => stateSync.use((s) => s.get(key), local.get(key)).pipe(Effect.catchTag("PartFailure", Effect.die)),
      place: (workload, hosts) =>
        placement.use(
          (p) => Effect.map(p.place(workload, hosts), (host) => ({ host, served: "v3" as const })),
          Effect.map(V1.placement.place(workload, hosts), (host) => ({ host, served: "v1" as const })).pipe(
            Effect.catchTag("PartFailure", Effect.die),
          ),
        ),
      setPredictor: (predictor) => Ref.set(served, predictor),
      status: Effect.gen(function* () {
        const snap = yield* classifier.current
        const installed = yield* Ref.get(served)
        const part = yield* prediction.current
        return {
          nodeId: options.nodeId,
          mode: snap.mode,
          modeRow: ModeTable.resolve(ModeTable.rowFor(snap.mode, snap.mode), snap.capabilities),
          links: [...snap.links.values()].map((l) => ({ peer: l.peer, row: l.row })),
          parts: yield* Effect.forEach(parts, (p) => p.status),
          stateStore: Option.match(yield* stateSync.current, { onNone: () => local.kind, onSome: (s) => s.kind }),
          predictor: Option.match(part, {
            onNone: () => "none (prediction runs v1)",
            onSome: (e) => installed?.name ?? `${e.baseline ?? "baseline"} (the prediction part's; none served)`,
          }),
        }
      }),
    }
    return service
  })

/**
 * Health: `degraded` while any v3 part that should run is down, naming each with its cause;
 * parts off by flag or rollout are not a fault.
 *
 * @since 0.1.0
 * @category health
 */
export const health = (status: Status): Component.HealthResult => {
  const down = status.parts.filter((p) => p._tag === "down")
  const details = {
    mode: status.mode,
    predictor: status.predictor,
    parts: Object.fromEntries(
      status.parts.map((p) => [
        p.part,
        p._tag === "up" ? "v3" : p._tag === "off" ? `v1 (${p.reason})` : `v1 (down: ${p.cause})`,
      ]),
    ),
    downgrades: [
      ...status.modeRow.downgrades.map(
        (d) => `${status.mode} ${d.cell}: ${d.used} instead of ${d.wanted} (${d.reason})`,
      ),
      ...status.links.flatMap((l) =>
        l.row.downgrades.map((d) => `${l.peer} ${d.cell}: ${d.used} instead of ${d.wanted} (${d.reason})`),
      ),
    ],
  }
  return down.length === 0
    ? { status: "healthy" as const, details }
    : {
        status: "degraded" as const,
        message: down
          .map((p) => (p._tag === "down" ? `${p.part} on v1: v3 failed at ${p.phase} (${p.cause})` : ""))
          .join("; "),
        details,
      }
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Dwcp, never, LinkClassifier> => Layer.scoped(Dwcp, make(options))
