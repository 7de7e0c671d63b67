/**
 * The `@novacron/init` component spec: layer and health check. The host's boot table places it
 * (phase, criticality, dependencies).
 *
 * @since 0.1.0
 */
import { Component } from "@novacron/init"
import { Effect } from "effect"
import * as Security from "./Security.js"
import type { NodeInfo, SecuritySettings } from "./SecuritySettings.js"

const WEEK = 7 * 86_400_000

/**
 * Healthy while the node certificate is valid for more than a week; degraded in its last week.
 *
 * @since 0.1.0
 */
export const healthCheck: Effect.Effect<Component.HealthResult, never, Security.Security> = Effect.map(
  Security.Security,
  (s): Component.HealthResult => {
    const left = new Date(s.tls.certificate.validTo).getTime() - Date.now()
    const details = { auth_method: s.authMethod, certificate: s.tls.commonName, valid_to: s.tls.certificate.validTo }
    if (left <= 0) return { status: "unhealthy", message: "node certificate expired", details }
    if (left < WEEK) return { status: "degraded", message: "node certificate expires within a week", details }
    return { status: "healthy", details }
  },
)

/**
 * The component spec (placed by the host's boot table).
 *
 * @since 0.1.0
 */
export const component = (settings: SecuritySettings, node: NodeInfo) =>
  Component.spec({
    name: "security",
    layer: Security.layer(settings, node),
    healthCheck,
    timeout: "10 seconds",
    expectedDuration: "50 millis",
    description: "master key and secrets, encryption, node certificates, authentication and roles",
  })
