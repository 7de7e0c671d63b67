/**
 * What each DWCP part does for the service, v3 or v1: the seams the {@link Dwcp} service calls.
 * A v3 engine wraps its package (AMST + ACP, HDE, PBA, ASS, ITP); the v1 engines are in
 * {@link V1}. An engine fails with {@link Part.PartFailure} when the part itself broke (the call
 * then goes to v1), and with its own error when the answer is "no" (a peer refused, no host fits).
 *
 * @since 0.1.0
 */
import type { Socket } from "node:net"
import type { Host, Workload } from "@novacron/dwcp-itp"
import type { Predictor as PbaPredictor } from "@novacron/dwcp-pba"
import { Data, type Effect, type Option } from "effect"
import type * as ModeTable from "./ModeTable.js"
import type { PartFailure } from "./Part.js"

/**
 * A transfer could not reach the peer (unreachable, refused, gave up): no v1 retry helps.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransferFailed extends Data.TaggedError("TransferFailed")<{
  readonly peer: string
  readonly reason: string
}> {
  override get message(): string {
    return `DWCP transfer to ${this.peer} failed: ${this.reason}`
  }
}

/**
 * No host can take the workload.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoHostFits extends Data.TaggedError("NoHostFits")<{
  readonly workload: string
  readonly reason: string
}> {
  override get message(): string {
    return `no host fits workload ${this.workload}: ${this.reason}`
  }
}

/**
 * A state-sync write or read failed for a reason of its own (not the part breaking).
 *
 * @since 0.1.0
 * @category errors
 */
export class SyncFailed extends Data.TaggedError("SyncFailed")<{ readonly key: string; readonly reason: string }> {
  override get message(): string {
    return `DWCP state sync of ${this.key} failed: ${this.reason}`
  }
}

/**
 * What a transport delivered.
 *
 * @since 0.1.0
 * @category models
 */
export interface Delivery {
  readonly bytes: number
  readonly streams: number
  /** What carried it, e.g. `tcp-multistream (4 streams, bbr)` or `tls-single`. */
  readonly carrier: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Transport {
  readonly send: (request: {
    readonly peer: string
    readonly name: string
    readonly payload: Uint8Array
    readonly row: ModeTable.ResolvedRow
    /** Predicted link throughput in bytes/s (v1: none). */
    readonly predictedBps: number | undefined
    /** Run on each new connection (ACP sets its congestion control); v1: none, the kernel default. */
    readonly onSocket?: ((socket: Socket) => Effect.Effect<void>) | undefined
  }) => Effect.Effect<Delivery, PartFailure | TransferFailed>
}

/**
 * Encodes a payload for the wire; the receiver's decoder is picked by the envelope's encoding.
 *
 * @since 0.1.0
 * @category models
 */
export interface Compression {
  /** Wire name of the encoding (in the envelope), e.g. `hde` or `zstd3`. */
  readonly encoding: string
  readonly encode: (
    data: Uint8Array,
    options: { readonly compression: ModeTable.Compression; readonly objectId?: string | undefined },
  ) => Effect.Effect<Uint8Array, PartFailure>
  /** Decodes, failing (not throwing) on bad input; `maxSize` bounds the output. */
  readonly decode: (data: Uint8Array, maxSize: number) => Effect.Effect<Uint8Array, PartFailure | BadPayload>
}

/**
 * A payload that does not decode: what and where.
 *
 * @since 0.1.0
 * @category errors
 */
export class BadPayload extends Data.TaggedError("BadPayload")<{ readonly reason: string; readonly offset: number }> {
  override get message(): string {
    return `bad DWCP payload at byte ${this.offset}: ${this.reason}`
  }
}

/**
 * A link's predicted throughput.
 *
 * @since 0.1.0
 * @category models
 */
export interface Forecast {
  /** Bytes per second. */
  readonly bps: number
  /** Which predictor made it (`lstm`, `last-value`, ...). */
  readonly predictor: string
}

/**
 * A throughput predictor served from outside DWCP (the ML engine's): forecasts from a link's
 * one-second history, oldest first.
 *
 * @since 0.1.0
 * @category models
 */
export type Predictor = PbaPredictor.Predictor

/**
 * @since 0.1.0
 * @category models
 */
export interface Prediction {
  /**
   * Predicted throughput of the link to `peer`, when known, and which predictor made it: `served`
   * when given (the one installed with `Dwcp.setPredictor`), else the part's baseline.
   */
  readonly predict: (peer: string, served?: Predictor | undefined) => Effect.Effect<Forecast | undefined, PartFailure>
  /** The part's own predictor, used while none is served (e.g. `last-value`). */
  readonly baseline?: string | undefined
  /** Records a finished transfer's throughput. */
  readonly observe: (peer: string, bytesPerSecond: number) => Effect.Effect<void, PartFailure>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface StateSync {
  /** `etcd (raft)`, `local`, ... for `/status`. */
  readonly kind: string
  readonly put: (key: string, value: string) => Effect.Effect<void, PartFailure | SyncFailed>
  readonly get: (key: string) => Effect.Effect<Option.Option<string>, PartFailure | SyncFailed>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Placement {
  /** Picks a host for the workload among `hosts` (capacities are what each has free now). */
  readonly place: (
    workload: WorkloadRequest,
    hosts: ReadonlyArray<HostSpec>,
  ) => Effect.Effect<string, PartFailure | NoHostFits>
}

/**
 * A host as placement sees it (ITP's model).
 *
 * @since 0.1.0
 * @category models
 */
export type HostSpec = Host.HostSpec

/**
 * A workload to place (ITP's model).
 *
 * @since 0.1.0
 * @category models
 */
export type WorkloadRequest = Workload.WorkloadRequest
