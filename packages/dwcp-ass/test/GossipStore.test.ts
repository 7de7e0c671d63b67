// Gossip mode over real UDP sockets on loopback: signed datagrams, the state API, strangers refused.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Effect, Exit, Fiber, Layer, Logger, Metric, Option, Scope, Stream } from "effect"
import { GossipStore, StateMetrics, StateStore } from "../src/index.js"
import { makeCa } from "./support/certs.js"

let root: string
const nodes: Record<string, { ca: string; cert: string; key: string }> = {}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-gossip-"))
  const ca = makeCa(path.join(root, "ca"), "cluster-ca")
  for (const n of ["node-a", "node-b", "node-c"]) {
    const f = ca.issue(path.join(root, n), n)
    nodes[n] = { ca: ca.cert, cert: f.cert, key: f.key }
  }
  // Same name as a member, but from another CA: a stranger.
  const other = makeCa(path.join(root, "other-ca"), "other-ca")
  const s = other.issue(path.join(root, "stranger"), "node-c")
  nodes.stranger = { ca: other.cert, cert: s.cert, key: s.key }
}, 30_000)

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true })
})

const start = (name: string, seeds: ReadonlyArray<string>, logs?: Array<string>) =>
  Effect.gen(function* () {
    const f = nodes[name]!
    const layer = GossipStore.layer({
      bind: "127.0.0.1:0",
      seeds,
      caFile: f.ca,
      certFile: f.cert,
      keyFile: f.key,
    })
    const logger = Logger.make(({ message }) => logs?.push(String(message)))
    const ctx = yield* Layer.build(
      logs === undefined ? layer : layer.pipe(Layer.provide(Logger.replace(Logger.defaultLogger, logger))),
    )
    return { store: Context.get(ctx, StateStore.StateStore), gossip: Context.get(ctx, GossipStore.Gossip) }
  })

const waitFor = <E>(check: Effect.Effect<boolean, E>, ms = 10_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (!(yield* check)) {
      if (Date.now() > deadline) return false
      yield* Effect.sleep("20 millis")
    }
    return true
  })

const alive = (g: Context.Tag.Service<GossipStore.Gossip>) =>
  g.members.pipe(
    Effect.map((ms) =>
      ms
        .filter((m) => m.state === "alive")
        .map((m) => m.id)
        .sort()
        .join(","),
    ),
  )

