// dwcp-ass bench on a private 3-member etcd (loopback, etcd's LAN defaults: heartbeat 100 ms,
// election 1 s). Each figure beside its baseline measured in the same run; medians of RUNS runs.
//   writes/s, 64 in flight: StateStore.put              vs etcd3 `put` used directly (default client; and to the leader only)
//   client-visible failover after SIGKILL of the leader: ours (writes to the leader, deadline, 200 ms breaker) vs etcd3 defaults
//   coordinator failover (holder stops keepalives):      ours `campaign`  vs the holder's leased key deleted, seen by an etcd3 watch
import { execFileSync } from "node:child_process"
import { Context, Duration, Effect, Exit, Layer, Ref, Scope } from "effect"
import { Etcd3 } from "etcd3"
import { EtcdStore, StateStore } from "../src/index.js"
import { startEtcdCluster } from "../test/fixtures/etcdCluster.js"

const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const WRITES = Number(process.env.BENCH_WRITES ?? 3000)
const INFLIGHT = 64
const TTL = 2 // seconds, coordinator lease

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/** `total` writes with `INFLIGHT` workers; writes per second. */
const throughput = async (put: (i: number) => Promise<unknown>, total: number) => {
  let next = 0
  const t = performance.now()
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (next < total) await put(next++)
    }),
  )
  return (total / (performance.now() - t)) * 1000
}

