// Histories recorded by several clients while etcd members are SIGKILLed and restarted, checked
// for linearizability; and fenced writes of contending leaders, checked for a deposed one.
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Exit, Option, Ref, Scope, Stream } from "effect"
import { EtcdStore, StateStore } from "../src/index.js"
import { type EtcdCluster, haveEtcd, startEtcdCluster } from "./fixtures/etcdCluster.js"
import { type Op, worker } from "./support/history.js"
import { check, register } from "./support/porcupine.js"

let cluster: EtcdCluster
const RUN = Duration.seconds(Number(process.env.ASS_LIN_SECONDS ?? 10))

const client = (namespace: string) =>
  EtcdStore.layer({ endpoints: cluster.endpoints, namespace, callTimeout: Duration.seconds(1) })

/** SIGKILLs a member (the leader every other time), restarts it, until `until`. */
const nemesis = (until: number, log: Array<string>) =>
  Effect.promise(async () => {
    let i = 0
    while (performance.now() < until - 2500) {
      await new Promise((r) => setTimeout(r, 800))
      const victim = i++ % 2 === 0 ? await cluster.leader() : Math.floor(Math.random() * cluster.members.length)
      await cluster.kill(victim)
      log.push(`kill m${victim}`)
      await new Promise((r) => setTimeout(r, 700))
      await cluster.restart(victim)
      log.push(`restart m${victim}`)
    }
  })

describe.skipIf(!haveEtcd)("linearizability and fencing under etcd member kills", () => {
  beforeAll(async () => {
    cluster = await startEtcdCluster()
  }, 30_000)
  afterAll(() => cluster?.stop())

  it.live(
    "5 clients, reads/writes/CAS on 3 keys, members SIGKILLed and restarted: every key's history is linearizable",
    () =>
      Effect.gen(function* () {
        const history: Array<Op> = []
        const log: Array<string> = []
        const until = performance.now() + Duration.toMillis(RUN)
        yield* Effect.all(
          [
            nemesis(until, log),
            ...[0, 1, 2, 3, 4].map((c) => worker(c, until, history).pipe(Effect.provide(client("lin/")))),
          ],
          {
            concurrency: "unbounded",
          },
        )
        const done = history.filter((o) => o.ret !== Infinity)
        const unknown = history.length - done.length
        console.log(`linearizability: ${history.length} operations (${unknown} unknown), faults: ${log.join(", ")}`)
        expect(log.filter((l) => l.startsWith("kill")).length).toBeGreaterThanOrEqual(2)
        expect(done.filter((o) => o.input.op !== "read").length).toBeGreaterThan(50)
        const res = check(register, history)
        expect(res.failures).toEqual([])
        expect(res.undecided).toEqual([])
      }),
    60_000,
  )

  it.live(
    "contending leaders whose keepalives stall: no fenced write of a deposed leader is accepted",
    () =>
      Effect.gen(function* () {
        const until = performance.now() + 6_000
        const candidate = (name: string) =>
          Effect.gen(function* () {
            const s = yield* StateStore.StateStore
            let accepted = 0
            while (performance.now() < until) {
              const scope = yield* Scope.make()
              const paused = yield* Ref.make(false)
              const lease = yield* s
                .lease(Duration.seconds(1), { keepAlive: Effect.map(Ref.get(paused), (p) => !p) })
                .pipe(Scope.extend(scope))
              const won = yield* s
                .campaign("fence", name, { lease })
                .pipe(Scope.extend(scope), Effect.timeout(Duration.seconds(4)), Effect.either)
              if (won._tag === "Right") {
                const me = won.right
                // Stall the keepalives at a random point of the reign, and keep trying to write.
                const stallAfter = Math.floor(Math.random() * 5)
                for (let i = 0; performance.now() < until && i < 40; i++) {
                  if (i === stallAfter) yield* Ref.set(paused, true)
                  // A writer that believes it still leads: only the store's fence can stop it.
                  const believer = { ...me, isLeader: Effect.succeed(true) }
                  const r = yield* Effect.either(
                    s.put("owner", JSON.stringify({ name, token: me.token, at: i }), { fence: believer }),
                  )
                  if (r._tag === "Right") accepted++
                  else if (r.left._tag === "Deposed") break
                  yield* Effect.sleep(Duration.millis(50))
                }
              }
              yield* Scope.close(scope, Exit.void)
            }
            return accepted
          }).pipe(Effect.scoped, Effect.provide(client("fence/")))
        const accepted = yield* Effect.all(["a", "b", "c"].map(candidate), { concurrency: "unbounded" })
        // The owner key's whole history: tokens never go back (a deposed leader's write after
        // its successor's would).
        const writes = yield* Effect.gen(function* () {
          const s = yield* StateStore.StateStore
          const head = Option.getOrThrow(yield* s.get("owner")).modRevision
          return yield* s.watch("owner", 0).pipe(
            Stream.takeUntil((e) => e._tag === "Put" && e.entry.modRevision >= head),
            Stream.runCollect,
            Effect.map(Chunk.toReadonlyArray),
          )
        }).pipe(Effect.scoped, Effect.provide(client("fence/")))
        const tokens = writes.flatMap((e) =>
          e._tag === "Put" ? [(JSON.parse(e.entry.value) as { token: number }).token] : [],
        )
        expect(tokens.length).toBe(accepted.reduce((a, b) => a + b, 0))
        expect(new Set(tokens).size).toBeGreaterThanOrEqual(2) // leadership changed hands
        for (let i = 1; i < tokens.length; i++) expect(tokens[i]!).toBeGreaterThanOrEqual(tokens[i - 1]!)
      }),
    60_000,
  )
})
