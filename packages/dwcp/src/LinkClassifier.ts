/**
 * Each peer link's class and row, kept current from the EnvironmentDetector's detections: every
 * `detection_interval` the detector measures each peer (the environment package's probe), and each
 * link steps through {@link ModeTable.step} (hysteresis). A link whose class changes moves to its
 * new row for the NEXT transfer, and the log line carries the measurement that moved it; a transfer
 * holds the row it started with (rows are immutable values), so one in flight keeps its row.
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import { type Classify, EnvironmentDetector } from "@novacron/environment"
import { Context, Effect, Layer, Metric, type Scope, Stream, SubscriptionRef } from "effect"
import * as ModeTable from "./ModeTable.js"

/**
 * One link as the classifier holds it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Link {
  readonly peer: string
  readonly state: ModeTable.LinkState
  readonly row: ModeTable.ResolvedRow
  /** The latest measurement (undefined when the mode is forced). */
  readonly measurement: Classify.PeerMeasurement | undefined
}

/**
 * The classifier's view: the node's mode, how it was set, every link.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly mode: ModeTable.Mode
  readonly source: EnvironmentDetector.Detection["source"]
  readonly capabilities: ModeTable.Capabilities
  readonly links: ReadonlyMap<string, Link>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The row for the next transfer to `peer` (`host:port`, `node-id@host:port` or the node id). */
  readonly rowFor: (peer: string) => Effect.Effect<ModeTable.ResolvedRow>
  readonly current: Effect.Effect<Snapshot>
  /** Every new snapshot (one per detection). */
  readonly changes: Stream.Stream<Snapshot>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class LinkClassifier extends Context.Tag("@novacron/dwcp/LinkClassifier")<LinkClassifier, Service>() {}

/**
 * Links that moved to another class.
 *
 * @since 0.1.0
 * @category metrics
 */
export const classChanges = Metric.counter("novacron_dwcp_link_class_changes_total", {
  description: "peer links moved to another row of the mode table",
})

const congestionPath = "/proc/sys/net/ipv4/tcp_available_congestion_control"

/**
 * What this host can do: the kernel's listed congestion algorithms and the RDMA devices the
 * detection found.
 *
 * @since 0.1.0
 * @category constructors
 */
export const hostCongestion: Effect.Effect<ReadonlyArray<string> | undefined> = Effect.promise(() =>
  readFile(congestionPath, "utf8").then(
    (s) => s.trim().split(/\s+/).filter(Boolean),
    () => undefined,
  ),
)

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly hysteresis?: ModeTable.Hysteresis | undefined
  readonly thresholds?: Classify.Thresholds | undefined
  /** Replaces the read of `tcp_available_congestion_control` (tests). */
  readonly congestion?: Effect.Effect<ReadonlyArray<string> | undefined> | undefined
}

const matches = (key: string, peer: string): boolean => {
  if (key === peer) return true
  const at = key.lastIndexOf("@")
  return at > 0 && (key.slice(0, at) === peer || key.slice(at + 1) === peer)
}

const describe = (m: Classify.PeerMeasurement | undefined): string =>
  m === undefined
    ? "not measured"
    : [
        m.rttMs === undefined ? "unreachable" : `rtt ${m.rttMs.toFixed(3)} ms`,
        m.jitterMs === undefined ? undefined : `jitter ${m.jitterMs.toFixed(3)} ms`,
        `loss ${(m.loss * 100).toFixed(1)} %`,
        m.bandwidthBps === undefined ? undefined : `${(m.bandwidthBps / 1e9).toFixed(2)} Gbit/s`,
      ]
        .filter(Boolean)
        .join(", ")

/**
 * Steps every link with one detection (pure): forced or default detections put every link on the
 * mode's row; measured ones step each link's hysteresis and derive the node mode from the links.
 *
 * @since 0.1.0
 * @category combinators
 */
