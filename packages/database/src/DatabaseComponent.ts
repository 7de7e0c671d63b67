/**
 * The `@novacron/init` component spec: the store's layer and health check. The host's boot table
 * places it (phase, criticality, dependencies).
 *
 * @since 0.1.0
 */
import { Component } from "@novacron/init"
import { Effect } from "effect"
import * as Database from "./Database.js"
import type { NodeInfo, StorageSettings } from "./StorageSettings.js"

/**
 * Healthy while a trivial round trip to the store succeeds.
 *
 * @since 0.1.0
 */
export const healthCheck: Effect.Effect<Component.HealthResult, never, Database.Database> = Database.health.pipe(
  Effect.map(
    (h): Component.HealthResult => ({
      status: "healthy",
      details: { ...h.details, backend: h.backend, latency_ms: h.latency_ms },
    }),
  ),
  Effect.catchAll((e) => Effect.succeed<Component.HealthResult>({ status: "unhealthy", message: e.message })),
)

/**
 * The component spec (placed by the host's boot table). The layer opens the store, applies migrations (refusing an edited
 * applied one) and closes the store when the component's scope closes.
 *
 * @since 0.1.0
 */
export const component = (settings: StorageSettings, node: NodeInfo, options: Database.LayerOptions = {}) =>
  Component.spec({
    name: "database",
    layer: Database.layer(settings, node, options),
    healthCheck,
    timeout: "30 seconds",
    expectedDuration: settings.backend === "sqlite" ? "20 millis" : "200 millis",
    description: `state store (${settings.backend}): nodes, tasks, checkpoints, key-value`,
  })
