/**
 * The NovaCron boot kernel.
 *
 * @packageDocumentation
 */

/** Supervised recurring jobs (registration refresh, maintenance), listed in `/status`. */
export * as BackgroundJobs from "./BackgroundJobs.js"
/** Boots components in four phases; shutdown, rollback, health. */
export * as Boot from "./Boot.js"
/** `analyze blame|critical-chain|plot` over a data directory's boot record. */
export * as BootAnalyze from "./BootAnalyze.js"
/** Boot chart as SVG, like systemd-analyze plot. */
export * as BootChart from "./BootChart.js"
/** Errors of boot and shutdown. */
export * from "./BootError.js"
/** The boot metrics, as Effect metrics. */
export * as BootMetrics from "./BootMetrics.js"
/** What a boot would do: phases, levels, critical chain (`start --dry-run`). */
export * as BootPlan from "./BootPlan.js"
/** Boot progress on a terminal and the summary at READY. */
export * as BootProgress from "./BootProgress.js"
/** The boot report: blame, critical chain. */
export * as BootReport from "./BootReport.js"
/** A component's view of the others' status. */
export * from "./BootStatus.js"
/** Durable checkpoints and what the previous boot left. */
export * as Checkpoint from "./Checkpoint.js"
/** Component descriptors: a name, a phase, a criticality, dependencies and a Layer. */
export * as Component from "./Component.js"
/** Crash-safe file writes (temp file, fsync, rename, fsync dir). */
export * as DurableFile from "./DurableFile.js"
/** Graph validation, Kahn order, levels, critical path. */
export * as Graph from "./Graph.js"
/** Aggregated health. */
export * as Health from "./Health.js"
/** Whether a pid is alive. */
export * as Process from "./Process.js"
/** Prometheus text exposition of Effect metrics. */
export * as Prometheus from "./Prometheus.js"
