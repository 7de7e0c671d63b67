/**
 * The cluster state as a boot component: the `StateStore` the `dwcp.consensus` section asks for
 * (etcd when `etcd_endpoints` are set, the node database otherwise), with a health check that reads
 * through it. The host's boot table places it.
 *
 * @since 0.1.0
 */
import type { Database } from "@novacron/database"
import { Component } from "@novacron/init"
import { Duration, Effect, Schedule } from "effect"
import type { ConsensusSettings } from "./ConsensusSettings.js"
import type * as EtcdStore from "./EtcdStore.js"
import type * as StateError from "./StateError.js"
import * as StateStore from "./StateStore.js"
import * as StateSync from "./StateSync.js"

/**
 * Healthy when a linearizable read of the state answers within the call timeout; unhealthy with
 * the store's own error otherwise (on etcd: no quorum, unreachable members).
 *
 * @since 0.1.0
 * @category health
 */
export const healthCheck: Effect.Effect<Component.HealthResult, never, StateStore.StateStore> = Effect.gen(
  function* () {
    const store = yield* StateStore.StateStore
    const started = yield* Effect.clockWith((c) => c.currentTimeMillis)
    const read = yield* Effect.either(store.get("health/probe"))
    const millis = (yield* Effect.clockWith((c) => c.currentTimeMillis)) - started
    return read._tag === "Right"
      ? { status: "healthy", details: { mode: store.mode, read_ms: millis } }
      : { status: "unhealthy", message: read.left.message, details: { mode: store.mode } }
  },
)

/**
 * The component spec (name `state-sync`). A store that cannot be reached at boot is retried a few
 * times (etcd members restarting together elect a leader within seconds); there is no fallback: a
 * node that cannot reach the cluster state must not take ownership of anything. `node.data_dir`
 * locates the node's certificate for `https://` etcd endpoints.
 *
 * @example
 * ```ts
 * import { ConsensusSettings, StateComponent } from "@novacron/dwcp-ass"
 *
 * const spec = StateComponent.component(ConsensusSettings.defaults)
 * console.log(spec.name) // "state-sync"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const component = (
  settings: ConsensusSettings,
  node?: EtcdStore.NodeFiles | undefined,
): Component.Spec<StateStore.StateStore, StateSync.ModeNotBuilt | StateError.StateUnavailable, Database.Database> => {
  const mode = StateSync.modeOf(settings)
  return Component.spec({
    name: "state-sync",
    layer: StateSync.layer(settings, node),
    retry:
      mode === "etcd" || mode === "hybrid"
        ? Schedule.exponential("250 millis").pipe(Schedule.intersect(Schedule.recurs(4)))
        : undefined,
    healthCheck,
    timeout:
      mode === "etcd" || mode === "hybrid" ? Duration.sum(settings.call_timeout, Duration.seconds(1)) : "10 seconds",
    expectedDuration: mode === "etcd" ? "30 millis" : "5 millis",
    description:
      mode === "etcd"
        ? `cluster state on etcd (${settings.etcd_endpoints.join(", ")}), linearizable`
        : mode === "local"
          ? "cluster state on the node database (single node)"
          : mode === "gossip"
            ? `cluster state by gossip on ${settings.gossip_bind} (${settings.gossip_profile}), eventual, single writer per key`
            : mode === "hybrid"
              ? `cluster state of site ${settings.site} on etcd (${settings.etcd_endpoints.join(", ")}), linearizable; other sites' by gossip on ${settings.gossip_bind}, eventual`
              : `cluster state: ${mode} is not built yet`,
  })
}
