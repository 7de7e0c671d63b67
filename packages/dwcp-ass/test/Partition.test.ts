// Members in network namespaces; nft drop rules cut one off from the others (its clients still
// reach it). Each client talks to one member only, so a client of the cut-off member sees the
// partition. Every key's history must stay linearizable (no stale read from the minority).
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { EtcdStore } from "../src/index.js"
import { type EtcdCluster, haveEtcd, haveNetns, startEtcdCluster } from "./fixtures/etcdCluster.js"
import { type Op, worker } from "./support/history.js"
import { check, register } from "./support/porcupine.js"

let cluster: EtcdCluster

describe.skipIf(!haveEtcd || !haveNetns())("linearizability under partitions (namespaces + nft)", () => {
  beforeAll(async () => {
    cluster = await startEtcdCluster({ netns: true })
  }, 30_000)
  afterAll(() => cluster?.stop())

  it.live(
    "the leader, then a follower, cut off and healed: histories of clients pinned to each member are linearizable",
    () =>
      Effect.gen(function* () {
        const history: Array<Op> = []
        const log: Array<string> = []
        const until = performance.now() + 9_000
        const nemesis = Effect.promise(async () => {
          for (let round = 0; performance.now() < until - 2500; round++) {
            await new Promise((r) => setTimeout(r, 700))
            const leader = await cluster.leader()
            const victim = round % 2 === 0 ? leader : (leader + 1) % cluster.members.length
            cluster.partition(victim)
            log.push(`cut m${victim}`)
            await new Promise((r) => setTimeout(r, 1500))
            cluster.heal(victim)
            log.push(`heal m${victim}`)
          }
        })
        const clients = [0, 1, 2, 3, 4, 5].map((c) =>
          worker(c, until, history).pipe(
            Effect.provide(
              EtcdStore.layer({
                endpoints: [cluster.endpoints[c % cluster.endpoints.length]!],
                namespace: "part/",
                callTimeout: Duration.seconds(1),
              }),
            ),
          ),
        )
        yield* Effect.all([nemesis, ...clients], { concurrency: "unbounded" })
        const unknown = history.filter((o) => o.ret === Infinity).length
        console.log(`partitions: ${history.length} operations (${unknown} unknown), faults: ${log.join(", ")}`)
        expect(log.filter((l) => l.startsWith("cut")).length).toBeGreaterThanOrEqual(2)
        expect(history.filter((o) => o.input.op !== "read" && o.ret !== Infinity).length).toBeGreaterThan(50)
        const res = check(register, history)
        expect(res.failures).toEqual([])
        expect(res.undecided).toEqual([])
      }),
    60_000,
  )
})
