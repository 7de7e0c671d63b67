/**
 * Which DWCP parts run v3 on this node: a part runs v3 when its `dwcp.enable_v3_*` flag is set and
 * the node falls inside `dwcp.v3_rollout_percentage` (its {@link rolloutBucket} is below it);
 * otherwise it runs v1, and the reason says which key decided.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import type { DwcpSettings } from "./DwcpSettings.js"
import type * as Part from "./Part.js"

/**
 * The flags, as in the `dwcp` section of `novacron.yaml`.
 *
 * @since 0.1.0
 * @category models
 */
export type Flags = Pick<
  DwcpSettings,
  | "v3_rollout_percentage"
  | "enable_v3_transport"
  | "enable_v3_compression"
  | "enable_v3_prediction"
  | "enable_v3_state_sync"
  | "enable_v3_consensus"
> & { readonly enable_v3_placement: boolean }

/**
 * The node's v3 rollout bucket, 0..99: stable for a node id, so a rollout percentage picks the
 * same nodes on every boot (and a higher percentage keeps the nodes a lower one picked).
 *
 * @example
 * ```ts
 * import { Rollout } from "@novacron/dwcp"
 *
 * Rollout.rolloutBucket("node-1") < 50 // same answer on every boot of node-1
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const rolloutBucket = (nodeId: string): number =>
  createHash("sha256").update(nodeId).digest().readUInt32BE(0) % 100

/**
 * Per part: `undefined` when it runs v3, else why it runs v1.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decide = (flags: Flags, nodeId: string): Readonly<Record<Part.Name, string | undefined>> => {
  const bucket = rolloutBucket(nodeId)
  const inside = bucket < flags.v3_rollout_percentage
  const one = (name: Exclude<Part.Name, "congestion">): string | undefined => {
    if (!flags[`enable_v3_${name}`]) return `dwcp.enable_v3_${name} is false`
    if (!inside) {
      return `node ${nodeId} is outside the v3 rollout (bucket ${bucket}, dwcp.v3_rollout_percentage ${flags.v3_rollout_percentage})`
    }
    return undefined
  }
  return {
    transport: one("transport"),
    // ACP shapes AMST's sockets: it rides on the transport flag.
    congestion: one("transport"),
    compression: one("compression"),
    prediction: one("prediction"),
    state_sync: one("state_sync"),
    placement: one("placement"),
  }
}
