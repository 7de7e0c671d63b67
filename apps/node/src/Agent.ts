import { Membership } from "@novacron/cluster"
import {
  Boot,
  BootAnalyze,
  BootProgress,
  type BootReport,
  Checkpoint,
  type Component,
  type Health,
} from "@novacron/init"
import { HealthEndpoints, HttpServer, MetricsEndpoint } from "@novacron/monitoring"
import { ConflictCheck } from "@novacron/resources"
import { Cause, Context, Deferred, Duration, Effect, Exit, Option } from "effect"
import * as DataDir from "./DataDir.js"
import { ExitCode } from "./ExitCode.js"
import * as Version from "./Version.js"

/** What the host knows of its boot, updated as it goes; read by the health endpoints. */
export interface NodeState {
  nodeId: string
  report?: BootReport.BootReport
  handle?: Boot.BootHandle
  lifecycle: Health.Lifecycle
  readonly startedAt: number
}

/** The health endpoints' view of the node; `/status` adds the connected peers. */
const nodeView = (state: NodeState): HealthEndpoints.NodeView => ({
  nodeId: state.nodeId,
  build: Version.fields,
  startedAt: state.startedAt,
  lifecycle: Effect.sync(() => state.lifecycle),
  report: Effect.sync(() => Option.fromNullable(state.report)),
  handle: Effect.sync(() => Option.fromNullable(state.handle)),
  extra: (handle) =>
    Effect.map(
      Option.match(
        Option.flatMap(handle, (h) =>
          Context.getOption(h.context as Context.Context<Membership.Membership>, Membership.Membership),
        ),
        { onNone: () => Effect.succeed([]), onSome: (m) => m.peers },
      ),
      (peers) => ({ peers }),
    ),
})

/** What the host itself needs from the configuration. */
export interface HostSettings {
  readonly nodeId: string
  readonly dataDir: string
  /** The cluster listener's address (`network.listen_address`). */
  readonly listenAddress: string
  /** Where health and metrics listen (`monitoring.listen_address`, loopback by default). */
  readonly monitoringAddress: string
  readonly healthPort: number
  readonly maxConcurrency: number
  readonly shutdownTimeout: Duration.Duration
  readonly phaseTimeouts: Boot.BootOptions["phaseTimeouts"]
}

export interface AgentRun {
  /** Completed by the first SIGTERM/SIGINT once the node is READY. */
  readonly stop: Deferred.Deferred<void>
  readonly state: NodeState
}

const loopback = (address: string) => address === "localhost" || /^127\./.test(address) || address === "::1"

const urlHost = (address: string) => (address.includes(":") ? `[${address}]` : address)

/**
 * Creates and locks the data directory before anything is written into it, serves health (so
 * `/healthz` answers and `/readyz` says 503 during boot), boots the components, waits for
 * `stop`, then shuts down newest first within the shutdown timeout; the health endpoints close
 * last, so `/readyz` reports the shutdown while it happens.
 */
