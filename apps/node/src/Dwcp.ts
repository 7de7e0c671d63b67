import type { Settings } from "@novacron/config"
import { Dwcp, DwcpComponent, Rollout } from "@novacron/dwcp"
import { TransportSettings } from "@novacron/dwcp-amst/TransportSettings"
import { StateStore } from "@novacron/dwcp-ass"
import { CompressionSettings } from "@novacron/dwcp-hde/HdeSettings"
import type { Component } from "@novacron/init"
import { OptimizerBridge, PredictorBridge, TransferAccuracy } from "@novacron/ml"
import type { Security } from "@novacron/security"
import { Effect, Either, Schema } from "effect"
import { importEsm } from "./internal/importEsm.js"
import { nodeTls } from "./NodeTls.js"

/** What the DWCP configuration adds to the boot. */
export interface DwcpPlan {
  readonly components: ReadonlyArray<Component.AnySpec>
  /** Why a requested v3 part stays on v1, or why DWCP is missing; logged at boot. */
  readonly notes: ReadonlyArray<string>
}

/**
 * The `dwcp` component every node runs (`@novacron/dwcp`: the receiver, v3 parts per flag and
 * rollout, v1 for the rest), the ML engine's `transfer-accuracy` on its observations and its
 * predictor served to DWCP (`bandwidth-predictor`), plus ITP's placement service and the ML
 * engine's optimiser in it (`placement-optimizer`) when placement runs v3. `@novacron/dwcp`
 * is in the bundle; it imports each part's package (ES modules, outside the bundle, with their
 * native addons) through the bundle's importer only when that part starts, so a node on v1 loads
 * AMST alone, after READY.
 */
export const plan = async (s: Settings.Settings, dataDir: string): Promise<DwcpPlan> => {
  const d = s.dwcp
  const flags = {
    v3_rollout_percentage: d.v3_rollout_percentage,
    enable_v3_transport: d.enable_v3_transport,
    enable_v3_compression: d.enable_v3_compression,
    enable_v3_prediction: d.enable_v3_prediction,
    enable_v3_state_sync: d.enable_v3_state_sync,
    enable_v3_consensus: d.enable_v3_consensus,
    enable_v3_placement: d.enable_v3_placement,
  }
  // Each subsection is re-decoded by its owner's schema: a value the owner refuses is named here.
  const transport = Schema.decodeUnknownEither(TransportSettings)(d.transport)
  const compression = Schema.decodeUnknownEither(CompressionSettings)(d.compression)
  if (Either.isLeft(transport) || Either.isLeft(compression)) {
    return {
      components: [],
      notes: [
        `dwcp: its settings were refused (${String(Either.isLeft(transport) ? transport.left : Either.isLeft(compression) ? compression.left : "")}): this node neither sends nor takes transfers`,
      ],
    }
  }
  const components: Array<Component.AnySpec> = [
    DwcpComponent.live<StateStore.StateStore | Security.Security>({
      nodeId: s.system.node_id,
      dataDir,
      flags,
      transport: transport.right,
      compression: compression.right,
      listen: { host: s.network.listen_address, port: d.listen_port },
      advertise: d.advertise_address,
      store: StateStore.StateStore,
      importer: importEsm,
      // The receiver takes cluster nodes only (see NodeTls).
      tls: nodeTls,
    }),
    // The ML engine's accuracy metric from each real transfer that had a prediction.
    TransferAccuracy.component(Effect.flatMap(Dwcp.Dwcp, (d) => d.observations)),
    // DWCP loads no model: it predicts with the ML engine's, installed here once both run.
    PredictorBridge.component((p) => Effect.flatMap(Dwcp.Dwcp, (d) => d.setPredictor(p))),
  ]
  const off = Rollout.decide(flags, s.system.node_id)
  const notes = Object.entries(off)
    .filter(
      ([part, why]) =>
        why !== undefined && flags[`enable_v3_${part === "congestion" ? "transport" : part}` as "enable_v3_transport"],
    )
    .map(([part, why]) => `dwcp: ${part} runs v1: ${why}`)
  if (off.placement === undefined) {
    try {
      const { Placement, PlacementComponent } =
        await importEsm<typeof import("@novacron/dwcp-itp")>("@novacron/dwcp-itp")
      components.push(
        PlacementComponent.component(
          Schema.decodeSync(Placement.PlacementSettings)({ enable_v3_placement: true, placement: d.placement }),
        ),
        OptimizerBridge.component((o) => Effect.flatMap(Placement.Placement, (p) => p.setOptimizer(o))),
      )
    } catch (e) {
      notes.push(`dwcp: enable_v3_placement is set, but placement did not start (${String(e)}): it stays off`)
    }
  }
  return { components, notes }
}
