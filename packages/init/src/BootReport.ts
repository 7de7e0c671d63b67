/**
 * What a boot did: each component's start and end, attempts and status, the phases, and the
 * critical chain. A host prints it, stores it (the checkpoint record) and draws it.
 *
 * @since 0.1.0
 */
import type { Criticality, Phase } from "./Component.js"
import { phases as phaseOrder } from "./Component.js"

/**
 * Status of one component.
 * - `pending`: not started; `starting`: start under way; `running`: started;
 * - `degraded`: a DEGRADED component that gave up and runs on its fallback (or without it);
 * - `failed`: gave up (WARNING, or the CRITICAL one that halted boot); `skipped`: a dependency was unavailable;
 * - `stopped`: shut down, after running or during a rollback.
 *
 * @since 0.1.0
 */
export type ComponentStatus = "pending" | "starting" | "running" | "degraded" | "failed" | "skipped" | "stopped"

/**
 * @since 0.1.0
 */
export interface ComponentRecord {
  readonly name: string
  readonly phase: Phase
  readonly criticality: Criticality
  readonly dependencies: ReadonlyArray<string>
  status: ComponentStatus
  /** Milliseconds since boot start, when the component was waiting for nothing but a permit. */
  readyAt?: number
  /** Milliseconds since boot start. */
  startedAt?: number
  /** Milliseconds since boot start. */
  finishedAt?: number
  attempts: number
  /** Last error, rendered. */
  error?: string
  /** Whether a fallback is in place. */
  fallback?: boolean
  /** Milliseconds its shutdown took. */
  stopMillis?: number
}

/**
 * @since 0.1.0
 */
export interface PhaseRecord {
  readonly phase: Phase
  startedAt?: number
  finishedAt?: number
  status: "pending" | "running" | "complete" | "failed"
}

/**
 * The five checkpoints of a boot, in order.
 *
 * @since 0.1.0
 */
export const checkpointNames = [
  "init_start",
  "pre_init_complete",
  "core_init_complete",
  "service_init_complete",
  "init_complete",
] as const

/**
 * @since 0.1.0
 */
export type CheckpointName = (typeof checkpointNames)[number]

/**
 * A boot's outcome so far. `running` after READY until shutdown; a record left `starting` or
 * `running` by a dead process means that process crashed.
 *
 * @since 0.1.0
 */
export type BootOutcome = "starting" | "running" | "failed" | "stopped"

/**
 * @since 0.1.0
 */
export interface BootReport {
  readonly bootId: string
  readonly pid: number
  /** Wall-clock start, ISO 8601. */
  readonly startedAt: string
  outcome: BootOutcome
  /** Milliseconds from boot start to READY (or to the failure). */
  totalMillis?: number
  /** Sum of component start times over boot wall time. */
  parallelEfficiency?: number
  checkpoints: Array<{ readonly name: CheckpointName; readonly at: number }>
  readonly phases: Array<PhaseRecord>
  readonly components: Array<ComponentRecord>
  /** The component and cause that halted boot, if any. */
  failure?: { readonly component?: string; readonly phase?: Phase; readonly message: string }
  /** What the previous boot's record said, when it did not end cleanly. */
  previous?: PreviousBoot
}

/**
 * What is known of the boot before this one.
 *
 * @since 0.1.0
 */
export interface PreviousBoot {
  readonly bootId: string
  readonly pid: number
  readonly outcome: BootOutcome | "crashed"
  readonly lastCheckpoint?: CheckpointName
  readonly startedAt: string
  /** One line for logs. */
  readonly summary: string
}

const duration = (c: ComponentRecord): number =>
  c.startedAt !== undefined && c.finishedAt !== undefined ? c.finishedAt - c.startedAt : 0

/**
 * Components by start time, longest first, like `systemd-analyze blame`.
 *
 * @since 0.1.0
 */
export const blame = (report: BootReport): ReadonlyArray<{ readonly name: string; readonly millis: number }> =>
  report.components
    .filter((c) => c.startedAt !== undefined && c.finishedAt !== undefined)
    .map((c) => ({ name: c.name, millis: duration(c) }))
    .sort((a, b) => b.millis - a.millis)

/**
 * One link of the critical chain.
 *
 * @since 0.1.0
 */
export interface ChainLink {
  readonly name: string
  /** When it became active, ms since boot start. */
  readonly at: number
  /** How long it took to start, ms. */
  readonly millis: number
}

/**
 * The chain of components that set the boot time, like `systemd-analyze critical-chain`: from the
 * component that finished last, back through whatever finished last before it could start: one of
 * its dependencies or, at a phase boundary, the last component of an earlier phase.
 *
 * @since 0.1.0
 */
export const criticalChain = (report: BootReport): ReadonlyArray<ChainLink> => {
  const finished = report.components.filter((c) => c.finishedAt !== undefined)
  if (finished.length === 0) return []
  let current: ComponentRecord | undefined = finished.reduce((a, b) => (b.finishedAt! > a.finishedAt! ? b : a))
  const chain: Array<ChainLink> = []
  const seen = new Set<string>()
  while (current !== undefined && !seen.has(current.name)) {
    seen.add(current.name)
    chain.push({ name: current.name, at: current.startedAt ?? 0, millis: duration(current) })
    const start = current.readyAt ?? current.startedAt ?? 0
    const phase = phaseOrder.indexOf(current.phase)
    // What gated it: the last to finish of its dependencies and, since phases run in order, of
    // every component of an earlier phase.
    let gate: ComponentRecord | undefined
    for (const c of finished) {
      const candidate = current.dependencies.includes(c.name) || phaseOrder.indexOf(c.phase) < phase
      if (candidate && c.finishedAt! <= start && (!gate || c.finishedAt! > gate.finishedAt!)) gate = c
    }
    current = gate
  }
  return chain.reverse()
}
