/**
 * The EnvironmentDetector: classifies the node's network as datacenter, internet or hybrid from
 * measurements towards `network.peers` and RDMA presence, at boot and then every
 * `detection_interval`, publishing each new detection in a `SubscriptionRef`.
 *
 * `forced_mode` (which the configuration also sets from `NOVACRON_DWCP_MODE`) overrides the
 * detection; with no peers the mode is `hybrid` and the log says why.
 *
 * @since 0.1.0
 */
import { readdir } from "node:fs/promises"
import { BackgroundJobs, Component } from "@novacron/init"
import { Context, Duration, Effect, Layer, Schedule, Schema, Stream, SubscriptionRef } from "effect"
import * as Classify from "./Classify.js"
import * as DetectionSettings from "./DetectionSettings.js"
import * as Probe from "./Probe.js"

/**
 * The settings: the first three as in `dwcp`, `peers` as in `network`, `enable_rdma` as in
 * `dwcp.transport`; the probe knobs have defaults that suit most links.
 *
 * @since 0.1.0
 */
export const Settings = Schema.Struct({
  enable_auto_detection: Schema.optionalWith(Schema.Boolean, { default: () => true, exact: true }),
  forced_mode: Schema.optionalWith(DetectionSettings.Mode, {
    default: () => "" as const,
    exact: true,
  }),
  /** Where `forced_mode` was set, for the reason (e.g. `env NOVACRON_DWCP_MODE` from the configuration's provenance). */
  forced_origin: Schema.optionalWith(Schema.String, { default: () => "dwcp.forced_mode", exact: true }),
  detection_interval: Schema.optionalWith(Schema.DurationFromSelf, {
    default: () => Duration.seconds(30),
    exact: true,
  }),
  peers: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [], exact: true }),
  enable_rdma: Schema.optionalWith(Schema.Boolean, { default: () => true, exact: true }),
  probe_count: Schema.optionalWith(Schema.Int, { default: () => 10, exact: true }),
  probe_timeout: Schema.optionalWith(Schema.DurationFromSelf, { default: () => Duration.seconds(1), exact: true }),
  bandwidth_bytes: Schema.optionalWith(Schema.Int, { default: () => 8 * 1024 * 1024, exact: true }),
  /** Peers measured at once; each one's bandwidth probe shares links with the others in flight. */
  probe_concurrency: Schema.optionalWith(Schema.Int, { default: () => 4, exact: true }),
  /** Where RDMA devices are listed. */
  rdma_sysfs: Schema.optionalWith(Schema.String, { default: () => "/sys/class/infiniband", exact: true }),
})

/**
 * @since 0.1.0
 */
export type Settings = typeof Settings.Type

/**
 * One detection.
 *
 * @since 0.1.0
 */
export interface Detection {
  readonly mode: Classify.Mode
  /** `forced`: by `forced_mode`; `detected`: from measurements or RDMA; `default`: nothing to measure or detection off. */
  readonly source: "forced" | "detected" | "default"
  readonly reason: string
  readonly rdmaDevices: ReadonlyArray<string>
  readonly peers: ReadonlyArray<Classify.PeerMeasurement>
  readonly links: ReadonlyArray<Classify.LinkClass>
  /** Epoch milliseconds of the detection. */
  readonly at: number
}

/**
 * Replaceable measurement sources (tests inject their own).
 *
 * @since 0.1.0
 */
export interface Sources {
  readonly measure?: ((peer: string) => Effect.Effect<Classify.PeerMeasurement>) | undefined
  readonly rdmaDevices?: Effect.Effect<ReadonlyArray<string>> | undefined
}

/**
 * Lists RDMA devices (entries of `/sys/class/infiniband`); none when the directory is absent.
 *
 * @since 0.1.0
 */
export const rdmaDevices = (sysfs = "/sys/class/infiniband"): Effect.Effect<ReadonlyArray<string>> =>
  Effect.promise(() =>
    readdir(sysfs).then(
      (names) => names.sort(),
      () => [],
    ),
  )

/**
 * Runs one detection.
 *
 * @since 0.1.0
 */
export const detect = (settings: Settings, sources: Sources = {}): Effect.Effect<Detection> =>
  Effect.gen(function* () {
    const at = yield* Effect.clockWith((c) => c.currentTimeMillis)
    const empty = { rdmaDevices: [], peers: [], links: [], at }
    if (settings.forced_mode !== "") {
      return {
        ...empty,
        mode: settings.forced_mode,
        source: "forced" as const,
        reason: `forced by ${settings.forced_origin}`,
      }
    }
    if (!settings.enable_auto_detection) {
      return {
        ...empty,
        mode: Classify.defaultMode,
        source: "default" as const,
        reason: `auto-detection disabled; default ${Classify.defaultMode}`,
      }
    }
    const devices = settings.enable_rdma ? yield* sources.rdmaDevices ?? rdmaDevices(settings.rdma_sysfs) : []
    const probe =
      sources.measure ??
      ((peer: string) =>
        Probe.measure(peer, {
          count: settings.probe_count,
          timeoutMs: Duration.toMillis(settings.probe_timeout),
          bandwidthBytes: settings.bandwidth_bytes,
        }))
    // Bounded: enough in parallel to fit the pre-init timeout with many peers, few enough that
    // concurrent bandwidth probes do not crowd the node's own uplink.
    const peers = yield* Effect.forEach(settings.peers, probe, { concurrency: Math.max(1, settings.probe_concurrency) })
    const c = Classify.classify({ rdma: devices.length > 0, peers })
    const source = devices.length === 0 && peers.length === 0 ? ("default" as const) : ("detected" as const)
    return { mode: c.mode, source, reason: c.reason, rdmaDevices: devices, peers, links: c.links, at }
  })