export const apply = (
  previous: Snapshot | undefined,
  d: EnvironmentDetector.Detection,
  capabilities: ModeTable.Capabilities,
  options: Options = {},
): Snapshot => {
  const caps = { ...capabilities, rdmaDevices: d.rdmaDevices }
  if (d.source !== "detected") {
    const links = new Map<string, Link>()
    for (const [peer, l] of previous?.links ?? []) {
      const state: ModeTable.LinkState = { linkClass: d.mode, reason: d.reason, pending: undefined }
      links.set(peer, {
        peer,
        state,
        row: ModeTable.resolve(ModeTable.rowFor(d.mode, d.mode), caps),
        measurement: l.measurement,
      })
    }
    return { mode: d.mode, source: d.source, capabilities: caps, links }
  }
  const states = new Map<string, { state: ModeTable.LinkState; m: Classify.PeerMeasurement }>()
  for (const m of d.peers) {
    const before = previous?.source === "detected" ? previous.links.get(m.peer)?.state : undefined
    states.set(m.peer, {
      state: ModeTable.step(before, m, {
        ...(options.hysteresis ? { hysteresis: options.hysteresis } : {}),
        ...(options.thresholds ? { thresholds: options.thresholds } : {}),
      }),
      m,
    })
  }
  const mode = ModeTable.nodeMode(
    [...states.values()].map((s) => s.state.linkClass),
    d.rdmaDevices.length > 0,
  )
  const links = new Map<string, Link>()
  for (const [peer, { state, m }] of states) {
    links.set(peer, {
      peer,
      state,
      measurement: m,
      row: ModeTable.resolve(ModeTable.rowFor(mode, state.linkClass), caps),
    })
  }
  return { mode, source: d.source, capabilities: caps, links }
}

/**
 * Follows the detector for the life of the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {},
): Effect.Effect<Service, never, EnvironmentDetector.EnvironmentDetector | Scope.Scope> =>
  Effect.gen(function* () {
    const detector = yield* EnvironmentDetector.EnvironmentDetector
    const congestion = yield* options.congestion ?? hostCongestion
    const capabilities: ModeTable.Capabilities = { congestion, rdmaDevices: [] }
    // Pull the first detection here so the service starts with rows; the rest follow in a fiber.
    const pull = yield* Stream.toPull(detector.current.changes)
    const first = yield* pull.pipe(Effect.orDie)
    let snapshot: Snapshot | undefined
    for (const d of first) snapshot = apply(snapshot, d, capabilities, options)
    const ref = yield* SubscriptionRef.make(snapshot!)
    yield* Effect.logInfo(
      `DWCP rows: ${snapshot!.mode}; ${[...snapshot!.links.values()].map((l) => `${l.peer} ${l.state.linkClass}`).join(", ") || "no peers"}`,
    ).pipe(Effect.annotateLogs({ name: "dwcp.rows" }))
    const onDetection = (d: EnvironmentDetector.Detection) =>
      Effect.gen(function* () {
        const before = yield* SubscriptionRef.get(ref)
        const next = apply(before, d, capabilities, options)
        yield* SubscriptionRef.set(ref, next)
        if (next.mode !== before.mode) {
          yield* Effect.logWarning(`DWCP mode ${before.mode} -> ${next.mode}`).pipe(
            Effect.annotateLogs({ name: "dwcp.mode_changed", mode: next.mode, previous: before.mode }),
          )
        }
        for (const l of next.links.values()) {
          const was = before.links.get(l.peer)
          if (was !== undefined && was.state.linkClass !== l.state.linkClass) {
            yield* Metric.increment(classChanges)
            yield* Effect.logInfo(
              `DWCP link ${l.peer}: ${was.state.linkClass} -> ${l.state.linkClass} for the next transfer (${describe(l.measurement)}; ${l.state.reason})`,
            ).pipe(
              Effect.annotateLogs({
                name: "dwcp.link_moved",
                peer: l.peer,
                from: was.state.linkClass,
                to: l.state.linkClass,
              }),
            )
          }
        }
      })
    yield* Effect.forkScoped(
      Effect.forever(Effect.flatMap(pull, (chunk) => Effect.forEach(chunk, onDetection, { discard: true }))).pipe(
        Effect.ignore,
      ),
    )
    return {
      rowFor: (peer) =>
        Effect.map(SubscriptionRef.get(ref), (s) => {
          for (const [key, l] of s.links) if (matches(key, peer)) return l.row
          // A peer not measured yet: the mode's row (adaptive in a hybrid node).
          return ModeTable.resolve(ModeTable.rowFor(s.mode, s.mode), s.capabilities)
        }),
      current: SubscriptionRef.get(ref),
      changes: ref.changes,
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {},
): Layer.Layer<LinkClassifier, never, EnvironmentDetector.EnvironmentDetector> =>
  Layer.scoped(LinkClassifier, make(options))
