/**
 * Byzantine mode: the state API replicated by PBFT (Castro and Liskov, {@link Pbft}) among 4 to 7
 * members, tolerating f = ⌊(n - 1) / 3⌋ that lie, equivocate or stay silent (one for 4 to 6, two
 * for 7; quorums of ⌈(n + f + 1) / 2⌉). Every member runs a replica
 * and a client; the replicas talk over mutually authenticated TLS with the node certificates
 * (`<data_dir>/tls/`), a member's identity being its certificate's common name matched against
 * `pbft_members`, and every message is also signed with the node's key.
 *
 * Consistency, per operation: `get`, `list`, `put`, `compareAndSet`, `delete`, lease grant,
 * keepalive and revoke, `campaign` and `leader` are PBFT requests, linearizable; a result counts
 * once f+1 replicas signed the same reply. `watch` streams what this member's replica executed
 * (a `Reset` when asked from before its kept history, or after it caught up by state transfer).
 *
 * Time: the state machine has no clock of its own. Each request carries its client's clock, the
 * machine's clock is the largest seen, and a lease lapses when that clock passes its expiry;
 * members send a `tick` request when they see a lease due. So replicas never diverge on an
 * expiry; a client whose clock runs ahead can expire leases early (clocks are assumed NTP-close,
 * within the lease margin).
 *
 * @since 0.5.0
 */
import { createPrivateKey, X509Certificate } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Duration, Effect, Layer, type Scope } from "effect"
import type { ConsensusSettings } from "./ConsensusSettings.js"
import type { NodeFiles } from "./EtcdStore.js"
import * as Core from "./internal/core.js"
import * as Node from "./internal/pbftNode.js"
import { commonName } from "./internal/wire.js"
import type * as Pbft from "./Pbft.js"
import { StateUnavailable } from "./StateError.js"
import { StateStore, type StateStoreApi } from "./StateStore.js"

/**
 * A test hook: what a member sends to peer `to` in place of `message` (drop it, alter it and sign
 * with `sign`, send it twice). For Byzantine tests only.
 *
 * @since 0.5.0
 * @category models
 */
export type Tamper = Node.Tamper

/**
 * @since 0.5.0
 * @category models
 */
export interface Options {
  /** Every member, node id (its certificate's common name) to `host:port`: 4 to 7 entries, this node included. */
  readonly members: Readonly<Record<string, string>>
  /** Where to listen, `host:port`; default: this node's own entry in `members`. */
  readonly bind?: string | undefined
  /** PEM files: the cluster CA, this node's certificate (its CN is the node id) and key. */
  readonly caFile: string
  readonly certFile: string
  readonly keyFile: string
  /** Deadline of one call (default 5 s): past it a write's outcome is unknown (`StateTimeout`). */
  readonly callTimeout?: Duration.DurationInput | undefined
  /** TTL of a campaign's lease when none is given (default 10 s). */
  readonly leaseTtl?: Duration.DurationInput | undefined
  /** First view-change timeout (default 1 s); doubles per consecutive view change. */
  readonly viewChangeTimeout?: Duration.DurationInput | undefined
  /** A checkpoint every this many requests (default 16); the log above the stable one is kept. */
  readonly checkpointInterval?: number | undefined
  /** Changes kept for watches that start in the past (default 10000). */
  readonly history?: number | undefined
  /** Requests this member has in flight at once (default 32). */
  readonly concurrency?: number | undefined
  /** Largest frame on a peer link (default 16 MiB: a state transfer carries the whole state). */
  readonly maxFrame?: number | undefined
  /** Byzantine tests: rewrite what this member sends. */
  readonly tamper?: Tamper | undefined
  /** Byzantine tests: rewrite (or drop: undefined) the checkpointed state this member sends a replica catching up. */
  readonly tamperState?: ((to: string, state: Pbft.CheckpointState) => Pbft.CheckpointState | undefined) | undefined
  /** Partition tests: frames to and from the peers for which this returns true are dropped. */
  readonly cut?: ((peer: string) => boolean) | undefined
}

/**
 * This member's replica, for health and tests.
 *
 * @since 0.5.0
 * @category services
 */
export class PbftReplica extends Context.Tag("@novacron/dwcp-ass/PbftReplica")<PbftReplica, Node.NodeInfo>() {}

const refuse = (message: string) => new StateUnavailable({ operation: "pbft", key: "", message })

const parseHostPort = (text: string): { host: string; port: number } | undefined => {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text)
  const port = Number(m?.[2])
  return m !== null && port >= 0 && port <= 65535 ? { host: m[1]!, port } : undefined
}

/**
 * Checks a member list: 4 to 7 members, addresses `host:port`, this node among them.
 * Returns the members ordered by node id (the replica index) or why the list is refused.
 *
 * @since 0.5.0
 * @category validation
 */
export const checkMembers = (
  members: Readonly<Record<string, string>>,
  self: string,
):
  | { readonly _tag: "Ok"; readonly members: ReadonlyArray<Node.Member> }
  | { readonly _tag: "Refused"; readonly message: string } => {
  const ids = Object.keys(members).sort()
  if (ids.length < 4 || ids.length > 7)
    return {
      _tag: "Refused",
      message: `pbft needs 4 to 7 members (4-6 tolerate one Byzantine member, 7 two); dwcp.consensus.pbft_members has ${ids.length}${ids.length < 4 ? ": fewer than 4 cannot tolerate a Byzantine member" : ""}`,
    }
  if (!ids.includes(self))
    return {
      _tag: "Refused",
      message: `this node (${self}, its certificate's common name) is not in dwcp.consensus.pbft_members (${ids.join(", ")})`,
    }
  const out: Array<Node.Member> = []
  for (const id of ids) {
    const a = parseHostPort(members[id]!)
    if (a === undefined || a.port === 0)
      return { _tag: "Refused", message: `pbft member ${id}: expected host:port, got "${members[id]}"` }
    out.push({ id, ...a })
  }
  return { _tag: "Ok", members: out }
}

