/**
 * The node's health as Prometheus gauges, so alert rules (not the agent) decide who to page:
 * `novacron_node_ready`, `novacron_component_up`, `novacron_component_healthy`,
 * `novacron_component_degraded` (labels `component` and `criticality`, bounded by the boot table)
 * and `novacron_boot_degraded_components`.
 *
 * @since 0.2.0
 */
import { Effect, Metric, Option } from "effect"
import type { NodeView } from "./HealthEndpoints.js"

/**
 * @since 0.2.0
 * @category metrics
 */
export const ready = Metric.gauge("novacron_node_ready", {
  description: "1 when the node is READY (post-init done, not shutting down), else 0",
})

/**
 * @since 0.2.0
 * @category metrics
 */
export const up = Metric.gauge("novacron_component_up", {
  description: "1 when the component runs (on its service or its fallback), 0 when it failed, stopped or was skipped",
})

/**
 * @since 0.2.0
 * @category metrics
 */
export const healthy = Metric.gauge("novacron_component_healthy", {
  description: "1 when the component's last health check said healthy or degraded, 0 when unhealthy or down",
})

/**
 * @since 0.2.0
 * @category metrics
 */
export const degraded = Metric.gauge("novacron_component_degraded", {
  description: "1 when the component runs degraded (its fallback or a degraded health check)",
})

/**
 * @since 0.2.0
 * @category metrics
 */
export const bootDegraded = Metric.gauge("novacron_boot_degraded_components", {
  description: "Components that finished the boot degraded (DEGRADED retried out onto a fallback, or degraded)",
})

const down = new Set(["failed", "skipped", "stopped"])

/**
 * Reads the node (running every health check once READY) and sets the gauges; the metrics
 * endpoint calls it before each scrape.
 *
 * @since 0.2.0
 * @category sampling
 */
export const sample = (view: NodeView): Effect.Effect<void> =>
  Effect.gen(function* () {
    const lifecycle = yield* view.lifecycle
    yield* Metric.set(ready, lifecycle === "ready" ? 1 : 0)
    const report = Option.getOrUndefined(yield* view.report)
    if (report === undefined) return
    yield* Metric.set(bootDegraded, report.components.filter((c) => c.status === "degraded").length)
    const handle = lifecycle === "ready" ? yield* view.handle : Option.none()
    const health = Option.isSome(handle) ? yield* handle.value.health : undefined
    for (const c of report.components) {
      const h = health?.components.find((x) => x.name === c.name)
      const status = h?.status ?? c.status
      const isUp = status === "running" || status === "degraded"
      const tags = (m: Metric.Metric.Gauge<number>) =>
        m.pipe(Metric.tagged("component", c.name), Metric.tagged("criticality", c.criticality))
      yield* Metric.set(tags(up), isUp ? 1 : 0)
      yield* Metric.set(tags(healthy), isUp && h?.health !== "unhealthy" && !down.has(status) ? 1 : 0)
      yield* Metric.set(tags(degraded), status === "degraded" || h?.health === "degraded" ? 1 : 0)
    }
  })