describe("GossipStore over UDP on loopback", () => {
  it.live(
    "three agents: membership and state converge, watch sees a peer's write, each writes only its own keys",
    () =>
      Effect.gen(function* () {
        const a = yield* start("node-a", [])
        const b = yield* start("node-b", [a.gossip.addr])
        const c = yield* start("node-c", [a.gossip.addr])
        expect(a.store.mode).toBe("gossip")
        const all = Effect.all([alive(a.gossip), alive(b.gossip), alive(c.gossip)]).pipe(
          Effect.map((xs) => xs.every((x) => x === "node-a,node-b,node-c")),
        )
        expect(yield* waitFor(all)).toBe(true)
        // Three stores in this process share the metric; each counts its own view (3 alive).
        const aliveGauge = yield* Metric.value(Metric.tagged(StateMetrics.gossipMembers, "state", "alive"))
        expect(aliveGauge.value).toBe(3)

        const seen = yield* c.store.watch("capacity/").pipe(Stream.take(1), Stream.runCollect, Effect.fork)
        yield* Effect.sleep("50 millis")
        yield* a.store.put("capacity/node-a", '{"free":4}')
        yield* b.store.put("svc/node-b/api", "up")
        const event = Chunk.toReadonlyArray(yield* Fiber.join(seen))[0]!
        expect(event._tag === "Put" && [event.entry.key, event.entry.value]).toEqual(["capacity/node-a", '{"free":4}'])
        const everywhere = Effect.forEach([a, b, c], (n) => n.store.list("")).pipe(
          Effect.map((ss) =>
            ss.every(
              (s) =>
                s.entries.map((e) => `${e.key}=${e.value}`).join(" ") ===
                'capacity/node-a={"free":4} svc/node-b/api=up',
            ),
          ),
        )
        expect(yield* waitFor(everywhere)).toBe(true)
        expect(yield* a.store.delete("capacity/node-a")).toBe(true)
        expect(yield* waitFor(c.store.get("capacity/node-a").pipe(Effect.map(Option.isNone)))).toBe(true)

        const foreign = yield* Effect.flip(a.store.put("capacity/node-b", "x"))
        expect(foreign._tag).toBe("NotOwner")
        expect(foreign.message).toContain("owned by node-b, not by node-a")
        const cas = yield* Effect.flip(a.store.compareAndSet("capacity/node-a", 0, "x"))
        expect(cas._tag).toBe("NotLinearizable")
        expect(cas.message).toContain("gossip mode does not offer linearizable operations")
        expect((yield* Effect.flip(Effect.scoped(a.store.campaign("leader", "a"))))._tag).toBe("NotLinearizable")
        expect((yield* Effect.flip(a.store.leader("leader")))._tag).toBe("NotLinearizable")
      }).pipe(Effect.scoped),
    30_000,
  )

  it.live(
    "a stranger (certificate of another CA, a member's name) is refused: not a member, its writes never seen",
    () =>
      Effect.gen(function* () {
        const logs: Array<string> = []
        const a = yield* start("node-a", [], logs)
        const b = yield* start("node-b", [a.gossip.addr])
        expect(yield* waitFor(alive(a.gossip).pipe(Effect.map((x) => x === "node-a,node-b")))).toBe(true)
        const s = yield* start("stranger", [a.gossip.addr, b.gossip.addr])
        yield* s.store.put("capacity/node-c", "evil")
        yield* Effect.sleep("3 seconds")
        expect(yield* alive(a.gossip)).toBe("node-a,node-b")
        expect(yield* alive(b.gossip)).toBe("node-a,node-b")
        expect(Option.isNone(yield* a.store.get("capacity/node-c"))).toBe(true)
        const refused = yield* Metric.value(Metric.tagged(StateMetrics.gossipRefused, "what", "datagram"))
        expect(refused.count).toBeGreaterThan(0)
        expect(
          logs.some((l) =>
            /refused a datagram from 127\.0\.0\.1:\d+: certificate .*CN=node-c.* is not issued by the cluster CA/.test(
              l,
            ),
          ),
        ).toBe(true)
      }).pipe(Effect.scoped),
    30_000,
  )

  it.live(
    "leases are membership: a key written under one shows while its writer runs, and goes when it leaves",
    () =>
      Effect.gen(function* () {
        const a = yield* start("node-a", [])
        const scope = yield* Scope.make()
        const b = yield* start("node-b", [a.gossip.addr]).pipe(Scope.extend(scope))
        const lease = yield* b.store.lease("10 seconds").pipe(Scope.extend(scope))
        expect(yield* lease.valid).toBe(true)
        yield* b.store.put("services/node-b/api", "http://b", { lease })
        yield* b.store.put("capacity/node-b", "kept")
        const seen = (key: string) => a.store.get(key).pipe(Effect.map(Option.isSome))
        expect(yield* waitFor(seen("services/node-b/api"))).toBe(true)
        const gone = yield* a.store.watch("services/").pipe(Stream.take(1), Stream.runCollect, Effect.fork)
        yield* Effect.sleep("50 millis")
        yield* Scope.close(scope, Exit.void)
        expect(Chunk.toReadonlyArray(yield* Fiber.join(gone))[0]?._tag).toBe("Delete")
        expect(yield* seen("services/node-b/api")).toBe(false)
        // A key written without a lease stays after its writer left.
        expect(yield* seen("capacity/node-b")).toBe(true)
      }).pipe(Effect.scoped),
    30_000,
  )

  it.live("a bad setting fails the layer with a clear message", () =>
    Effect.gen(function* () {
      const f = nodes["node-a"]!
      const err = yield* Effect.flip(
        Layer.build(GossipStore.layer({ bind: "0.0.0.0:0", caFile: f.ca, certFile: f.cert, keyFile: f.key })),
      )
      expect(err.message).toContain("is a wildcard: set the advertise address")
      const err2 = yield* Effect.flip(
        Layer.build(
          GossipStore.layer({ bind: "127.0.0.1:0", caFile: f.ca, certFile: nodes["node-b"]!.cert, keyFile: f.key }),
        ),
      )
      expect(err2.message).toContain("is not the key of")
    }).pipe(Effect.scoped),
  )
})