const read = (file: string, what: string) =>
  Effect.try({
    try: () => fs.readFileSync(file),
    catch: (e) => refuse(`pbft ${what} ${file}: ${(e as Error).message}`),
  })

/**
 * The store, and this member's replica, for the life of the Scope: the listener and every
 * connection close with it.
 *
 * @since 0.5.0
 * @category constructors
 */
export const make = (
  options: Options,
): Effect.Effect<{ readonly store: StateStoreApi; readonly replica: Node.NodeInfo }, StateUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const ca = yield* read(options.caFile, "CA certificate")
    const cert = yield* read(options.certFile, "node certificate")
    const keyPem = yield* read(options.keyFile, "node key")
    const { self, key } = yield* Effect.try({
      try: () => {
        const caCert = new X509Certificate(ca)
        const own = new X509Certificate(cert)
        const key = createPrivateKey(keyPem)
        if (!own.checkIssued(caCert) || !own.verify(caCert.publicKey))
          throw new Error(`node certificate ${options.certFile} is not issued by the CA in ${options.caFile}`)
        if (!own.checkPrivateKey(key)) throw new Error(`${options.keyFile} is not the key of ${options.certFile}`)
        const self = commonName(own)
        if (self === undefined || self === "")
          throw new Error(`node certificate ${options.certFile} has no common name`)
        return { self, key }
      },
      catch: (e) => refuse(`pbft identity: ${(e as Error).message}`),
    })
    const checked = checkMembers(options.members, self)
    if (checked._tag === "Refused") return yield* refuse(checked.message)
    const own = checked.members.find((m) => m.id === self)!
    const bind = options.bind === undefined ? own : parseHostPort(options.bind)
    if (bind === undefined) return yield* refuse(`pbft bind: expected host:port, got "${options.bind}"`)
    const { backend, info } = yield* Node.make({
      self,
      members: checked.members,
      bind,
      ca,
      cert,
      key,
      keyPem,
      callTimeout: Duration.decode(options.callTimeout ?? Duration.seconds(5)),
      defaultLeaseTtl: Duration.decode(options.leaseTtl ?? Duration.seconds(10)),
      viewChangeTimeout: Duration.toMillis(options.viewChangeTimeout ?? Duration.seconds(1)),
      checkpointInterval: options.checkpointInterval ?? 16,
      history: options.history ?? 10_000,
      clients: options.concurrency ?? 32,
      maxFrame: options.maxFrame ?? 16 * 1024 * 1024,
      tamper: options.tamper,
      tamperState: options.tamperState,
      cut: options.cut,
    })
    return { store: Core.make(backend), replica: info }
  })

/**
 * The state service in PBFT mode, plus this member's {@link PbftReplica}.
 *
 * @example
 * ```ts
 * import { PbftStore, StateStore } from "@novacron/dwcp-ass"
 * import { Effect } from "effect"
 *
 * const store = PbftStore.layer({
 *   members: { "node-a": "10.0.0.1:7947", "node-b": "10.0.0.2:7947", "node-c": "10.0.0.3:7947", "node-d": "10.0.0.4:7947" },
 *   caFile: "/var/lib/novacron/tls/ca.crt",
 *   certFile: "/var/lib/novacron/tls/node.crt",
 *   keyFile: "/var/lib/novacron/tls/node.key",
 * })
 * const program = Effect.gen(function* () {
 *   const s = yield* StateStore.StateStore
 *   yield* s.put("vm/a", JSON.stringify({ owner: "node-a" }))
 * }).pipe(Effect.provide(store))
 * ```
 *
 * @since 0.5.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<StateStore | PbftReplica, StateUnavailable> =>
  Layer.scopedContext(
    Effect.map(make(options), ({ store, replica }) =>
      Context.make(StateStore, store).pipe(Context.add(PbftReplica, replica)),
    ),
  )

/**
 * {@link layer} for the `dwcp.consensus` section (`pbft_members`, `pbft_bind`,
 * `pbft_view_timeout`, `call_timeout`, `lease_ttl`), with the node's certificate and key from
 * `<data_dir>/tls/`.
 *
 * @since 0.5.0
 * @category layers
 */
export const fromSettings = (
  settings: ConsensusSettings,
  node: NodeFiles | undefined,
): Layer.Layer<StateStore | PbftReplica, StateUnavailable> => {
  if (node === undefined)
    return Layer.fail(refuse("pbft mode needs the node's data_dir (its tls/ca.crt, node.crt and node.key)"))
  const tls = path.join(node.data_dir, "tls")
  return layer({
    members: Object.fromEntries(
      settings.pbft_members.map((m) => [m.slice(0, m.lastIndexOf("@")), m.slice(m.lastIndexOf("@") + 1)]),
    ),
    bind: settings.pbft_bind === "" ? undefined : settings.pbft_bind,
    caFile: path.join(tls, "ca.crt"),
    certFile: path.join(tls, "node.crt"),
    keyFile: path.join(tls, "node.key"),
    callTimeout: settings.call_timeout,
    leaseTtl: settings.lease_ttl,
    viewChangeTimeout: settings.pbft_view_timeout,
  })
}
