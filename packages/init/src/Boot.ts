/**
 * Boots a set of components: validates the graph, runs the four phases in order, starts each
 * component as soon as its own dependencies are up (under a concurrency cap), applies the
 * CRITICAL / DEGRADED / WARNING policies, writes checkpoints, records metrics, and shuts
 * everything down newest first when the surrounding Scope closes (or on `shutdown`).
 *
 * @since 0.1.0
 */
import type { Context, Duration, Effect, Scope, SubscriptionRef } from "effect"
import type { ComponentFailed, PhaseTimeout, ShutdownTimeout } from "./BootError.js"
import type { BootReport, CheckpointName, ComponentRecord } from "./BootReport.js"
import type { CheckpointError, CheckpointStore } from "./Checkpoint.js"
import type { AnyComponent, Phase } from "./Component.js"
import type { GraphError } from "./Graph.js"
import type { HealthReport, Lifecycle } from "./Health.js"
import * as internal from "./internal/boot.js"

/**
 * @since 0.1.0
 */
export interface BootOptions {
  /** At most this many components start at once (`system.max_concurrency`). Default: no cap. */
  readonly maxConcurrency?: number | undefined
  /** Per-phase timeouts. Defaults: pre-init 10 s, core 20 s, services 20 s, post-init 10 s. */
  readonly phaseTimeouts?: Partial<Record<Phase, Duration.DurationInput>> | undefined
  /** Deadline for the whole shutdown (or rollback). Default 30 s. */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  /** Bound on each health check. Default 5 s. */
  readonly healthCheckTimeout?: Duration.DurationInput | undefined
  /** Where the boot record is written durably. Without it nothing is persisted. */
  readonly checkpoints?: CheckpointStore | undefined
  /**
   * `eager` (default): a component starts as soon as its own dependencies are up.
   * `levels`: the whole dependency level waits for the previous one (the original design; kept for comparison).
   */
  readonly strategy?: "eager" | "levels" | undefined
  /** Services the host gives every component (e.g. the configuration). */
  readonly context?: Context.Context<never> | undefined
  /** Called synchronously on every boot event, e.g. to draw progress on a terminal. */
  readonly onEvent?: ((event: BootEvent) => void) | undefined
}

/**
 * Progress of a boot, as it happens.
 *
 * @since 0.1.0
 */
export type BootEvent =
  | { readonly _tag: "BootStarted"; readonly report: BootReport }
  | { readonly _tag: "PhaseStarted"; readonly phase: Phase }
  | { readonly _tag: "PhaseFinished"; readonly phase: Phase; readonly millis: number }
  | { readonly _tag: "ComponentStarting"; readonly name: string; readonly attempt: number }
  | { readonly _tag: "ComponentFinished"; readonly record: ComponentRecord }
  | { readonly _tag: "ComponentStopped"; readonly record: ComponentRecord }
  | { readonly _tag: "Checkpoint"; readonly name: CheckpointName }

/**
 * A booted node.
 *
 * @since 0.1.0
 */
export interface BootHandle {
  /** Every running component's services, plus the host's and `BootStatus`. */
  readonly context: Context.Context<unknown>
  /** The live boot report (also what the checkpoint record holds). */
  readonly report: BootReport
  readonly lifecycle: SubscriptionRef.SubscriptionRef<Lifecycle>
  /** Runs every health check now and aggregates them. */
  readonly health: Effect.Effect<HealthReport>
  /**
   * {@link BootHandle.health} running only the checks of the components `include` selects; the
   * others are reported from their boot status (a check that is slow the first time, like a KVM
   * probe, need not hold READY when only CRITICAL components decide it).
   *
   * @since 0.2.0
   */
  readonly healthWhere: (include: (component: AnyComponent) => boolean) => Effect.Effect<HealthReport>
  /** Shuts down newest first within the shutdown timeout; runs once, also when the boot's Scope closes. */
  readonly shutdown: Effect.Effect<void, ShutdownTimeout>
}

/**
 * Why `boot` failed.
 *
 * @since 0.1.0
 */
export type BootError = GraphError | ComponentFailed | PhaseTimeout | CheckpointError

/**
 * Boots `components` in the current Scope. On failure everything already started has been shut
 * down, newest first, before the error is returned.
 *
 * @example
 * ```ts
 * import { Boot, Component } from "@novacron/init"
 * import { Effect, Layer } from "effect"
 *
 * const config = Component.make({ name: "config", phase: "pre-init", criticality: "CRITICAL", layer: Layer.empty })
 * const database = Component.make({
 *   name: "database",
 *   phase: "core",
 *   criticality: "CRITICAL",
 *   dependencies: ["config"],
 *   layer: Layer.empty,
 * })
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const node = yield* Boot.boot([config, database], { maxConcurrency: 8 })
 *     yield* Effect.log(`ready in ${node.report.totalMillis} ms`)
 *     yield* Effect.never
 *   }),
 * )
 * ```
 *
 * @since 0.1.0
 */
export const boot: (
  components: Iterable<AnyComponent>,
  options?: BootOptions,
) => Effect.Effect<BootHandle, BootError, Scope.Scope> = internal.boot

/**
 * The DEGRADED default retry: 3 retries after 1 s, 2 s and 4 s.
 *
 * @since 0.1.0
 */
export const defaultDegradedRetry = internal.defaultDegradedRetry

/**
 * Default per-phase timeouts.
 *
 * @since 0.1.0
 */
export const defaultPhaseTimeouts = internal.defaultPhaseTimeouts