/**
 * The detector service.
 *
 * @since 0.1.0
 */
export class EnvironmentDetector extends Context.Tag("@novacron/environment/EnvironmentDetector")<
  EnvironmentDetector,
  {
    /** The latest detection; every re-detection is published here. */
    readonly current: SubscriptionRef.SubscriptionRef<Detection>
    /** The current detection, then each one whose mode differs from the previous. */
    readonly modeChanges: Stream.Stream<Detection>
    /** Detects now and publishes the result. */
    readonly detectNow: Effect.Effect<Detection>
  }
>() {}

const describe = (d: Detection) => `${d.mode} (${d.reason})`

/**
 * Who runs the re-detections: the layer's own fiber (`self`, the default), or the node's
 * background jobs (`job`: the host adds {@link redetection}, so they show in `/status` with their
 * runs and failures).
 *
 * @since 0.2.0
 */
export type Redetect = "self" | "job"

/**
 * Whether re-detection runs at all: not when the mode is forced or detection is off.
 *
 * @since 0.2.0
 */
export const redetects = (settings: Settings): boolean => settings.forced_mode === "" && settings.enable_auto_detection

/**
 * Detects once while the layer builds, then (with `redetect: "self"`) again every
 * `detection_interval` until the layer's scope closes (not when the mode is forced or detection is off).
 *
 * @since 0.1.0
 */
export const layer = (
  settings: Settings,
  sources: Sources = {},
  redetect: Redetect = "self",
): Layer.Layer<EnvironmentDetector> =>
  Layer.scoped(
    EnvironmentDetector,
    Effect.gen(function* () {
      const first = yield* detect(settings, sources)
      yield* Effect.logInfo(`network environment: ${describe(first)}`).pipe(
        Effect.annotateLogs({ name: "environment.detected", mode: first.mode }),
      )
      const current = yield* SubscriptionRef.make(first)
      const detectNow = Effect.gen(function* () {
        const next = yield* detect(settings, sources)
        const previous = yield* SubscriptionRef.getAndSet(current, next)
        if (previous.mode !== next.mode) {
          yield* Effect.logWarning(`network environment changed: ${previous.mode} -> ${describe(next)}`).pipe(
            Effect.annotateLogs({ name: "environment.changed", mode: next.mode, previous: previous.mode }),
          )
        }
        return next
      })
      if (redetect === "self" && first.source !== "forced" && settings.enable_auto_detection) {
        yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(settings.detection_interval), detectNow)))
      }
      return {
        current,
        modeChanges: current.changes.pipe(Stream.changesWith((a, b) => a.mode === b.mode)),
        detectNow,
      }
    }),
  )

/**
 * The EnvironmentDetector as an `@novacron/init` component spec (`environment`; a host's boot
 * table places it).
 *
 * @since 0.1.0
 */
export const component = (settings: Settings, options: Sources = {}, redetect: Redetect = "self") =>
  Component.spec({
    name: "environment",
    description: "classifies the network as datacenter, internet or hybrid",
    layer: layer(settings, options, redetect),
    healthCheck: Effect.flatMap(EnvironmentDetector, (d) =>
      Effect.map(SubscriptionRef.get(d.current), (c) => ({
        status: "healthy" as const,
        details: { mode: c.mode, source: c.source, reason: c.reason },
      })),
    ),
  })

/**
 * The `environment-redetection` background job: detects again every `detection_interval`.
 *
 * @since 0.2.0
 */
export const job = (settings: Settings): BackgroundJobs.Job<EnvironmentDetector> => ({
  name: "environment-redetection",
  description: `classifies the network again every ${Duration.format(settings.detection_interval)}`,
  schedule: Schedule.spaced(settings.detection_interval),
  runAtStart: false,
  run: Effect.flatMap(EnvironmentDetector, (d) => d.detectNow),
})

/**
 * The `environment-redetection` component (post-init): starts {@link job} on the node's background
 * jobs, for a detector built with `redetect: "job"`. Nothing to do when the mode is forced or
 * detection is off.
 *
 * @example
 * ```ts
 * import { EnvironmentDetector } from "@novacron/environment"
 *
 * const settings = EnvironmentDetector.Settings.make({})
 * const specs = [
 *   EnvironmentDetector.component(settings, {}, "job"),
 *   EnvironmentDetector.redetection(settings),
 * ]
 * console.log(specs.map((s) => s.name)) // ["environment", "environment-redetection"]
 * ```
 *
 * @since 0.2.0
 */
export const redetection = (settings: Settings) =>
  Component.spec({
    name: "environment-redetection",
    description: "classifies the network again on a background job",
    layer: Layer.scopedDiscard(
      redetects(settings)
        ? Effect.flatMap(BackgroundJobs.BackgroundJobs, (jobs) => jobs.start(job(settings)))
        : Effect.void,
    ),
    expectedDuration: "1 millis",
  })
