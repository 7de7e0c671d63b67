/**
 * The `@novacron/init` component of the placement service (`dwcp.enable_v3_placement`): phase
 * `services`, criticality `DEGRADED`, with the v1 (binpack) service as fallback.
 *
 * DEGRADED rather than WARNING: without a placement service the node can join the cluster but
 * cannot place a VM, so boot should retry and then go on with the simplest placement that works
 * rather than without any. Not CRITICAL: nothing else in boot needs placement to start.
 *
 * @since 0.1.0
 */
import { Component } from "@novacron/init"
import { Effect } from "effect"
import * as Placement from "./Placement.js"

/**
 * Healthy while the service answers; details say the policy and the map's size.
 *
 * @since 0.1.0
 */
export const healthCheck: Effect.Effect<Component.HealthResult, never, Placement.Placement> = Effect.gen(function* () {
  const p = yield* Placement.Placement
  const hosts = yield* p.hosts
  const u = yield* p.utilisation
  return {
    status: "healthy" as const,
    details: {
      policy: p.policy,
      hosts: hosts.length,
      schedulable: hosts.filter((h) => h.schedulable).length,
      cpu: u.cpu,
      gpu: u.gpu,
    },
  }
})

/**
 * The component descriptor.
 *
 * @since 0.1.0
 */
export const component = (settings: Placement.PlacementSettings) =>
  Component.make({
    name: "dwcp-itp",
    phase: "services",
    criticality: "DEGRADED",
    layer: Placement.layer(settings),
    fallback: Placement.layer({
      ...settings,
      enable_v3_placement: false,
      placement: { ...settings.placement, policy: "binpack" },
    }),
    healthCheck,
    timeout: "5 seconds",
    description: "intelligent task placement (dwcp.enable_v3_placement)",
  })
