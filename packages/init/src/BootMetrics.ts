/**
 * The boot metrics of the original design, as Effect metrics. Export them with `Prometheus.snapshot`.
 *
 * @since 0.1.0
 */
import { Metric } from "effect"

/**
 * Seconds each component took to start (last attempt included), tagged `component`.
 *
 * @since 0.1.0
 */
export const componentInitDuration = Metric.gauge("component_init_duration_seconds", {
  description: "Seconds the component took to start, retries included",
})

/**
 * Components started, tagged `component`.
 *
 * @since 0.1.0
 */
export const componentInitSuccess = Metric.counter("component_init_success_count", {
  description: "Successful component starts",
  incremental: true,
})

/**
 * Failed start attempts, tagged `component`.
 *
 * @since 0.1.0
 */
export const componentInitFailure = Metric.counter("component_init_failure_count", {
  description: "Failed component start attempts",
  incremental: true,
})

/**
 * Seconds each phase took, tagged `phase`.
 *
 * @since 0.1.0
 */
export const phaseDuration = Metric.gauge("phase_duration_seconds", { description: "Seconds the boot phase took" })

/**
 * Seconds from boot start to READY.
 *
 * @since 0.1.0
 */
export const totalBootTime = Metric.gauge("total_boot_time_seconds", {
  description: "Seconds from boot start to READY",
})

/**
 * Sum of component start times over boot wall time: above 1 means components started in parallel.
 *
 * @since 0.1.0
 */
export const parallelEfficiency = Metric.gauge("parallel_efficiency_ratio", {
  description: "Sum of component init times over boot wall time",
})
