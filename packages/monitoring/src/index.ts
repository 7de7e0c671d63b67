/**
 * A NovaCron node's monitoring: health, readiness and `/status` over HTTP, `/metrics` in
 * Prometheus text format, and the `monitoring:` settings section.
 *
 * @packageDocumentation
 */

/** The Prometheus alert rules shipped in `alerts/`. */
export * as Alerts from "./Alerts.js"
/** `/healthz`, `/readyz`, `/status`. */
export * as HealthEndpoints from "./HealthEndpoints.js"
/** The node's health as Prometheus gauges. */
export * as HealthMetrics from "./HealthMetrics.js"
/** A small HTTP server in a Scope. */
export * as HttpServer from "./HttpServer.js"
/** `/metrics` as a component spec. */
export * as MetricsEndpoint from "./MetricsEndpoint.js"
/** The `monitoring:` section. */
export * as MonitoringSettings from "./MonitoringSettings.js"
/** CPU profiles and heap snapshots on request, admins only. */
export * as Profiling from "./Profiling.js"
/** OTLP span export and `traceparent` propagation. */
export * as Tracing from "./Tracing.js"
