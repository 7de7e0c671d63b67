/**
 * The `@novacron/init` component spec of the placement service (`dwcp.enable_v3_placement`), with
 * the v1 (binpack) service as fallback. The host's boot table places it (phase, criticality,
 * dependencies).
 *
 * @since 0.1.0
 */
import { StateStore } from "@novacron/dwcp-ass"
import { Component } from "@novacron/init"
import { Effect, Layer, Option } from "effect"
import * as Placement from "./Placement.js"
import * as PlacementSync from "./PlacementSync.js"

// With the cluster state in the boot context, the hosts are every node's published capacity;
// without it (a bare placement engine) hosts are joined by whoever owns the engine.
const withHosts = <E>(engine: Layer.Layer<Placement.Placement, E>) =>
  Layer.unwrapEffect(
    Effect.map(Effect.serviceOption(StateStore.StateStore), (state) =>
      Option.isSome(state)
        ? Layer.provideMerge(
            PlacementSync.layer.pipe(Layer.provide(Layer.succeed(StateStore.StateStore, state.value))),
            engine,
          )
        : engine,
    ),
  )

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
 * The component spec (placed by the host's boot table).
 *
 * @since 0.1.0
 */
export const component = (settings: Placement.PlacementSettings) =>
  Component.spec({
    name: "dwcp-itp",
    layer: withHosts(Placement.layer(settings)),
    fallback: withHosts(
      Placement.layer({
        ...settings,
        enable_v3_placement: false,
        placement: { ...settings.placement, policy: "binpack" },
      }),
    ),
    healthCheck,
    timeout: "5 seconds",
    description: "intelligent task placement (dwcp.enable_v3_placement)",
  })
