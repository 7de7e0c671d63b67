import { createHash } from "node:crypto"
import type { Settings } from "@novacron/config"
import type { Component } from "@novacron/init"
import { Schema } from "effect"
import { importEsm } from "./internal/importEsm.js"

/**
 * The node's v3 rollout bucket, 0..99: stable for a node id, so a rollout percentage picks the same
 * nodes on every boot.
 */
export const rolloutBucket = (nodeId: string): number =>
  createHash("sha256").update(nodeId).digest().readUInt32BE(0) % 100

/** What the DWCP v3 section of the configuration adds to the boot. */
export interface DwcpPlan {
  readonly components: ReadonlyArray<Component.AnySpec>
  /** Why a requested v3 part is not there; logged at boot. */
  readonly notes: ReadonlyArray<string>
}

/** An import that failed, told apart from a settings decode failing after it. */
class LoadFailed {
  constructor(readonly cause: unknown) {}
}
const load = <M>(name: string): Promise<M> =>
  importEsm<M>(name).catch((e: unknown) => {
    throw new LoadFailed(e)
  })

type Flag = "transport" | "compression" | "prediction" | "state_sync" | "consensus" | "placement"

/**
 * The DWCP v3 components a node runs: a part is on when its `enable_v3_*` flag is set and the node
 * falls inside `v3_rollout_percentage` (its {@link rolloutBucket} is below it). The packages are
 * imported only when used, so a node without v3 parts does not load their native addons.
 */
export const plan = async (s: Settings.Settings): Promise<DwcpPlan> => {
  const d = s.dwcp
  const requested = (
    [
      ["transport", d.enable_v3_transport],
      ["compression", d.enable_v3_compression],
      ["prediction", d.enable_v3_prediction],
      ["state_sync", d.enable_v3_state_sync],
      ["consensus", d.enable_v3_consensus],
      ["placement", d.enable_v3_placement],
    ] as const
  )
    .filter(([, on]) => on)
    .map(([name]): Flag => name)
  if (requested.length === 0) return { components: [], notes: [] }
  const bucket = rolloutBucket(s.system.node_id)
  if (bucket >= d.v3_rollout_percentage) {
    return {
      components: [],
      notes: [
        `dwcp: ${requested.map((f) => `enable_v3_${f}`).join(", ")} set, but node ${s.system.node_id} is outside the v3 rollout (bucket ${bucket}, dwcp.v3_rollout_percentage ${d.v3_rollout_percentage}): v3 parts stay off`,
      ],
    }
  }
  const on = new Set(requested)
  const components: Array<Component.AnySpec> = []
  const notes: Array<string> = []
  // These parts are DEGRADED: a package whose native addon will not load leaves its part off, said
  // why; so does a section its owner's schema refuses, named as such (not as a failed load).
  const part = async (flag: Flag, add: () => Promise<void>) => {
    if (!on.has(flag)) return
    try {
      await add()
    } catch (e) {
      notes.push(
        e instanceof LoadFailed
          ? `dwcp: enable_v3_${flag} is set, but its package did not load (${String(e.cause)}): it stays off`
          : `dwcp: enable_v3_${flag} is set, but its settings were refused (${String(e)}): it stays off`,
      )
    }
  }
  await part("transport", async () => {
    const [{ Acp }, { Amst, TransportSettings }] = await Promise.all([
      load<typeof import("@novacron/dwcp-acp")>("@novacron/dwcp-acp"),
      load<typeof import("@novacron/dwcp-amst")>("@novacron/dwcp-amst"),
    ])
    components.push(
      Acp.component(
        Schema.decodeSync(Acp.Settings)({
          congestion_algorithm: d.transport.congestion_algorithm,
          mode: d.forced_mode === "" ? "hybrid" : d.forced_mode,
        }),
      ),
      Amst.component(Schema.decodeSync(TransportSettings.TransportSettings)(d.transport)),
    )
  })
  await part("compression", async () => {
    const { HdeComponent, HdeSettings } = await load<typeof import("@novacron/dwcp-hde")>("@novacron/dwcp-hde")
    components.push(HdeComponent.component(Schema.decodeSync(HdeSettings.CompressionSettings)(d.compression)))
  })
  await part("prediction", async () => {
    const { Pba, PbaComponent } = await load<typeof import("@novacron/dwcp-pba")>("@novacron/dwcp-pba")
    components.push(PbaComponent.component(Schema.decodeSync(Pba.PbaSettings)({ enableV3Prediction: true })))
  })
  await part("placement", async () => {
    const { Placement, PlacementComponent } = await load<typeof import("@novacron/dwcp-itp")>("@novacron/dwcp-itp")
    components.push(
      PlacementComponent.component(
        Schema.decodeSync(Placement.PlacementSettings)({ enable_v3_placement: true, placement: d.placement }),
      ),
    )
  })
  for (const missing of ["state_sync", "consensus"] as const) {
    if (on.has(missing)) notes.push(`dwcp: enable_v3_${missing} is set, but this build has no ${missing} component`)
  }
  return { components, notes }
}
