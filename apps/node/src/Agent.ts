import { mkdir } from "node:fs/promises"
import { Boot, Checkpoint, type Component } from "@novacron/init"
import { Cause, Context, Deferred, Duration, Effect, Exit, Option } from "effect"
import { bootDir } from "./Analyze.js"
import { ExitCode } from "./ExitCode.js"
import { healthHandler, type NodeState } from "./HealthEndpoints.js"
import { serve } from "./HttpEndpoint.js"
import { MetricsEndpoint } from "./MetricsEndpoint.js"
import { readySummary, terminalProgress } from "./Progress.js"

/** What the host itself needs from the configuration. */
export interface HostSettings {
  readonly nodeId: string
  readonly dataDir: string
  readonly listenAddress: string
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

/**
 * Serves health first (so `/healthz` answers and `/readyz` says 503 during boot), boots the
 * components, waits for `stop`, then shuts down newest first within the shutdown timeout; the
 * health endpoints close last, so `/readyz` reports the shutdown while it happens.
 */
export const runAgent = (
  settings: HostSettings,
  load: Effect.Effect<ReadonlyArray<Component.AnyComponent>>,
  run: AgentRun,
  options: { readonly tty: boolean; readonly context?: Context.Context<never> },
): Effect.Effect<ExitCode> =>
  Effect.gen(function* () {
    const { state } = run
    yield* Effect.promise(() => mkdir(settings.dataDir, { recursive: true, mode: 0o700 }))
    const health = yield* serve(settings.listenAddress, settings.healthPort, healthHandler(state))
    const host = settings.listenAddress.includes(":") ? `[${settings.listenAddress}]` : settings.listenAddress
    yield* Effect.logInfo(`health endpoints on http://${host}:${health.port}`).pipe(
      Effect.annotateLogs({ name: "node.health", url: `http://${host}:${health.port}` }),
    )
    const progress = options.tty ? terminalProgress() : undefined
    const components = yield* load
    const node = yield* Boot.boot(components, {
      maxConcurrency: settings.maxConcurrency,
      phaseTimeouts: settings.phaseTimeouts,
      shutdownTimeout: settings.shutdownTimeout,
      checkpoints: Checkpoint.fileStore(bootDir(settings.dataDir)),
      context: options.context,
      onEvent: (event) => {
        if (event._tag === "BootStarted") state.report = event.report
        progress?.(event)
      },
    })
    state.handle = node
    state.lifecycle = "ready"
    const endpoints: Array<[string, string]> = [["health", `http://${host}:${health.port}/healthz`]]
    const metrics = Context.getOption(node.context as Context.Context<MetricsEndpoint>, MetricsEndpoint)
    if (Option.isSome(metrics)) endpoints.push(["metrics", metrics.value.url])
    if (options.tty) process.stderr.write(readySummary(node.report, endpoints, settings.nodeId))
    yield* Effect.logInfo("READY").pipe(
      Effect.annotateLogs({
        name: "node.ready",
        node_id: settings.nodeId,
        duration: node.report.totalMillis,
        endpoints: Object.fromEntries(endpoints),
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
            : error._tag === "ListenError"
              ? ExitCode.critical
              : ExitCode.critical
        yield* Effect.logError(error.message).pipe(Effect.annotateLogs({ name: "node.failed", exit_code: code }))
        if (options.tty) process.stderr.write(`\nboot failed: ${error.message}\n`)
        return code
      }),
    ),
  )

export const durationMillis = (d: Duration.DurationInput) => Duration.toMillis(Duration.decode(d))
