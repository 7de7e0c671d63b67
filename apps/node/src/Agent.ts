import { ApiServer, ApiSources, GrpcServer } from "@novacron/api"
import { Membership } from "@novacron/cluster"
import { ServiceRegistry } from "@novacron/dwcp-ass"
import {
  BackgroundJobs,
  Boot,
  BootAnalyze,
  BootProgress,
  type BootReport,
  Checkpoint,
  type Component,
  Health,
} from "@novacron/init"
import { MigrationComponent } from "@novacron/migration"
import { HealthEndpoints, HttpServer, MetricsEndpoint } from "@novacron/monitoring"
import { ConflictCheck } from "@novacron/resources"
import { SdNotify } from "@novacron/systemd"
import { Cause, Context, Deferred, Duration, Effect, Exit, Option, Ref, SubscriptionRef } from "effect"
import * as DataDir from "./DataDir.js"
import { ExitCode } from "./ExitCode.js"
import * as Version from "./Version.js"

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

/**
 * The boot as the host sees it, owned by the agent's program: its lifecycle (a `SubscriptionRef`,
 * so the health endpoints and anyone else read or follow it), the report once the kernel has one,
 * and the booted node once READY.
 */
export interface NodeState {
  readonly lifecycle: SubscriptionRef.SubscriptionRef<Health.Lifecycle>
  readonly report: Ref.Ref<Option.Option<BootReport.BootReport>>
  readonly handle: Ref.Ref<Option.Option<Boot.BootHandle>>
}

/** A fresh state: booting, nothing known yet. */
export const makeState: Effect.Effect<NodeState> = Effect.all({
  lifecycle: SubscriptionRef.make<Health.Lifecycle>("booting"),
  report: Ref.make(Option.none<BootReport.BootReport>()),
  handle: Ref.make(Option.none<Boot.BootHandle>()),
})

/** The health endpoints' view of the node; `/status` adds the connected peers. */
const nodeView = (state: NodeState, nodeId: string, startedAt: number): HealthEndpoints.NodeView => ({
  nodeId,
  build: Version.fields,
  startedAt,
  lifecycle: SubscriptionRef.get(state.lifecycle),
  report: Ref.get(state.report),
  handle: Ref.get(state.handle),
  extra: (handle) =>
    Effect.all({
      peers: Option.match(
        Option.flatMap(handle, (h) =>
          Context.getOption(h.context as Context.Context<Membership.Membership>, Membership.Membership),
        ),
        { onNone: () => Effect.succeed([]), onSome: (m) => m.peers },
      ),
      jobs: Option.match(
        Option.flatMap(handle, (h) =>
          Context.getOption(h.context as Context.Context<BackgroundJobs.BackgroundJobs>, BackgroundJobs.BackgroundJobs),
        ),
        { onNone: () => Effect.succeed([]), onSome: (j) => j.status },
      ),
      api: Effect.succeed(
        Option.match(
          Option.flatMap(handle, (h) =>
            Context.getOption(h.context as Context.Context<ApiServer.ApiEndpoint>, ApiServer.ApiEndpoint),
          ),
          { onNone: () => null, onSome: (a) => `${a.url}/v1` },
        ),
      ),
      grpc: Effect.succeed(
        Option.match(
          Option.flatMap(handle, (h) =>
            Context.getOption(h.context as Context.Context<GrpcServer.GrpcEndpoint>, GrpcServer.GrpcEndpoint),
          ),
          { onNone: () => null, onSome: (g) => g.url },
        ),
      ),
    }),
})

/** The API's view of the node: its identity and the `/status` document. */
const agentInfo = (view: HealthEndpoints.NodeView): ApiSources.AgentInfo["Type"] => ({
  nodeId: view.nodeId,
  version: Version.version,
  build: view.build,
  lifecycle: view.lifecycle,
  status: Effect.map(
    HealthEndpoints.healthHandler(view)(new URL("http://localhost/status"), undefined as never),
    (r) => JSON.parse(r.body) as Record<string, unknown>,
  ),
})

