// Hybrid mode's gossip pool in-process: sites' documents written by their coordinators only,
// handed over between terms, across a partition between the sites (simulated network, seeded).
import { describe, expect, it } from "vitest"
import { GossipNode, type Message } from "../src/internal/gossip.js"
import { docOf } from "../src/internal/hybrid.js"
import * as Swim from "../src/internal/swim.js"
import { Sim } from "./support/sim.js"

const seed = Number(process.env.SWIM_SEED ?? 0)

const pool = (ids: ReadonlyArray<string>, loss: number) => {
  const sim = new Sim<Message>(11 + seed * 7919)
  const logs: Array<string> = []
  const nodes = new Map<string, GossipNode>()
  ids.forEach((id, i) => {
    const n = new GossipNode({
      id,
      addr: id,
      owner: docOf,
      profile: Swim.LAN,
      incarnation: i + 1,
      now: sim.now,
      random: sim.random,
      send: (to, msg) => sim.send(id, to, msg),
      log: (l) => logs.push(l),
    })
    nodes.set(id, n)
    sim.add(id, n)
  })
  for (const id of ids.slice(1)) nodes.get(id)!.join([ids[0]!])
  sim.loss = loss
  const state = (n: GossipNode) =>
    [...n.replica.entries()]
      .map(([, k, v]) => `${k}=${v}`)
      .sort()
      .join(" ")
  const agree = (want: string, on: ReadonlyArray<string> = ids) => on.every((id) => state(nodes.get(id)!) === want)
  return { sim, nodes, logs, state, agree, node: (id: string) => nodes.get(id)! }
}

describe("hybrid mode's gossip pool (simulated, 10 % loss)", () => {
  it("a site's keys are written by its coordinator only; a new term carries on, and a partition between the sites heals to the new term's state", () => {
    const p = pool(["a0", "a1", "a2", "b0", "b1"], 0.1)
    const [a0, a1, a2, b0] = [p.node("a0"), p.node("a1"), p.node("a2"), p.node("b0")]
    // Fencing tokens of the sites' etcd elections.
    a0.replica.writeAs({ owner: "site/a", client: 10 })
    b0.replica.writeAs({ owner: "site/b", client: 7 })
    a0.put("site/a/capacity", "1")
    a0.put("site/a/old", "x")
    b0.put("site/b/capacity", "1")
    expect(p.sim.until(() => p.agree("site/a/capacity=1 site/a/old=x site/b/capacity=1"), 20_000)).toBeDefined()

    // Not the coordinator, or another site's keys: refused where written.
    expect(() => a2.put("site/a/capacity", "9")).toThrow(/owned by site\/a, not by a2/)
    expect(() => b0.put("site/a/capacity", "9")).toThrow(/owned by site\/a, not by site\/b/)
    expect(() => a0.put("vm/7", "x")).toThrow(/no node owns this key/)

    // The sites lose each other; a0 is also cut off from its own site and makes a last write
    // of its term that nobody sees (its lease has not lapsed yet), while a1, elected with a
    // larger token, takes over without it, and site b goes on.
    p.sim.partition([["a0"], ["a1", "a2"], ["b0", "b1"]])
    a0.put("site/a/capacity", "old-term")
    a0.replica.writeAs(undefined)
    a1.replica.writeAs({ owner: "site/a", client: 20 })
    a1.put("site/a/capacity", "2")
    a1.remove("site/a/old")
    b0.put("site/b/capacity", "2")
    p.sim.run(5_000)
    expect(p.state(p.node("b1"))).toBe("site/a/capacity=1 site/a/old=x site/b/capacity=2")

    p.sim.heal()
    const want = "site/a/capacity=2 site/b/capacity=2"
    expect(p.sim.until(() => p.agree(want), 60_000)).toBeDefined()
    // The old term's concurrent write lost to the new term's everywhere, a0 included.
    expect(p.state(a0)).toBe(want)
    a1.put("site/a/capacity", "3")
    expect(p.sim.until(() => p.agree("site/a/capacity=3 site/b/capacity=2"), 20_000)).toBeDefined()
  })

  it("an update that puts a key into another site's document, or a node's own keys into the pool, is refused by every receiver and logged", () => {
    const p = pool(["a0", "b0", "rogue"], 0)
    const rogue = p.node("rogue")
    expect(p.sim.until(() => [...p.nodes.values()].every((n) => n.swim.list().length === 3), 20_000)).toBeDefined()
    // A member that writes site b's key into site a's document: the replica would not let an
    // honest node do it, so the rogue's replica is pointed at an owner map of its own.
    const forged = new GossipNode({
      id: "rogue",
      addr: "rogue",
      owner: () => "site/a",
      profile: Swim.LAN,
      incarnation: 99,
      now: p.sim.now,
      random: p.sim.random,
      send: (to, msg) => p.sim.send("rogue", to, msg),
      log: () => {},
    })
    forged.replica.writeAs({ owner: "site/a", client: 99 })
    const u = forged.replica.put("site/b/capacity", "evil")
    // And its own document, as in gossip mode: no node's keys belong in the hybrid pool.
    const own = new GossipNode({
      id: "rogue",
      addr: "rogue",
      profile: Swim.LAN,
      incarnation: 98,
      now: p.sim.now,
      random: p.sim.random,
      send: () => {},
      log: () => {},
    })
    const u2 = own.replica.put("capacity/rogue", "evil")
    for (const to of ["a0", "b0"]) {
      p.sim.send("rogue", to, { k: "delta", d: [{ o: "site/a", u }] })
      p.sim.send("rogue", to, { k: "delta", d: [{ o: "rogue", u: u2 }] })
    }
    void rogue
    p.sim.run(1_000)
    for (const id of ["a0", "b0"]) {
      expect(p.state(p.node(id))).toBe("")
      expect(p.node(id).refused).toBe(2)
    }
    expect(p.logs.some((l) => l.includes("site/b/capacity is owned by site/b, written into site/a's keys"))).toBe(true)
    expect(p.logs.some((l) => l.includes("capacity/rogue is owned by no node, written into rogue's keys"))).toBe(true)
  })
})
