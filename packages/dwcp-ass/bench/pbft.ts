// PBFT mode beside Raft mode, same machine, same run; medians of RUNS interleaved runs.
//   committed writes/s and p50/p99 latency, INFLIGHT writers: PbftStore (n = 4, f = 1, mTLS on
//     loopback, the four members in this process) vs EtcdStore on a private 3-member etcd
//   view change after the primary is killed (its scope closed: listener and links gone): time
//     until a write started after the kill commits; beside etcd's client-visible failover after
//     the leader is SIGKILLed (election timeout 1 s, the same as pbft_view_timeout's default)
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { Context, Duration, Effect, Exit, Layer, Scope } from "effect"
import { EtcdStore, StateStore } from "../src/index.js"
import { startEtcdCluster } from "../test/fixtures/etcdCluster.js"
import { IDS, makePki, startCluster } from "../test/support/pbftCluster.js"

const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const WRITES = Number(process.env.BENCH_WRITES ?? 2000)
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 32)
const VIEW_TIMEOUT = 1000

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const quantile = (xs: ReadonlyArray<number>, q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!
}

/** `total` writes with INFLIGHT workers: writes/s and per-write latency quantiles (ms). */
const throughput = async (put: (i: number) => Promise<unknown>, total: number) => {
  let next = 0
  const lat: Array<number> = []
  const t = performance.now()
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (next < total) {
        const s = performance.now()
        await put(next++)
        lat.push(performance.now() - s)
      }
    }),
  )
  return { rate: (total / (performance.now() - t)) * 1000, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99) }
}