const loopback = (address: string) => address === "localhost" || /^127\./.test(address) || address === "::1"

const urlHost = (address: string) => (address.includes(":") ? `[${address}]` : address)

/**
 * Creates and locks the data directory before anything is written into it, serves health (so
 * `/healthz` answers and `/readyz` says 503 during boot), boots the components, waits for the
 * first signal, then shuts down newest first within the shutdown timeout; the health endpoints
 * close last, so `/readyz` reports the shutdown while it happens. A signal before READY interrupts
 * the boot (the kernel rolls back what had started) and the agent exits 0.
 */
export const runAgent = (
  settings: HostSettings,
  load: (
    lock: ConflictCheck.DataDirLock,
  ) => Effect.Effect<ReadonlyArray<Component.AnyComponent>, Component.UnplacedComponent>,
  run: { readonly signal: Deferred.Deferred<NodeJS.Signals>; readonly state: NodeState; readonly startedAt: number },
  options: {
    readonly tty: boolean
    readonly context?: Context.Context<never>
    /** systemd's `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID` (none: not run by systemd). */
    readonly systemd?: SdNotify.Environment
  },
): Effect.Effect<ExitCode> =>
  Effect.gen(function* () {
    const { state } = run
    // A notify socket it cannot use is said once; the node runs on without notifications.
    const notifier = yield* SdNotify.fromEnvironment(options.systemd ?? {}).pipe(
      Effect.catchAll((e) =>
        Effect.as(
          Effect.logWarning(`systemd notifications off: ${e.message}`).pipe(
            Effect.annotateLogs({ name: "node.systemd" }),
          ),
          SdNotify.disabled,
        ),
      ),
    )
    yield* Effect.forkScoped(SdNotify.keepWatchdog(notifier))
    const notify = (what: Effect.Effect<void, SdNotify.NotifyFailed>) =>
      what.pipe(
        Effect.catchAll((e) => Effect.logWarning(e.message).pipe(Effect.annotateLogs({ name: "node.systemd" }))),
      )
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
    const untilReady = Effect.gen(function* () {
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
        HealthEndpoints.healthHandler(nodeView(state, settings.nodeId, run.startedAt)),
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
      const view = nodeView(state, settings.nodeId, run.startedAt)
      const node = yield* Boot.boot(components, {
        maxConcurrency: settings.maxConcurrency,
        phaseTimeouts: settings.phaseTimeouts,
        shutdownTimeout: settings.shutdownTimeout,
        checkpoints: Checkpoint.fileStore(BootAnalyze.bootDir(settings.dataDir)),
        // The view in the boot context too: the metrics endpoint exports the same health as gauges.
        // And for the API: the node's identity and /status.
        context: Context.add(
          Context.add(options.context ?? Context.empty(), HealthEndpoints.NodeHealth, view),
          ApiSources.AgentInfo,
          agentInfo(view),
        ) as Context.Context<never>,
        onEvent: (event) => {
          if (event._tag === "BootStarted") Effect.runSync(Ref.set(state.report, Option.some(event.report)))
          progress?.(event)
        },
      })
      return { node, healthUrl: `http://${host}:${health.port}/healthz` }
    })
    // The first signal before READY interrupts the boot (the loser of the race): the kernel rolls
    // back what had started and logs it once.
    const booted = yield* Effect.raceFirst(
      Effect.asSome(untilReady),
      Effect.as(Deferred.await(run.signal), Option.none()),
    )
    if (Option.isNone(booted)) return ExitCode.ok
    const { node, healthUrl } = booted.value
    // The system-wide health check: READY only with every CRITICAL component up and healthy. Only
    // their checks run here (the others are listed from their boot status): a first-time probe of a
    // WARNING component (the vm's KVM guest, ~2.8 s) must not hold READY.
    const readiness = Health.readiness(yield* node.healthWhere((c) => c.criticality === "CRITICAL"))
    if (!readiness.ok) {
      yield* SubscriptionRef.set(state.lifecycle, "failed")
      yield* Effect.logError(`not READY: CRITICAL components unhealthy: ${readiness.failing.join("; ")}`).pipe(
        Effect.annotateLogs({ name: "node.unhealthy", failing: readiness.failing, exit_code: ExitCode.critical }),
      )
      yield* Effect.exit(node.shutdown)
      return ExitCode.critical
    }
    yield* Ref.set(state.handle, Option.some(node))
    yield* SubscriptionRef.set(state.lifecycle, "ready")
    const endpoints: Array<[string, string]> = [["health", healthUrl]]
    const metrics = Context.getOption(
      node.context as Context.Context<MetricsEndpoint.MetricsEndpoint>,
      MetricsEndpoint.MetricsEndpoint,
    )
    if (Option.isSome(metrics)) endpoints.push(["metrics", metrics.value.url])
    const api = Context.getOption(node.context as Context.Context<ApiServer.ApiEndpoint>, ApiServer.ApiEndpoint)
    if (Option.isSome(api)) endpoints.push(["api", `${api.value.url}/v1`])
    const grpc = Context.getOption(node.context as Context.Context<GrpcServer.GrpcEndpoint>, GrpcServer.GrpcEndpoint)
    if (Option.isSome(grpc)) endpoints.push(["grpc", grpc.value.url])
    // Peers find this node's migration tunnel in the registry (MigrationComponent.resolver).
    const migration = Context.getOption(
      node.context as Context.Context<MigrationComponent.MigrationEndpoint>,
      MigrationComponent.MigrationEndpoint,
    )
    if (Option.isSome(migration)) endpoints.push([MigrationComponent.endpointName, migration.value.url])
    // The peer listener is registered by the registry itself; health and metrics are the host's.
    const registry = Context.getOption(
      node.context as Context.Context<ServiceRegistry.ServiceRegistry>,
      ServiceRegistry.ServiceRegistry,
    )
    if (Option.isSome(registry))
      for (const [name, url] of endpoints)
        yield* registry.value
          .register(name, url)
          .pipe(
            Effect.catchAll((e) =>
              Effect.logWarning(`service registration of ${name} failed: ${e.message}`).pipe(
                Effect.annotateLogs({ name: "node.registry" }),
              ),
            ),
          )
    if (options.tty) process.stderr.write(BootProgress.readySummary(node.report, endpoints, settings.nodeId))
    yield* Effect.logInfo(`READY: novacron-node ${Version.version}, node ${settings.nodeId}`).pipe(
      Effect.annotateLogs({
        name: "node.ready",
        node_id: settings.nodeId,
        duration: node.report.totalMillis,
        endpoints: Object.fromEntries(endpoints),
        degraded: readiness.degraded,
        ...Version.fields,
      }),
    )
    yield* notify(
      notifier.ready(readiness.degraded.length === 0 ? "ready" : `ready, degraded: ${readiness.degraded.join("; ")}`),
    )
    yield* Deferred.await(run.signal)
    yield* notify(notifier.stopping("shutting down"))
    yield* SubscriptionRef.set(state.lifecycle, "shutting-down")
    const stopped = yield* Effect.exit(node.shutdown)
    yield* SubscriptionRef.set(state.lifecycle, "stopped")
    if (Exit.isFailure(stopped)) {
      const error = Cause.squash(stopped.cause)
      yield* Effect.logError(error instanceof Error ? error.message : "shutdown failed")
      return ExitCode.timeout
    }
    yield* Effect.logInfo("stopped").pipe(Effect.annotateLogs({ name: "node.stopped" }))
    return ExitCode.ok
  }).pipe(
    Effect.scoped,
    Effect.catchAll((error) =>
      Effect.gen(function* () {
        yield* SubscriptionRef.set(run.state.lifecycle, "failed")
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
