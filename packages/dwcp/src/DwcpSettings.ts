/**
 * The `dwcp` section's own switches: which v3 parts a node runs and on how many nodes. Loaded by
 * `@novacron/config` through this subpath (schemas only, no runtime). `enable_v3_placement` is
 * `@novacron/dwcp-itp`'s, the detection keys `@novacron/environment`'s, each part's subsection its
 * package's.
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Schema } from "effect"

const { bool, withDefault: opt } = Common

/**
 * The rollout and the v3 switches (all off by default: a node runs v1 until told otherwise).
 *
 * @example
 * ```ts
 * import { DwcpSettings } from "@novacron/dwcp/DwcpSettings"
 * import { Schema } from "effect"
 *
 * const s = Schema.decodeUnknownSync(DwcpSettings)({ v3_rollout_percentage: 25, enable_v3_transport: true })
 * console.log(s.enable_v3_compression) // false
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const DwcpSettings = Schema.Struct({
  /** Nodes whose stable bucket (0..99, from the node id) is below this run the v3 parts switched on. */
  v3_rollout_percentage: opt(Common.int(0, 100), () => 0),
  enable_v3_transport: opt(bool, () => false),
  enable_v3_compression: opt(bool, () => false),
  enable_v3_prediction: opt(bool, () => false),
  enable_v3_state_sync: opt(bool, () => false),
  enable_v3_consensus: opt(bool, () => false),
  /** The DWCP receiver's port on `network.listen_address` (v3 and v1 transfers land there); 0 = any free port. */
  listen_port: opt(Common.Port, () => 7701),
  /** The address peers dial, published in the cluster state; empty = the listen address (or the first external IPv4 when it listens on all). */
  advertise_address: opt(
    Schema.String.pipe(Schema.maxLength(255)).annotations({ message: () => "expected a host name or address" }),
    () => "",
  ),
})

/**
 * @since 0.1.0
 * @category models
 */
export type DwcpSettings = typeof DwcpSettings.Type
