// Hybrid mode over real sockets on loopback: one etcd per site, simulated here by one 3-member
// cluster with a key namespace per site (EtcdStore's `namespace`: the store cannot tell the
// difference, and a second cluster would double the slowest part of the file), and a gossip
// pool over UDP between the sites. Site a's first coordinator runs as its own process, so it can
// be SIGKILLed (no resignation, no goodbye).
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Layer, Option, Scope } from "effect"
import { ConsensusSettings, GossipStore, HybridStore, StateStore, StateSync } from "../src/index.js"
import { type EtcdCluster, haveEtcd, haveNetns, startEtcdCluster } from "./fixtures/etcdCluster.js"
import { makeCa } from "./support/certs.js"
import { contract } from "./support/contract.js"

const fixture = fileURLToPath(new URL("./fixtures/hybridAgent.ts", import.meta.url))
let cluster: EtcdCluster
let root: string
let tls: string
const children: Array<ChildProcess> = []

const options = (name: string, site: string, namespace: string, seeds: ReadonlyArray<string>) => ({
  site,
  etcd: { endpoints: cluster.endpoints, namespace, leaseTtl: Duration.seconds(2), callTimeout: Duration.seconds(2) },
  gossip: {
    bind: "127.0.0.1:0",
    seeds,
    caFile: path.join(tls, "ca.crt"),
    certFile: path.join(tls, `${name}.crt`),
    keyFile: path.join(tls, `${name}.key`),
  },
  reconcileEvery: Duration.millis(200),
})

const start = (name: string, site: string, namespace: string, seeds: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const ctx = yield* Layer.build(HybridStore.layer(options(name, site, namespace, seeds)))
    return {
      store: Context.get(ctx, StateStore.StateStore),
      hybrid: Context.get(ctx, HybridStore.Hybrid),
      addr: Context.get(ctx, GossipStore.Gossip).addr,
    }
  })

interface View {
  readonly addr: string
  readonly coordinator: boolean
  readonly state: Record<string, string>
}

/** Site a's agent `name` as a process; resolves with it once it coordinates its site. */
const spawnAgent = (name: string, site: string, namespace: string) =>
  new Promise<{ proc: ChildProcess; view: () => View }>((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--conditions=@novacron/source",
        fixture,
        ...["--name", name, "--site", site, "--namespace", namespace, "--bind", "127.0.0.1:0"],
        ...["--etcd", cluster.endpoints.join(","), "--dir", tls],
      ],
      { stdio: ["pipe", "pipe", "pipe"] },
    )
    children.push(proc)
    let stderr = ""
    proc.stderr!.on("data", (d) => {
      stderr += String(d)
    })
    let last: View | undefined
    const timer = setTimeout(() => reject(new Error(`${name} did not become its site's coordinator in 30 s`)), 30_000)
    proc.once("exit", (code) => reject(new Error(`${name} exited with ${code}: ${stderr}`)))
    readline.createInterface({ input: proc.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) return // its log lines
      last = JSON.parse(line) as View
      if (last.coordinator) {
        clearTimeout(timer)
        resolve({ proc, view: () => last! })
      }
    })
  })

const waitFor = <E>(check: Effect.Effect<boolean, E>, ms = 15_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (!(yield* check)) {
      if (Date.now() > deadline) return false
      yield* Effect.sleep("50 millis")
    }
    return true
  })

const value = (s: StateStore.StateStoreApi, key: string) =>
  s.get(key).pipe(Effect.map((e) => Option.getOrUndefined(e)?.value))

