/**
 * Connection metrics of the listener, as Effect metrics (export them with the node's Prometheus
 * endpoint). Every `reason` is one of {@link RefusalReason}, so the label stays bounded whatever
 * peers send.
 *
 * @since 0.2.0
 */
import { Metric } from "effect"

/**
 * Why an inbound connection was refused or dropped before it was established.
 *
 * @since 0.2.0
 * @category models
 */
export type RefusalReason =
  | "max_connections"
  | "per_ip_limit"
  | "shutting_down"
  | "tls"
  | "timeout"
  | "idle_timeout"
  | "unauthenticated"
  | "forbidden"
  | "identity"
  | "protocol"
  | "pre_auth_memory"
  | "busy"

/**
 * The reasons, for dashboards and tests.
 *
 * @since 0.2.0
 * @category models
 */
export const refusalReasons: ReadonlyArray<RefusalReason> = [
  "max_connections",
  "per_ip_limit",
  "shutting_down",
  "tls",
  "timeout",
  "idle_timeout",
  "unauthenticated",
  "forbidden",
  "identity",
  "protocol",
  "pre_auth_memory",
  "busy",
]

/**
 * Inbound connections established (authenticated and handed to `accepted`).
 *
 * @since 0.2.0
 * @category metrics
 */
export const connectionsAccepted = Metric.counter("novacron_network_connections_accepted_total", {
  description: "Inbound connections established",
  incremental: true,
})

/**
 * Inbound connections refused or dropped before being established, tagged `reason`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const connectionsRefused = Metric.counter("novacron_network_connections_refused_total", {
  description: "Inbound connections refused before being established, by reason",
  incremental: true,
})

/**
 * Connections that connected and closed without sending a byte: reachability probes, not attacks.
 *
 * @since 0.2.0
 * @category metrics
 */
export const probeConnections = Metric.counter("novacron_network_probe_connections_total", {
  description: "Connect-and-close reachability probes seen by the listener",
  incremental: true,
})

/**
 * The refused counter of one reason.
 *
 * @since 0.2.0
 * @category metrics
 */
export const refused = (reason: RefusalReason) => Metric.tagged(connectionsRefused, "reason", reason)