export const runAgent = (
  settings: HostSettings,
  load: (
    lock: ConflictCheck.DataDirLock,
  ) => Effect.Effect<ReadonlyArray<Component.AnyComponent>, Component.UnplacedComponent>,
  run: AgentRun,
  options: { readonly tty: boolean; readonly context?: Context.Context<never> },
): Effect.Effect<ExitCode> =>
  Effect.gen(function* () {
    const { state } = run
    yield* Effect.logInfo(
      `${Version.describe}: starting node ${settings.nodeId}, data directory ${settings.dataDir}`,
    ).pipe(
      Effect.annotateLogs({
        name: "node.starting",
        node_id: settings.nodeId,
        data_dir: settings.dataDir,
        ...Version.fields,
      }),
    )
    yield* DataDir.prepare(settings.dataDir)
    // Before the boot record (written at init_start): a refused second agent must not touch it.
    const lock = yield* ConflictCheck.lockDataDir(settings.dataDir)
    if (lock.tookOverFrom !== undefined)
      yield* Effect.logWarning(
        `took over the lock of ${settings.dataDir} left by dead process ${lock.tookOverFrom}`,
      ).pipe(Effect.annotateLogs({ name: "node.lock" }))
    const health = yield* HttpServer.serve(
      settings.monitoringAddress,
      settings.healthPort,
      HealthEndpoints.healthHandler(nodeView(state)),
    )
    const host = urlHost(settings.monitoringAddress)
    const exposed = loopback(settings.monitoringAddress)
      ? loopback(settings.listenAddress)
        ? ""
        : ` (loopback only, while the cluster listener is on ${settings.listenAddress}: set monitoring.listen_address to expose them)`
      : " (unauthenticated: keep this address off untrusted networks)"
    yield* Effect.logInfo(
      `health endpoints (/healthz, /readyz, /status) on http://${host}:${health.port}${exposed}`,
    ).pipe(Effect.annotateLogs({ name: "node.health", url: `http://${host}:${health.port}` }))
    const progress = options.tty ? BootProgress.terminalProgress() : undefined
    const components = yield* load(lock)
    const node = yield* Boot.boot(components, {
      maxConcurrency: settings.maxConcurrency,
      phaseTimeouts: settings.phaseTimeouts,
      shutdownTimeout: settings.shutdownTimeout,
      checkpoints: Checkpoint.fileStore(BootAnalyze.bootDir(settings.dataDir)),
      context: options.context,
      onEvent: (event) => {
        if (event._tag === "BootStarted") state.report = event.report
        progress?.(event)
      },
    })
    state.handle = node
    state.lifecycle = "ready"
    const endpoints: Array<[string, string]> = [["health", `http://${host}:${health.port}/healthz`]]
    const metrics = Context.getOption(
      node.context as Context.Context<MetricsEndpoint.MetricsEndpoint>,
      MetricsEndpoint.MetricsEndpoint,
    )
    if (Option.isSome(metrics)) endpoints.push(["metrics", metrics.value.url])
    if (options.tty) process.stderr.write(BootProgress.readySummary(node.report, endpoints, settings.nodeId))
    yield* Effect.logInfo(`READY: novacron-node ${Version.version}, node ${settings.nodeId}`).pipe(
      Effect.annotateLogs({
        name: "node.ready",
        node_id: settings.nodeId,
        duration: node.report.totalMillis,
        endpoints: Object.fromEntries(endpoints),
        ...Version.fields,
      }),
    )
    yield* Deferred.await(run.stop)
    state.lifecycle = "shutting-down"
    const stopped = yield* Effect.exit(node.shutdown)
    state.lifecycle = "stopped"
    if (Exit.isFailure(stopped)) {
      yield* Effect.logError(
        Cause.squash(stopped.cause) instanceof Error
          ? (Cause.squash(stopped.cause) as Error).message
          : "shutdown failed",
      )
      return ExitCode.timeout
    }
    yield* Effect.logInfo("stopped").pipe(Effect.annotateLogs({ name: "node.stopped" }))
    return ExitCode.ok
  }).pipe(
    Effect.scoped,
    Effect.catchAll((error) =>
      Effect.gen(function* () {
        run.state.lifecycle = "failed"
        const code =
          error._tag === "PhaseTimeout"
            ? ExitCode.timeout
            : error._tag === "DataDirError" || error._tag === "LockError"
              ? ExitCode.config
              : ExitCode.critical
        // The kernel has logged a failed boot (`boot.failed`) already; what failed before the boot
        // (data directory, lock, health port) is logged here, once.
        if (error._tag === "ComponentFailed" || error._tag === "PhaseTimeout")
          yield* Effect.logDebug(`exit code ${code}`).pipe(
            Effect.annotateLogs({ name: "node.failed", exit_code: code }),
          )
        else yield* Effect.logError(error.message).pipe(Effect.annotateLogs({ name: "node.failed", exit_code: code }))
        return code
      }),
    ),
  )

export const durationMillis = (d: Duration.DurationInput) => Duration.toMillis(Duration.decode(d))
