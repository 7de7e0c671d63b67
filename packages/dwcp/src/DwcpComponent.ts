/**
 * DWCP as an `@novacron/init` component spec (`dwcp`). The design places it in the core phase,
 * after Security and Network, HIGH: DWCP failing means v1, not a halted node, so the host's
 * table gives it `DEGRADED`. Its layer never fails on a part: each v3 part that does not start is
 * on v1 and retried, and the health check says `degraded` with the part and the cause. It needs
 * the EnvironmentDetector (the `environment` component, pre-init).
 *
 * @since 0.1.0
 */
import type { TransferError } from "@novacron/dwcp-amst"
import type { EnvironmentDetector } from "@novacron/environment"
import { Component } from "@novacron/init"
import { Effect, Layer } from "effect"
import * as Dwcp from "./Dwcp.js"
import * as DwcpNode from "./DwcpNode.js"
import * as LinkClassifier from "./LinkClassifier.js"

/**
 * The spec: provides `Dwcp` and the `LinkClassifier` (for `/status`).
 *
 * @example
 * ```ts
 * import { DwcpComponent, Parts } from "@novacron/dwcp"
 * import { Component } from "@novacron/init"
 * import { Effect } from "effect"
 *
 * declare const engines: ReturnType<typeof Parts.fromPackages>
 * declare const v1Transport: ReturnType<typeof Parts.v1Transport>
 *
 * const spec = DwcpComponent.component({
 *   nodeId: "node-1",
 *   flags: {
 *     v3_rollout_percentage: 100,
 *     enable_v3_transport: true,
 *     enable_v3_compression: true,
 *     enable_v3_prediction: true,
 *     enable_v3_state_sync: true,
 *     enable_v3_consensus: true,
 *     enable_v3_placement: true,
 *   },
 *   v3: engines,
 *   v1Transport,
 * })
 * const placed = Component.place(spec, { phase: "core", criticality: "DEGRADED", dependencies: ["security", "network"] })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const component = (
  options: Dwcp.Options & { readonly classifier?: LinkClassifier.Options | undefined },
): Component.Spec<Dwcp.Dwcp | LinkClassifier.LinkClassifier, never, EnvironmentDetector.EnvironmentDetector> =>
  Component.spec<Dwcp.Dwcp | LinkClassifier.LinkClassifier, never, EnvironmentDetector.EnvironmentDetector>({
    name: "dwcp",
    description: "DWCP v3 parts behind one service, v1 fallback per part, rows per link",
    layer: Layer.provideMerge(Dwcp.layer(options), LinkClassifier.layer(options.classifier)),
    healthCheck: Effect.flatMap(Dwcp.Dwcp, (d) => Effect.map(d.status, Dwcp.health)),
  })

/**
 * The spec a node runs: {@link DwcpNode.layer} (the receiver, the endpoint in the cluster state,
 * the packages' engines) with the link classifier. Provides `Dwcp`, `Inbox` and `LinkClassifier`.
 *
 * @example
 * ```ts
 * import { DwcpComponent } from "@novacron/dwcp"
 * import { StateStore } from "@novacron/dwcp-ass"
 * import { TransportSettings } from "@novacron/dwcp-amst/TransportSettings"
 * import { CompressionSettings } from "@novacron/dwcp-hde/HdeSettings"
 * import { Schema } from "effect"
 *
 * const spec = DwcpComponent.live({
 *   nodeId: "node-1",
 *   dataDir: "/var/lib/novacron",
 *   flags: {
 *     v3_rollout_percentage: 100,
 *     enable_v3_transport: true,
 *     enable_v3_compression: true,
 *     enable_v3_prediction: false,
 *     enable_v3_state_sync: true,
 *     enable_v3_consensus: false,
 *     enable_v3_placement: false,
 *   },
 *   transport: Schema.decodeUnknownSync(TransportSettings)({}),
 *   compression: Schema.decodeUnknownSync(CompressionSettings)({}),
 *   listen: { host: "127.0.0.1", port: 0 },
 *   store: StateStore.StateStore,
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const live = <R>(
  options: DwcpNode.Options<R> & { readonly classifier?: LinkClassifier.Options | undefined },
): Component.Spec<
  Dwcp.Dwcp | DwcpNode.Inbox | LinkClassifier.LinkClassifier,
  TransferError.ListenError,
  EnvironmentDetector.EnvironmentDetector | R
> =>
  Component.spec<
    Dwcp.Dwcp | DwcpNode.Inbox | LinkClassifier.LinkClassifier,
    TransferError.ListenError,
    EnvironmentDetector.EnvironmentDetector | R
  >({
    name: "dwcp",
    description: "DWCP: the receiver, v3 parts behind one service, v1 fallback per part, rows per link",
    layer: Layer.provideMerge(DwcpNode.layer(options), LinkClassifier.layer(options.classifier)),
    // The parts' health, and the receiver's: a node that cannot take transfers is degraded, saying why.
    healthCheck: Effect.gen(function* () {
      const h = Dwcp.health(yield* (yield* Dwcp.Dwcp).status)
      const rx = yield* (yield* DwcpNode.Inbox).receiver
      const details = { ...h.details, receiver: rx._tag === "listening" ? `${rx.host}:${rx.port}` : rx._tag }
      return rx._tag === "failed"
        ? {
            status: "degraded" as const,
            message: [`receiver: ${rx.reason}`, h.message].filter(Boolean).join("; "),
            details,
          }
        : { ...h, details }
    }),
  })