const main = async () => {
  const load = execFileSync("uptime", { encoding: "utf8" }).trim()
  console.log(`uptime before: ${load}`)
  const cluster = await startEtcdCluster({ heartbeat: 100, election: 1000 })
  try {
    const scope = Effect.runSync(Scope.make())
    const store = Context.get(
      await Effect.runPromise(
        Layer.buildWithScope(
          EtcdStore.layer({
            endpoints: cluster.endpoints,
            namespace: "bench/",
            callTimeout: Duration.millis(cluster.election),
          }),
          scope,
        ),
      ),
      StateStore.StateStore,
    )
    const raw = new Etcd3({ hosts: [...cluster.endpoints] })
    const value = "x".repeat(100)

    // Warm-up both.
    await throughput((i) => Effect.runPromise(store.put(`w/${i % 256}`, value)), 500)
    await throughput(
      (i) =>
        raw
          .put(`raw/w/${i % 256}`)
          .value(value)
          .exec(),
      500,
    )
    // A stronger baseline than the anchor: etcd3 sending every put to the leader itself, as ours does
    // (no forwarding hop).
    const toLeader = new Etcd3({ hosts: [cluster.endpoints[await cluster.leader()]!] })
    await throughput(
      (i) =>
        toLeader
          .put(`lead/w/${i % 256}`)
          .value(value)
          .exec(),
      500,
    )
    const ours: Array<number> = []
    const base: Array<number> = []
    const lead: Array<number> = []
    // Rotating who goes first: the cluster's throughput drifts during a run.
    for (let r = 0; r < RUNS; r++) {
      const o = async () =>
        ours.push(await throughput((i) => Effect.runPromise(store.put(`w/${i % 1024}`, value)), WRITES))
      const b = async () =>
        base.push(
          await throughput(
            (i) =>
              raw
                .put(`raw/w/${i % 1024}`)
                .value(value)
                .exec(),
            WRITES,
          ),
        )
      const l = async () =>
        lead.push(
          await throughput(
            (i) =>
              toLeader
                .put(`lead/w/${i % 1024}`)
                .value(value)
                .exec(),
            WRITES,
          ),
        )
      const order = [o, b, l]
      for (let j = 0; j < order.length; j++) await order[(j + r) % order.length]!()
    }
    toLeader.close()
    console.log(
      `writes/s (64 in flight, 100 B): ours ${ours.map((x) => x.toFixed(0))} etcd3 ${base.map((x) => x.toFixed(0))} etcd3 to the leader ${lead.map((x) => x.toFixed(0))}`,
    )

    // Failover: a writer every 5 ms; time from SIGKILL of the leader until a write started after
    // it succeeds.
    const failover = async (put: (i: number) => Promise<unknown>) => {
      const leader = await cluster.leader()
      let killedAt = 0
      let recovered = 0
      let i = 0
      const writer = (async () => {
        while (recovered === 0) {
          const started = performance.now()
          try {
            await put(i++)
            // Only a write started after the kill shows the cluster took writes again.
            if (killedAt > 0 && started >= killedAt) recovered = performance.now()
          } catch {}
          await new Promise((r) => setTimeout(r, 5))
        }
      })()
      await new Promise((r) => setTimeout(r, 300))
      killedAt = performance.now()
      await cluster.kill(leader)
      await Promise.race([writer, new Promise((r) => setTimeout(r, 30_000))])
      const ms = recovered === 0 ? Number.POSITIVE_INFINITY : recovered - killedAt
      recovered = 1
      await cluster.restart(leader)
      await new Promise((r) => setTimeout(r, 1000))
      return ms
    }
    const fo: Array<number> = []
    const foBase: Array<number> = []
    for (let r = 0; r < RUNS; r++) {
      fo.push(await failover((i) => Effect.runPromise(store.put(`f/${i % 16}`, value))))
      // A fresh default client each run, so its breakers start closed like ours.
      const d = new Etcd3({ hosts: [...cluster.endpoints] })
      await d.put("raw/f/warm").value(value)
      foBase.push(
        await failover((i) =>
          d
            .put(`raw/f/${i % 16}`)
            .value(value)
            .exec(),
        ),
      )
      d.close()
    }
    console.log(`failover ms: ours ${fo.map((x) => x.toFixed(0))} etcd3 defaults ${foBase.map((x) => x.toFixed(0))}`)

    // Coordinator failover: holder A stops its keepalives (a dead agent); time until B leads.
    const coordOurs = async () => {
      const s = Effect.runSync(Scope.make())
      const paused = Effect.runSync(Ref.make(false))
      const a = await Effect.runPromise(
        store
          .campaign("coord", "a", {
            lease: await Effect.runPromise(
              store
                .lease(Duration.seconds(TTL), { keepAlive: Effect.map(Ref.get(paused), (p) => !p) })
                .pipe(Scope.extend(s)),
            ),
          })
          .pipe(Scope.extend(s)),
      )
      const s2 = Effect.runSync(Scope.make())
      const b = Effect.runPromise(store.campaign("coord", "b", { ttl: Duration.seconds(TTL) }).pipe(Scope.extend(s2)))
      await new Promise((r) => setTimeout(r, 200))
      const t = performance.now()
      Effect.runSync(Ref.set(paused, true))
      await b
      const ms = performance.now() - t
      void a
      await Effect.runPromise(Scope.close(s2, Exit.void))
      await Effect.runPromise(Scope.close(s, Exit.void))
      return ms
    }
    // Baseline: the floor of any election recipe on etcd, a leased key of a holder that stops
    // (keepalives stopped, no revoke) until a raw etcd3 watcher sees it deleted.
    // (etcd3's own Election was tried first: its next candidate was not elected within 10 s.)
    const coordBase = async () => {
      const ca = new Etcd3({ hosts: [...cluster.endpoints] })
      const cb = new Etcd3({ hosts: [...cluster.endpoints] })
      const lease = ca.lease(TTL)
      await lease.put("raw-coord/a").value("a").exec()
      const w = await cb.watch().key("raw-coord/a").create()
      const deleted = new Promise<void>((r) => w.on("delete", () => r()))
      await new Promise((r) => setTimeout(r, 200))
      const t = performance.now()
      lease.release() // stops keepalives, no revoke: the holder is gone
      await deleted
      const ms = performance.now() - t
      await w.cancel()
      ca.close()
      cb.close()
      return ms
    }
    const co: Array<number> = []
    const coBase: Array<number> = []
    const bounded = <A>(what: string, p: Promise<A>) =>
      Promise.race([
        p,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no result in 30 s`)), 30_000)),
      ])
    for (let r = 0; r < RUNS; r++) {
      co.push(await bounded("coordinator failover (ours)", coordOurs()))
      console.error(`coordinator ours ${co[r]!.toFixed(0)} ms`)
      coBase.push(await bounded("coordinator failover (lease expiry)", coordBase()))
      console.error(`coordinator baseline ${coBase[r]!.toFixed(0)} ms`)
    }
    console.log(
      `coordinator failover ms (TTL ${TTL} s): ours ${co.map((x) => x.toFixed(0))} lease expiry seen by etcd3 ${coBase.map((x) => x.toFixed(0))}`,
    )

    const rows: Array<[string, string, number, string, number, string]> = [
      [
        "writes/s, 64 in flight, 100 B (higher is better)",
        "StateStore.put",
        median(ours),
        "etcd3 put",
        median(base),
        "≥ 0.9",
      ],
      [
        "writes/s, 64 in flight, 100 B (higher is better)",
        "StateStore.put",
        median(ours),
        "etcd3 put to the leader",
        median(lead),
        "-",
      ],
      [
        "client-visible failover after leader SIGKILL, ms",
        "EtcdStore",
        median(fo),
        "etcd3 defaults",
        median(foBase),
        `≤ ${cluster.election + 500} ms`,
      ],
      [
        `coordinator failover, ms (lease TTL ${TTL} s)`,
        "campaign",
        median(co),
        "lease expiry (etcd3 watch)",
        median(coBase),
        `≤ ${TTL * 1000 + 1000} ms`,
      ],
    ]
    console.log("\n| measure | ours | median | baseline | median | ratio | goal |\n|---|---|---:|---|---:|---:|---|")
    for (const [m, o, ov, b, bv, goal] of rows)
      console.log(`| ${m} | ${o} | ${ov.toFixed(0)} | ${b} | ${bv.toFixed(0)} | ${(ov / bv).toFixed(2)} | ${goal} |`)
    console.log(`\nuptime after: ${execFileSync("uptime", { encoding: "utf8" }).trim()}`)
    raw.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
  } finally {
    await cluster.stop()
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
