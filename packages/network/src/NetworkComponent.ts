/**
 * The `@novacron/init` component spec: the listener Layer (it needs `Security`) and its health
 * check. The host's boot table places it (phase, criticality, dependencies).
 *
 * @since 0.1.0
 */
import { Component } from "@novacron/init"
import type { Security } from "@novacron/security"
import { Effect } from "effect"
import * as Network from "./Network.js"
import type { ListenError, NetworkSettingsError } from "./NetworkError.js"
import type { NetworkSettings } from "./NetworkSettings.js"

/**
 * Healthy while listening; reports the bound address and open connections.
 *
 * @since 0.1.0
 */
export const healthCheck = (settings: NetworkSettings): Effect.Effect<Component.HealthResult, never, Network.Network> =>
  Effect.flatMap(Network.Network, (n) =>
    Effect.map(
      n.connectionCount,
      (connections): Component.HealthResult => ({
        status: connections >= settings.max_connections ? "degraded" : "healthy",
        ...(connections >= settings.max_connections ? { message: "at max_connections" } : {}),
        details: { address: `${n.address.host}:${n.address.port}`, connections, max: settings.max_connections },
      }),
    ),
  )

/**
 * The component spec; the host places it after `security`, whose service its Layer needs.
 *
 * @since 0.1.0
 */
export const component = (
  settings: NetworkSettings,
  options?: Network.NetworkOptions,
): Component.Spec<Network.Network, ListenError | NetworkSettingsError, Security.Security> =>
  Component.spec({
    name: "network",
    layer: Network.layer(settings, options),
    healthCheck: healthCheck(settings),
    timeout: "10 seconds",
    expectedDuration: "10 millis",
    description: "TCP/TLS listener, framed protocol, peer dialing",
  })
