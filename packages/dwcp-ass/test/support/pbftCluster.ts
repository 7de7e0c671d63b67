// Four (or seven) PBFT members in this process, each with its own node certificate of one test CA,
// over real mTLS links on loopback.
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Duration, Effect, ExecutionStrategy, Exit, Layer, Scope } from "effect"
import { PbftStore, StateStore } from "../../src/index.js"
import { makeCa } from "./certs.js"

export interface Pki {
  readonly dir: string
  readonly ca: string
  /** node id -> its certificate and key files */
  readonly nodes: ReadonlyMap<string, { readonly cert: string; readonly key: string }>
}

/** A CA and node certificates (CN = node id), made once per test file. */
export const makePki = (ids: ReadonlyArray<string>): Pki => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ass-pbft-"))
  const ca = makeCa(path.join(dir, "ca"), "cluster-ca")
  const nodes = new Map(ids.map((id) => [id, ca.issue(path.join(dir, id), id)] as const))
  return { dir, ca: ca.cert, nodes }
}

export const freePorts = (count: number): Promise<Array<number>> =>
  Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<number>((resolve, reject) => {
          const s = net.createServer()
          s.once("error", reject)
          s.listen(0, "127.0.0.1", () => {
            const port = (s.address() as net.AddressInfo).port
            s.close(() => resolve(port))
          })
        }),
    ),
  )

export interface Member {
  readonly id: string
  readonly store: StateStore.StateStoreApi
  readonly replica: PbftStore.PbftReplica["Type"]
  /** Stops this member alone (its listener and links close), as when its process dies. */
  readonly stop: Effect.Effect<void>
}

export interface ClusterOptions {
  readonly ids?: ReadonlyArray<string>
  readonly checkpointInterval?: number
  readonly history?: number
  readonly viewChangeTimeout?: Duration.DurationInput
  readonly callTimeout?: Duration.DurationInput
  readonly tamper?: (id: string) => PbftStore.Tamper | undefined
  readonly tamperState?: (id: string) => PbftStore.Options["tamperState"]
  readonly cut?: (from: string, to: string) => boolean
  /** Members in the list that are not started: a test speaks for them over its own connections. */
  readonly absent?: ReadonlyArray<string>
}

export const IDS = ["node-a", "node-b", "node-c", "node-d"] as const

/** Starts every member in the Scope; members[i] is replica i (ids sorted), absent ones left out. */
export const startCluster = (
  pki: Pki,
  o: ClusterOptions = {},
): Effect.Effect<ReadonlyArray<Member>, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const ids = [...(o.ids ?? IDS)].sort()
    const ports = yield* Effect.promise(() => freePorts(ids.length))
    const members = Object.fromEntries(ids.map((id, i) => [id, `127.0.0.1:${ports[i]}`]))
    return yield* Effect.all(
      ids
        .filter((id) => !o.absent?.includes(id))
        .map((id) => {
          const files = pki.nodes.get(id)!
          const cut = o.cut
          return Effect.gen(function* () {
            const own = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
            const { store, replica } = yield* PbftStore.make({
              members,
              caFile: pki.ca,
              certFile: files.cert,
              keyFile: files.key,
              checkpointInterval: o.checkpointInterval ?? 4,
              history: o.history,
              viewChangeTimeout: o.viewChangeTimeout ?? Duration.millis(300),
              callTimeout: o.callTimeout ?? Duration.seconds(5),
              leaseTtl: Duration.seconds(1),
              tamper: o.tamper?.(id),
              tamperState: o.tamperState?.(id),
              cut: cut === undefined ? undefined : (peer) => cut(id, peer),
            }).pipe(Scope.extend(own))
            return { id, store, replica, stop: Scope.close(own, Exit.void) } satisfies Member
          })
        }),
      { concurrency: "unbounded" },
    )
  })

/** A store layer: a fresh 4-member cluster, the first member's store. */
export const clusterLayer = (pki: Pki, o: ClusterOptions = {}): Layer.Layer<StateStore.StateStore, unknown> =>
  Layer.scoped(
    StateStore.StateStore,
    Effect.map(startCluster(pki, o), (members) => members[0]!.store),
  )
