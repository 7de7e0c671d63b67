import { isAbsolute, resolve } from "node:path"
import { ApiComponent } from "@novacron/api"
import { CacheComponent } from "@novacron/cache"
import { ClusterComponent, Membership } from "@novacron/cluster"
import { Config, type ConfigError, Origin, Redact } from "@novacron/config"
import { DatabaseComponent, DatabaseMaintenance } from "@novacron/database"
import { DwcpNode } from "@novacron/dwcp"
import { ServiceRegistry, StateComponent } from "@novacron/dwcp-ass"
import { EnvironmentDetector } from "@novacron/environment"
import { BackgroundJobs, BootPlan, type Component, Graph } from "@novacron/init"
import { Logging } from "@novacron/logging"
import { MigrationComponent } from "@novacron/migration"
import { MlEngine } from "@novacron/ml"
import { MetricsEndpoint, Profiling, Tracing } from "@novacron/monitoring"
import { Network, NetworkComponent } from "@novacron/network"
import { OrchestrationComponent } from "@novacron/orchestration"
import { ConflictCheck, ResourceValidator } from "@novacron/resources"
import { SecurityComponent } from "@novacron/security"
import { VmCapacity, VmComponent } from "@novacron/vm"
import { Context, Duration, Effect, Layer, Schema } from "effect"
import type { HostSettings } from "./Agent.js"
import * as BootTable from "./BootTable.js"
import * as Dwcp from "./Dwcp.js"
import { importEsm } from "./internal/importEsm.js"
import { nodeTls } from "./NodeTls.js"
import * as Version from "./Version.js"

/** A configuration turned into what the host runs. */
export interface LoadedNode {
  readonly config: Config.Loaded
  readonly host: HostSettings
  /** The node's components; DWCP v3 parts are imported here, and why a requested one is missing is logged. */
  readonly components: (
    lock: ConflictCheck.DataDirLock,
  ) => Effect.Effect<ReadonlyArray<Component.AnyComponent>, Component.UnplacedComponent>
  /** What `start` would boot, without starting anything (`start --dry-run`); notes say which DWCP parts stay off. */
  readonly plan: Effect.Effect<
    { readonly plan: BootPlan.BootPlan; readonly notes: ReadonlyArray<string> },
    Component.UnplacedComponent | Graph.GraphError
  >
  readonly shutdownDeadlineMillis: number
  /** Installs the program's logger (a router the `logging` component reconfigures). */
  readonly provide: <A, E, R>(
    effect: Effect.Effect<A, E, R>,
  ) => Effect.Effect<A, E | Logging.LogFileError, Exclude<R, Logging.LogRouter>>
  /** The boot's shared context: what every component may read. */
  readonly context: (router: Logging.LogRouter["Type"]) => Context.Context<never>
  /** `config print`: YAML with each value's origin, or JSON; secrets redacted. */
  readonly print: (json: boolean) => string
}

const describeOrigin = (loaded: Config.Loaded, path: string) => {
  const origin = loaded.provenance.get(path)
  return origin === undefined ? path : `${path} (${Origin.render(origin)})`
}

const urlHost = (address: string) => (address.includes(":") ? `[${address}]` : address)

const absolute = (dir: string) => (isAbsolute(dir) ? dir : resolve(process.cwd(), dir))

/**
 * The components of a node, from its configuration: the pre-init phase (config, logging,
 * resources, conflict check), then the core and service components, then post-init endpoints.
 */
// On a terminal the progress display shows what info logs would; warnings still print.
const terminalLevel = (loaded: Config.Loaded, tty: boolean) => {
  const s = loaded.settings
  return tty && s.logging.format !== "json" && s.system.log_level === "info" ? "warn" : s.system.log_level
}

/**
 * Where health and metrics listen: `monitoring.listen_address` (default loopback), whatever
 * `network.listen_address` is (they are unauthenticated).
 */
export const monitoringAddress = (loaded: Config.Loaded): string => loaded.settings.monitoring.listen_address

