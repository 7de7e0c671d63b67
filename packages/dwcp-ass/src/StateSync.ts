/**
 * Picks the state store the `dwcp.consensus` section asks for: Raft mode on etcd when
 * `etcd_endpoints` is set, the local store otherwise (a single node). Gossip and PBFT modes are
 * not built yet: asking for them fails the layer with `ModeNotBuilt`.
 *
 * @since 0.1.0
 */
import type { Database } from "@novacron/database"
import { Data, Layer } from "effect"
import type { ConsensusSettings } from "./ConsensusSettings.js"
import * as EtcdStore from "./EtcdStore.js"
import * as LocalStore from "./LocalStore.js"
import type { StateUnavailable } from "./StateError.js"
import type { StateStore } from "./StateStore.js"

/**
 * `dwcp.consensus.algorithm` names a mode this version does not have.
 *
 * @since 0.1.0
 * @category errors
 */
export class ModeNotBuilt extends Data.TaggedError("ModeNotBuilt")<{ readonly algorithm: string }> {
  override get message() {
    return `dwcp.consensus.algorithm = "${this.algorithm}": not built yet (available: "raft")`
  }
}

/**
 * The store for these settings. Local mode needs the node's `Database`; etcd over `https://` uses
 * the node's certificate in `<data_dir>/tls/` unless the `etcd_*_file` settings name others.
 *
 * @example
 * ```ts
 * import { Database } from "@novacron/database"
 * import { ConsensusSettings, StateSync } from "@novacron/dwcp-ass"
 * import { Layer } from "effect"
 *
 * const settings = ConsensusSettings.decode({})
 * const store = StateSync.layer(settings).pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  settings: ConsensusSettings,
  node?: EtcdStore.NodeFiles | undefined,
): Layer.Layer<StateStore, ModeNotBuilt | StateUnavailable, Database.Database> => {
  if (settings.algorithm !== "raft") return Layer.fail(new ModeNotBuilt({ algorithm: settings.algorithm }))
  return settings.etcd_endpoints.length > 0 ? EtcdStore.fromSettings(settings, node) : LocalStore.fromSettings(settings)
}

/**
 * `"etcd"`, `"local"`, or the unbuilt algorithm's name: what {@link layer} would start.
 *
 * @since 0.1.0
 * @category layers
 */
export const modeOf = (settings: ConsensusSettings): "etcd" | "local" | "gossip" | "pbft" =>
  settings.algorithm !== "raft" ? settings.algorithm : settings.etcd_endpoints.length > 0 ? "etcd" : "local"
