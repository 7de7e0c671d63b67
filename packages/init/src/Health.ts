/**
 * Aggregated health: each component's check weighed by its criticality.
 *
 * @since 0.1.0
 */

import type { ComponentStatus } from "./BootReport.js"
import type { Criticality, HealthResult } from "./Component.js"

/**
 * Where the node is in its life.
 *
 * @since 0.1.0
 */
export type Lifecycle = "booting" | "ready" | "shutting-down" | "stopped" | "failed"

/**
 * @since 0.1.0
 */
export interface ComponentHealth {
  readonly name: string
  readonly criticality: Criticality
  readonly status: ComponentStatus
  readonly health: HealthResult["status"] | "unknown"
  readonly message?: string | undefined
  readonly details?: Readonly<Record<string, unknown>> | undefined
}

/**
 * @since 0.1.0
 */
export interface HealthReport {
  readonly status: HealthResult["status"]
  /** READY: post-init complete and not shutting down. */
  readonly ready: boolean
  readonly lifecycle: Lifecycle
  readonly components: ReadonlyArray<ComponentHealth>
}

/**
 * Overall status: unhealthy when a CRITICAL component is unhealthy or not running; degraded when
 * anything else is not fully healthy; healthy otherwise.
 *
 * @since 0.1.0
 */
export const aggregate = (components: ReadonlyArray<ComponentHealth>): HealthResult["status"] => {
  let status: HealthResult["status"] = "healthy"
  for (const c of components) {
    const down = c.status === "failed" || c.status === "skipped" || c.status === "stopped"
    const bad = down || c.health === "unhealthy"
    if (bad && c.criticality === "CRITICAL") return "unhealthy"
    if (bad || c.status === "degraded" || c.health === "degraded") status = "degraded"
  }
  return status
}

/**
 * The system-wide check before READY: a node is ready when every CRITICAL component runs and is
 * not unhealthy. `degraded` names the rest that is not fully healthy (a DEGRADED component on its
 * fallback, a WARNING one that failed, a check that says degraded), with why, for the READY log.
 *
 * @since 0.2.0
 */
export interface Readiness {
  readonly ok: boolean
  /** CRITICAL components down or unhealthy: `name: why`. */
  readonly failing: ReadonlyArray<string>
  /** Everything else not fully healthy: `name: why`. */
  readonly degraded: ReadonlyArray<string>
}

/**
 * {@link Readiness} of a health report (see `BootHandle.health`).
 *
 * @since 0.2.0
 */
export const readiness = (report: HealthReport): Readiness => {
  const failing: Array<string> = []
  const degraded: Array<string> = []
  for (const c of report.components) {
    const down = c.status === "failed" || c.status === "skipped" || c.status === "stopped"
    const bad = down || c.health === "unhealthy"
    if (!bad && c.status !== "degraded" && c.health !== "degraded") continue
    const why = c.message ?? (down ? c.status : c.status === "degraded" ? "on its fallback" : c.health)
    ;(bad && c.criticality === "CRITICAL" ? failing : degraded).push(`${c.name}: ${why}`)
  }
  return { ok: failing.length === 0, failing, degraded }
}