export const components = (
  loaded: Config.Loaded,
  dataDir: string,
  tty: boolean,
  lock?: ConflictCheck.DataDirLock,
): Array<Component.AnySpec> => {
  const s = loaded.settings
  const monitoring = monitoringAddress(loaded)
  const detection = Schema.decodeSync(EnvironmentDetector.Settings)({
    enable_auto_detection: s.dwcp.enable_auto_detection,
    forced_mode: s.dwcp.forced_mode,
    // Logged with the mode, so an operator sees it was NOVACRON_DWCP_MODE and not the file.
    forced_origin: describeOrigin(loaded, "dwcp.forced_mode"),
    detection_interval: s.dwcp.detection_interval,
    peers: s.network.peers,
    enable_rdma: s.dwcp.transport.enable_rdma,
  })
  const migrationListen = s.migration.listen_address || s.network.listen_address
  return [
    Config.component(loaded),
    Logging.component({
      ...s.logging,
      data_dir: dataDir,
      log_level: terminalLevel(loaded, tty),
    }),
    ResourceValidator.component({
      data_dir: dataDir,
      resource_profile: s.system.resource_profile,
      min_cpus: s.system.min_cpus,
      min_memory: s.system.min_memory,
      min_disk: s.system.min_disk,
    }),
    ConflictCheck.component(
      {
        data_dir: dataDir,
        listen_address: s.network.listen_address,
        monitoring_address: monitoring,
        bind_port: s.network.bind_port,
        // The host binds the health port itself before boot; a clash there fails with its own message.
        health_check_port: 0,
        metrics_port: s.monitoring.enabled ? s.monitoring.metrics_port : 0,
      },
      { held: lock },
    ),
    // Re-detection runs on the node's background jobs (environment-redetection), listed in /status.
    EnvironmentDetector.component(detection, {}, "job"),
    SecurityComponent.component(s.security, {
      data_dir: dataDir,
      node_id: s.system.node_id,
      listen_address: s.network.listen_address,
    }),
    // A PostgreSQL still starting is waited for during most of the core phase, not all of it, so
    // its own error (naming the attempts) wins over the phase timeout's.
    DatabaseComponent.component(
      s.storage,
      { data_dir: dataDir },
      { connectRetry: Duration.times(s.system.phase_timeouts.core, 0.75) },
    ),
    CacheComponent.component(s.storage),
    StateComponent.component(s.dwcp.consensus, { data_dir: dataDir }),
    NetworkComponent.component(s.network),
    Membership.component(s.system.node_id),
    VmComponent.component(s.vm, { dataDir, nodeId: s.system.node_id }),
    // The tunnel listens where the node's other listeners do unless told otherwise; on all
    // addresses it advertises DWCP's address (dwcp.advertise_address or the first external IPv4).
    MigrationComponent.component(
      { ...s.migration, listen_address: migrationListen },
      {
        nodeId: s.system.node_id,
        tls: nodeTls,
        advertise: DwcpNode.advertised(migrationListen, s.dwcp.advertise_address),
      },
    ),
    OrchestrationComponent.component(s.orchestration, s.storage, { data_dir: dataDir, node_id: s.system.node_id }),
    ...(s.api.enabled ? [ApiComponent.component(s.api)] : []),
    ClusterComponent.component(s.cluster, {
      data_dir: dataDir,
      listen_address: s.network.listen_address,
      bind_port: s.network.bind_port,
    }),
    ...(s.monitoring.enabled
      ? [
          MetricsEndpoint.component(monitoring, s.monitoring.metrics_port, {
            onStart: Version.recordBuildInfo,
            dataDir,
          }),
        ]
      : []),
    // Admins only (a token of security.tokens); on the monitoring address, loopback by default.
    ...(s.monitoring.enable_profiling ? [Profiling.component(monitoring, s.monitoring.profiling_port)] : []),
    BackgroundJobs.component(),
    DatabaseMaintenance.component(),
    EnvironmentDetector.redetection(detection),
    VmCapacity.component(s.system.node_id, s.vm.capacity_interval),
    // The LSTM's package (and onnxruntime) and the optimiser's are imported by the engine's
    // background loads, not here.
    MlEngine.component(
      s.ml,
      MlEngine.lstmLoader(() => importEsm<MlEngine.PbaModule>("@novacron/dwcp-pba")),
      MlEngine.optimizerLoader(() => importEsm<MlEngine.ItpModule>("@novacron/dwcp-itp")),
    ),
    // The peer listener at start; health and metrics are added at READY (the host knows their URLs).
    ServiceRegistry.component({
      node: s.system.node_id,
      ttl: s.dwcp.consensus.lease_ttl,
      endpoints: Effect.map(Network.Network, (n) => [
        { name: "peer", url: `tls://${urlHost(n.address.host)}:${n.address.port}` },
      ]),
    }),
  ]
}