/** A writer every 5 ms; ms from `kill` until a write started after it succeeds. */
const failover = async (put: (i: number) => Promise<unknown>, kill: () => Promise<void>) => {
  let stop = false
  let killedAt = 0
  let recovered = 0
  let i = 0
  const writers: Array<Promise<void>> = []
  const writer = async () => {
    while (!stop) {
      const started = performance.now()
      const ok = await put(i++).then(
        () => true,
        () => false,
      )
      if (ok && killedAt > 0 && started >= killedAt && recovered === 0) recovered = performance.now()
      await new Promise((r) => setTimeout(r, 5))
    }
  }
  for (let w = 0; w < 4; w++) writers.push(writer())
  await new Promise((r) => setTimeout(r, 300))
  // From when the kill is done: writes started before may still have gone through the victim.
  await kill()
  killedAt = performance.now()
  const deadline = performance.now() + 15_000
  while (recovered === 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  stop = true
  await Promise.all(writers)
  return recovered === 0 ? Number.POSITIVE_INFINITY : recovered - killedAt
}

const pbftCluster = async (pki: ReturnType<typeof makePki>) => {
  const scope = Effect.runSync(Scope.make())
  const members = await Effect.runPromise(
    startCluster(pki, {
      checkpointInterval: 16,
      viewChangeTimeout: Duration.millis(VIEW_TIMEOUT),
      callTimeout: Duration.seconds(5),
    }).pipe(Scope.extend(scope)),
  )
  return { members, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

const main = async () => {
  const load = execFileSync("uptime", { encoding: "utf8" }).trim()
  console.log(`uptime before: ${load}`)
  const pki = makePki(IDS)
  const etcd = await startEtcdCluster({ heartbeat: 100, election: 1000 })
  try {
    const scope = Effect.runSync(Scope.make())
    const raft = Context.get(
      await Effect.runPromise(
        Layer.buildWithScope(
          EtcdStore.layer({ endpoints: etcd.endpoints, namespace: "bench/", callTimeout: Duration.millis(1000) }),
          scope,
        ),
      ),
      StateStore.StateStore,
    )
    const value = "x".repeat(100)
    const rows: Array<{ pbft: Awaited<ReturnType<typeof throughput>>; raft: Awaited<ReturnType<typeof throughput>> }> =
      []
    for (let run = 0; run < RUNS; run++) {
      const c = await pbftCluster(pki)
      const pbft = c.members[1]!.store
      await throughput((i) => Effect.runPromise(pbft.put(`w/${i % 256}`, value)), 300)
      await throughput((i) => Effect.runPromise(raft.put(`w/${i % 256}`, value)), 300)
      // Alternating who goes first: the machine's load drifts during a run.
      const measure = async (which: "pbft" | "raft") =>
        throughput((i) => Effect.runPromise((which === "pbft" ? pbft : raft).put(`b/${i % 256}`, value)), WRITES)
      const first = run % 2 === 0 ? "pbft" : "raft"
      const a = await measure(first)
      const b = await measure(first === "pbft" ? "raft" : "pbft")
      const row = first === "pbft" ? { pbft: a, raft: b } : { pbft: b, raft: a }
      rows.push(row)
      console.log(
        `run ${run + 1}: pbft ${row.pbft.rate.toFixed(0)}/s p50 ${row.pbft.p50.toFixed(1)} p99 ${row.pbft.p99.toFixed(1)} ms; raft ${row.raft.rate.toFixed(0)}/s p50 ${row.raft.p50.toFixed(1)} p99 ${row.raft.p99.toFixed(1)} ms`,
      )
      await c.close()
    }

    const vc: Array<number> = []
    const fo: Array<number> = []
    for (let run = 0; run < RUNS; run++) {
      // The primary of view 0 is node-a (replica 0): its scope closes, as when its process dies.
      const c = await pbftCluster(pki)
      const pbft = c.members[1]!.store
      await throughput((i) => Effect.runPromise(pbft.put(`w/${i % 16}`, value)), 100)
      vc.push(
        await failover(
          (i) => Effect.runPromise(pbft.put(`f/${i % 16}`, value)),
          () => Effect.runPromise(c.members[0]!.stop),
        ),
      )
      await c.close()
      const leader = await etcd.leader()
      fo.push(
        await failover(
          (i) => Effect.runPromise(raft.put(`f/${i % 16}`, value)),
          () => etcd.kill(leader),
        ),
      )
      await etcd.restart(leader)
      console.log(`failover run ${run + 1}: pbft view change ${vc[run]!.toFixed(0)} ms, etcd ${fo[run]!.toFixed(0)} ms`)
    }
    await Effect.runPromise(Scope.close(scope, Exit.void))

    const m = (f: (r: (typeof rows)[number]) => number) => median(rows.map(f))
    console.log("\n| figure | pbft (n = 4) | raft (etcd, 3 members) | pbft / raft |\n|---|---:|---:|---:|")
    console.log(
      `| committed writes/s, ${INFLIGHT} in flight | ${m((r) => r.pbft.rate).toFixed(0)} | ${m((r) => r.raft.rate).toFixed(0)} | ${(m((r) => r.pbft.rate) / m((r) => r.raft.rate)).toFixed(2)} |`,
    )
    console.log(
      `| p50 latency, ms | ${m((r) => r.pbft.p50).toFixed(1)} | ${m((r) => r.raft.p50).toFixed(1)} | ${(m((r) => r.pbft.p50) / m((r) => r.raft.p50)).toFixed(2)} |`,
    )
    console.log(
      `| p99 latency, ms | ${m((r) => r.pbft.p99).toFixed(1)} | ${m((r) => r.raft.p99).toFixed(1)} | ${(m((r) => r.pbft.p99) / m((r) => r.raft.p99)).toFixed(2)} |`,
    )
    console.log(
      `| writes again after the primary/leader is killed, ms | ${median(vc).toFixed(0)} | ${median(fo).toFixed(0)} | ${(median(vc) / median(fo)).toFixed(2)} |`,
    )
    console.log(`view change runs ${vc.map((x) => x.toFixed(0))}; etcd failover runs ${fo.map((x) => x.toFixed(0))}`)
  } finally {
    await etcd.stop()
    fs.rmSync(pki.dir, { recursive: true, force: true })
    console.log(`uptime after: ${execFileSync("uptime", { encoding: "utf8" }).trim()}`)
  }
}

void main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
