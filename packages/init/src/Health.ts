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
