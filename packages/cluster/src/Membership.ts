/**
 * Membership: which nodes are connected to this one, kept in the database's `nodes` table too.
 * It takes every connection the network accepts, so the listener never fills its backlog.
 *
 * @since 0.2.0
 */
import { Database } from "@novacron/database"
import { Component } from "@novacron/init"
import { type Connection, Network } from "@novacron/network"
import { Clock, Context, Effect, Layer, Ref } from "effect"

/**
 * A peer as this node sees it.
 *
 * @since 0.2.0
 * @category models
 */
export interface Peer {
  readonly node_id: string
  readonly address: string
  readonly side: Connection.Connection["side"]
  readonly principal: string
  readonly role: string
  readonly since: number
  /** `certificate`: the id is the one its certificate names; `claimed`: only said in its Hello (token or none auth). */
  readonly identity: Connection.Connection["peerNodeIdSource"]
}

/**
 * Which nodes are connected to this one, kept in the database's `nodes` table too.
 *
 * @since 0.2.0
 * @category services
 */
export class Membership extends Context.Tag("@novacron/cluster/Membership")<
  Membership,
  { readonly peers: Effect.Effect<ReadonlyArray<Peer>> }
>() {}

const record = (db: Database.Repository, id: string, address: string, state: string, labels: Record<string, string>) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => db.nodes.put({ id, address, state, labels, updated_at: now })).pipe(
    Effect.catchAll((e) => Effect.logWarning(`membership: could not record node ${id} as ${state}: ${e.message}`)),
  )

/**
 * Takes every connection the network accepts (the listener refuses new ones once its accept
 * backlog is full, so someone must), records the peer as `connected` and later `disconnected`, and
 * drops application frames no handler claims, logging them. The node records itself as `up`, then
 * `stopped` on shutdown.
 */
const make = (nodeId: string) =>
  Effect.gen(function* () {
    const db = yield* Database.Database
    const network = yield* Network.Network
    const peers = yield* Ref.make(new Map<number, Peer>())
    const self = `${network.address.host}:${network.address.port}`

    const hold = (conn: Connection.Connection) =>
      Effect.gen(function* () {
        const peer: Peer = {
          node_id: conn.peerNodeId,
          address: conn.remoteAddress,
          side: conn.side,
          principal: conn.peer.name,
          role: conn.peer.role,
          since: yield* Clock.currentTimeMillis,
          identity: conn.peerNodeIdSource,
        }
        // Only an id a certificate vouches for may write the `nodes` table: a claimed one could
        // overwrite another node's row.
        const recorded = peer.identity === "certificate"
        yield* Ref.update(peers, (m) => new Map(m).set(conn.id, peer))
        yield* Effect.logInfo(
          `peer ${peer.node_id} connected (${conn.side}, ${peer.address}, ${peer.role}${recorded ? "" : ", identity claimed, not recorded"})`,
        )
        if (recorded) yield* record(db, peer.node_id, peer.address, "connected", { side: conn.side, role: peer.role })
        // Nothing in this node handles cluster messages yet: frames are read (so the socket never
        // stalls) and dropped with a reason.
        yield* Effect.forever(
          Effect.flatMap(conn.receive.take, (frame) =>
            Effect.logDebug(`dropped frame type ${frame.type} from ${peer.node_id}: no handler for it`),
          ),
        ).pipe(Effect.ignore)
        const reason = yield* conn.awaitClose
        yield* Ref.update(peers, (m) => {
          const next = new Map(m)
          next.delete(conn.id)
          return next
        })
        yield* Effect.logInfo(`peer ${peer.node_id} disconnected: ${reason}`)
        if (recorded)
          yield* record(db, peer.node_id, peer.address, "disconnected", { side: conn.side, role: peer.role })
      })

    yield* record(db, nodeId, self, "up", { self: "true" })
    yield* Effect.addFinalizer(() => record(db, nodeId, self, "stopped", { self: "true" }))
    yield* Effect.forkScoped(
      Effect.forever(Effect.flatMap(network.accepted.take, (conn) => Effect.forkScoped(hold(conn)))).pipe(
        Effect.catchAll(() => Effect.void),
      ),
    )
    return { peers: Effect.map(Ref.get(peers), (m) => [...m.values()]) }
  })

/**
 * The component spec. A node places it CRITICAL after `database` and `network`: without it the
 * listener would fill its backlog and refuse peers.
 *
 * @since 0.2.0
 * @category components
 */
export const component = (nodeId: string) =>
  Component.spec({
    name: "membership",
    layer: Layer.scoped(Membership, make(nodeId)),
    healthCheck: Effect.flatMap(Membership, (m) =>
      Effect.map(m.peers, (peers) => ({
        status: "healthy" as const,
        details: { peers: peers.map((p) => `${p.node_id}@${p.address} (${p.side}, ${p.identity})`) },
      })),
    ),
    description: "records connected peers; takes accepted connections",
  })
