/**
 * Picks the state store the `dwcp.consensus` section asks for: Raft mode on etcd when
 * `etcd_endpoints` is set, the local store otherwise (a single node), gossip mode for
 * `algorithm: gossip` (the design's `protocol: gossip`), PBFT for `algorithm: pbft` (the
 * `pbft_members`, 4 to 7, over mTLS peer links).
 *
 * @since 0.1.0
 */
import * as path from "node:path"
import type { Database } from "@novacron/database"
import { Data, Either, Layer } from "effect"
import type { ConsensusSettings } from "./ConsensusSettings.js"
import * as EtcdStore from "./EtcdStore.js"
import * as GossipStore from "./GossipStore.js"
import * as HybridStore from "./HybridStore.js"
import * as LocalStore from "./LocalStore.js"
import * as PbftStore from "./PbftStore.js"
import { StateUnavailable } from "./StateError.js"
import type { StateStore } from "./StateStore.js"

/**
 * `dwcp.consensus.algorithm` names a mode this version does not have.
 *
 * @since 0.1.0
 * @category errors
 */
export class ModeNotBuilt extends Data.TaggedError("ModeNotBuilt")<{ readonly algorithm: string }> {
  override get message() {
    return `dwcp.consensus.algorithm = "${this.algorithm}": not built yet (available: "raft", "gossip", "pbft")`
  }
}

/**
 * The gossip store for these settings: the node's own certificate and key (`<data_dir>/tls/`)
 * sign its datagrams, and the cluster CA admits its peers.
 *
 * @since 0.3.0
 * @category layers
 */
export const gossipLayer = (
  settings: ConsensusSettings,
  node: EtcdStore.NodeFiles | undefined,
): Layer.Layer<StateStore | GossipStore.Gossip, StateUnavailable> =>
  Either.match(gossipOptions(settings, node, "gossip"), { onLeft: Layer.fail, onRight: GossipStore.layer })

/**
 * The hybrid store for these settings: the site's etcd (`etcd_*`, as in Raft mode) and the
 * gossip pool between sites (`gossip_*`, as in gossip mode), this node announcing its `site`.
 *
 * @since 0.5.0
 * @category layers
 */
export const hybridLayer = (
  settings: ConsensusSettings,
  node: EtcdStore.NodeFiles | undefined,
): Layer.Layer<StateStore | GossipStore.Gossip | HybridStore.Hybrid, StateUnavailable> => {
  const etcd = EtcdStore.options(settings, node)
  if (Either.isLeft(etcd)) return Layer.fail(etcd.left)
  return Either.match(gossipOptions(settings, node, "hybrid"), {
    onLeft: Layer.fail,
    onRight: (gossip) => HybridStore.layer({ site: settings.site, etcd: etcd.right, gossip }),
  })
}

const gossipOptions = (
  settings: ConsensusSettings,
  node: EtcdStore.NodeFiles | undefined,
  mode: string,
): Either.Either<GossipStore.Options, StateUnavailable> => {
  if (node === undefined)
    return Either.left(
      new StateUnavailable({
        operation: "gossip",
        key: "",
        message: `${mode} mode needs the node's data_dir (its tls/ca.crt, node.crt and node.key)`,
      }),
    )
  const wildcard = /^(0\.0\.0\.0|\[::\]):/.test(settings.gossip_bind)
  if (wildcard && settings.gossip_advertise === "")
    return Either.left(
      new StateUnavailable({
        operation: "gossip",
        key: "",
        message: `dwcp.consensus.gossip_bind ${settings.gossip_bind} listens on every address: set dwcp.consensus.gossip_advertise to the one peers reach`,
      }),
    )
  const tls = path.join(node.data_dir, "tls")
  return Either.right({
    bind: settings.gossip_bind,
    advertise: settings.gossip_advertise === "" ? undefined : settings.gossip_advertise,
    seeds: settings.gossip_seeds,
    profile: settings.gossip_profile,
    caFile: path.join(tls, "ca.crt"),
    certFile: path.join(tls, "node.crt"),
    keyFile: path.join(tls, "node.key"),
  })
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
  if (settings.algorithm === "gossip") return gossipLayer(settings, node)
  if (settings.algorithm === "hybrid") return hybridLayer(settings, node)
  if (settings.algorithm === "pbft") return PbftStore.fromSettings(settings, node)
  if (settings.algorithm !== "raft") return Layer.fail(new ModeNotBuilt({ algorithm: settings.algorithm }))
  return settings.etcd_endpoints.length > 0 ? EtcdStore.fromSettings(settings, node) : LocalStore.fromSettings(settings)
}

/**
 * `"etcd"`, `"local"`, `"gossip"`, `"pbft"` or `"hybrid"`: what {@link layer} would start.
 *
 * @since 0.1.0
 * @category layers
 */
export const modeOf = (settings: ConsensusSettings): "etcd" | "local" | "gossip" | "pbft" | "hybrid" =>
  settings.algorithm !== "raft" ? settings.algorithm : settings.etcd_endpoints.length > 0 ? "etcd" : "local"