/** One configuration problem, as `validate --json` prints it. */
export interface Problem {
  /** Dotted key path; `""` for the whole file. */
  readonly path: string
  readonly message: string
  /** Where the value came from: `file:line`, an environment variable, a flag, or the default. */
  readonly source: string
  readonly kind: string
}

/** Every problem of a configuration error, as `validate --json` prints them. */
export const problems = (error: ConfigError.ConfigError): ReadonlyArray<Problem> =>
  error.issues.map((i) => ({ path: i.path, message: i.message, source: Origin.render(i.origin), kind: i.kind }))

/** Loads the configuration from the command line (after the command) and the environment. */
export const loadNode = (
  argv: ReadonlyArray<string>,
  tty: boolean,
): Effect.Effect<LoadedNode, ConfigError.ConfigError> =>
  Effect.map(Config.load({ flags: argv, env: process.env }), (loaded) => node(loaded, tty))

const node = (loaded: Config.Loaded, tty: boolean): LoadedNode => {
  const s = loaded.settings
  const dataDir = absolute(s.system.data_dir)
  const host: HostSettings = {
    nodeId: s.system.node_id,
    dataDir,
    listenAddress: s.network.listen_address,
    monitoringAddress: monitoringAddress(loaded),
    healthPort: s.system.health_check_port,
    maxConcurrency: s.system.max_concurrency,
    shutdownTimeout: s.system.shutdown_timeout,
    phaseTimeouts: {
      "pre-init": s.system.phase_timeouts.pre_init,
      core: s.system.phase_timeouts.core,
      services: s.system.phase_timeouts.services,
      "post-init": s.system.phase_timeouts.post_init,
    },
  }
  const initialLogging = { log_level: terminalLevel(loaded, tty), format: s.logging.format, data_dir: dataDir }
  return {
    config: loaded,
    host,
    components: (lock) =>
      Effect.gen(function* () {
        const dwcp = yield* Effect.promise(() => Dwcp.plan(s, dataDir))
        for (const note of dwcp.notes) yield* Effect.logWarning(note).pipe(Effect.annotateLogs({ name: "dwcp.off" }))
        return yield* BootTable.place([...components(loaded, dataDir, tty, lock), ...dwcp.components])
      }),
    plan: Effect.gen(function* () {
      const dwcp = yield* Effect.promise(() => Dwcp.plan(s, dataDir))
      const placed = yield* BootTable.place([...components(loaded, dataDir, tty), ...dwcp.components])
      return { plan: BootPlan.make(yield* Graph.validate(placed)), notes: dwcp.notes }
    }),
    shutdownDeadlineMillis: Duration.toMillis(s.system.shutdown_timeout),
    // The tracer wraps the whole program (boot spans and what the components trace); closing it
    // at exit flushes the last spans.
    provide: (effect) =>
      Effect.provide(
        effect,
        Layer.provideMerge(
          Tracing.layer(s.monitoring, {
            serviceName: "novacron-node",
            serviceVersion: Version.version,
            instanceId: s.system.node_id,
          }),
          Logging.routerLayer(initialLogging),
        ),
      ),
    context: (router) => Context.make(Logging.LogRouter, router) as Context.Context<never>,
    print: (json) =>
      json
        ? JSON.stringify(
            {
              values: Redact.redact(loaded.encoded),
              sources: Object.fromEntries([...loaded.provenance].map(([k, o]) => [k, Origin.render(o)])),
            },
            null,
            2,
          )
        : Config.render(loaded, { provenance: true }),
  }
}