describe.skipIf(!haveEtcd)("hybrid mode: etcd per site, gossip between sites", () => {
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-hybrid-"))
    tls = path.join(root, "tls")
    const ca = makeCa(path.join(root, "ca"), "cluster-ca")
    for (const n of ["a1", "a2", "b1", "c1", "p1", "p2", "q1"]) ca.issue(tls, n)
    fs.copyFileSync(ca.cert, path.join(tls, "ca.crt"))
    // A node's data dir, as StateSync reads it: <data_dir>/tls/{ca.crt,node.crt,node.key}.
    ca.issue(path.join(root, "node", "tls"), "node")
    fs.copyFileSync(ca.cert, path.join(root, "node", "tls", "ca.crt"))
    cluster = await startEtcdCluster()
  }, 60_000)
  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL")
    await cluster?.stop()
    if (root) fs.rmSync(root, { recursive: true, force: true })
  })

  let n = 0
  contract({
    name: "hybrid (this site's keys, on its etcd)",
    layer: () => HybridStore.layer(options("c1", "c", `contract${n++}/`, [])),
    ttl: Duration.seconds(2),
  })

  it.live(
    "a site's keys reach the other site by gossip; other sites' keys are read-only; the coordinator SIGKILLed, the next one re-publishes",
    () =>
      Effect.gen(function* () {
        const a1 = yield* Effect.promise(() => spawnAgent("a1", "a", "site-a/"))
        const a2 = yield* start("a2", "a", "site-a/", [a1.view().addr])
        const b1 = yield* start("b1", "b", "site-b/", [a1.view().addr])
        expect(a2.store.mode).toBe("hybrid")
        expect(yield* a2.hybrid.coordinator).toBe(false)
        expect(yield* waitFor(b1.hybrid.coordinator)).toBe(true)

        // Written in each site's etcd (linearizable there), re-published by its coordinator.
        yield* a2.store.put("site/a/capacity", "1")
        yield* a2.store.put("site/a/old", "x")
        yield* a2.store.put("vm/1", "in a only")
        yield* b1.store.put("site/b/capacity", "1")
        expect(yield* waitFor(value(b1.store, "site/a/capacity").pipe(Effect.map((v) => v === "1")))).toBe(true)
        expect(yield* waitFor(value(a2.store, "site/b/capacity").pipe(Effect.map((v) => v === "1")))).toBe(true)
        expect(yield* value(b1.store, "vm/1")).toBeUndefined()
        expect(yield* value(a2.store, "vm/1")).toBe("in a only")
        const everySite = (s: StateStore.StateStoreApi) =>
          s.list("site/").pipe(Effect.map((snap) => snap.entries.map((e) => `${e.key}=${e.value}`).join(" ")))
        expect(
          yield* waitFor(
            everySite(b1.store).pipe(Effect.map((x) => x === "site/a/capacity=1 site/a/old=x site/b/capacity=1")),
          ),
        ).toBe(true)
        const sites = yield* b1.hybrid.sites
        expect(sites.get("a1")).toBe("a")

        // Another site's keys: read-only here.
        const foreign = yield* Effect.flip(a2.store.put("site/b/capacity", "9"))
        expect(foreign._tag).toBe("NotOwner")
        expect(foreign.message).toContain("owned by the coordinator of site b")
        expect((yield* Effect.flip(a2.store.compareAndSet("site/b/capacity", 0, "9")))._tag).toBe("NotOwner")
        expect((yield* Effect.flip(a2.store.delete("site/b/capacity")))._tag).toBe("NotOwner")
        const spans = yield* Effect.flip(a2.store.list(""))
        expect(spans._tag).toBe("NotLinearizable")
        expect(spans.message).toContain(`list across this site's etcd and the other sites' replica, prefix ""`)

        // The coordinator dies without resigning: a2 is elected once a1's lease lapses (2 s),
        // writes the site's document under its own term and carries on from a1's writes.
        a1.proc.kill("SIGKILL")
        yield* a2.store.put("site/a/capacity", "2")
        yield* a2.store.delete("site/a/old")
        expect(
          yield* waitFor(everySite(b1.store).pipe(Effect.map((x) => x === "site/a/capacity=2 site/b/capacity=1"))),
        ).toBe(true)
        expect(yield* a2.hybrid.coordinator).toBe(true)
        expect(yield* a2.hybrid.terms).toBe(1)
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live.skipIf(!haveNetns())(
    "a partition between the sites (nft drops on loopback) during which site p's coordinator hands over: states converge once healed",
    () =>
      Effect.gen(function* () {
        const p1Scope = yield* Scope.make()
        const p1 = yield* start("p1", "p", "site-p/", []).pipe(Scope.extend(p1Scope))
        expect(yield* waitFor(p1.hybrid.coordinator)).toBe(true)
        const p2 = yield* start("p2", "p", "site-p/", [p1.addr])
        const q1 = yield* start("q1", "q", "site-q/", [p1.addr])
        yield* p2.store.put("site/p/capacity", "1")
        yield* q1.store.put("site/q/capacity", "1")
        const both = (s: StateStore.StateStoreApi, want: string) =>
          s.list("site/").pipe(Effect.map((x) => x.entries.map((e) => `${e.key}=${e.value}`).join(" ") === want))
        expect(yield* waitFor(both(q1.store, "site/p/capacity=1 site/q/capacity=1"))).toBe(true)
        expect(yield* waitFor(both(p2.store, "site/p/capacity=1 site/q/capacity=1"))).toBe(true)

        // Every datagram between the sites' gossip ports dropped, both ways (etcd is not touched).
        const port = (addr: string) => addr.slice(addr.lastIndexOf(":") + 1)
        const ps = `{ ${port(p1.addr)}, ${port(p2.addr)} }`
        const qs = `{ ${port(q1.addr)} }`
        const table = `novacron_hybrid_${process.pid}`
        const nft = (script: string) => execFileSync("nft", ["-f", "-"], { input: script, stdio: "pipe" })
        yield* Effect.acquireRelease(
          Effect.sync(() =>
            nft(
              `table inet ${table} {\n chain input {\n  type filter hook input priority 0;\n` +
                `  udp sport ${ps} udp dport ${qs} drop\n  udp sport ${qs} udp dport ${ps} drop\n }\n}\n`,
            ),
          ),
          // Already deleted by the heal below unless the test failed before it.
          () => Effect.try(() => nft(`delete table inet ${table}\n`)).pipe(Effect.ignore),
        )
        // Meanwhile site p's coordinator stops (resigns) and p2 takes over, both sites write.
        yield* Scope.close(p1Scope, Exit.void)
        expect(yield* waitFor(p2.hybrid.coordinator)).toBe(true)
        yield* p2.store.put("site/p/capacity", "2")
        yield* q1.store.put("site/q/capacity", "2")
        yield* Effect.sleep("1500 millis")
        expect(yield* both(q1.store, "site/p/capacity=1 site/q/capacity=2")).toBe(true)
        expect(yield* both(p2.store, "site/p/capacity=2 site/q/capacity=1")).toBe(true)

        yield* Effect.sync(() => nft(`delete table inet ${table}\n`))
        const want = "site/p/capacity=2 site/q/capacity=2"
        expect(yield* waitFor(both(q1.store, want), 30_000)).toBe(true)
        expect(yield* waitFor(both(p2.store, want), 30_000)).toBe(true)
      }).pipe(Effect.scoped),
    60_000,
  )

  it.live("StateSync: algorithm hybrid needs a site and the site's etcd; modeOf says hybrid", () =>
    Effect.gen(function* () {
      expect(() => ConsensusSettings.decode({ algorithm: "hybrid", etcd_endpoints: ["http://10.0.0.5:2379"] })).toThrow(
        /hybrid mode needs this node's site/,
      )
      expect(() => ConsensusSettings.decode({ algorithm: "hybrid", site: "fra" })).toThrow(
        /hybrid mode needs the site's etcd members/,
      )
      expect(() => ConsensusSettings.decode({ site: "Fra/1" })).toThrow(/expected a site name/)
      const settings = ConsensusSettings.decode({
        algorithm: "hybrid",
        site: "fra",
        etcd_endpoints: cluster.endpoints,
        gossip_bind: "127.0.0.1:0",
      })
      expect(StateSync.modeOf(settings)).toBe("hybrid")
      const ctx = yield* Layer.build(StateSync.hybridLayer(settings, { data_dir: path.join(root, "node") }))
      expect(Context.get(ctx, StateStore.StateStore).mode).toBe("hybrid")
      expect(Context.get(ctx, HybridStore.Hybrid).site).toBe("fra")
    }).pipe(Effect.scoped),
  )
})
