// Gossip mode in-process: SWIM + CRDT agents over the simulated lossy network.
import { describe, expect, it } from "vitest"
import { Replica } from "../src/internal/crdt.js"
import { GossipNode, type Message } from "../src/internal/gossip.js"
import * as Swim from "../src/internal/swim.js"
import { Sim } from "./support/sim.js"

const seedBase = Number(process.env.SWIM_SEED ?? 0)
const ids = (n: number) => Array.from({ length: n }, (_, i) => `n${String(i).padStart(2, "0")}`)

const cluster = (n: number, seed: number, loss: number) => {
  const sim = new Sim<Message>(seed + seedBase * 7919)
  const nodes = new Map<string, GossipNode>()
  const logs: Array<string> = []
  let incarnation = 1
  const start = (id: string, snapshot?: ReturnType<GossipNode["replica"]["snapshot"]>) => {
    const node = new GossipNode({
      id,
      addr: id,
      profile: Swim.LAN,
      incarnation: incarnation++,
      snapshot,
      now: sim.now,
      random: sim.random,
      send: (to, msg) => sim.send(id, to, msg),
      log: (l) => logs.push(l),
    })
    nodes.set(id, node)
    sim.add(id, node)
    return node
  }
  const all = ids(n)
  for (const id of all) start(id)
  for (const id of all.slice(1)) nodes.get(id)!.join([all[0]!])
  sim.loss = loss
  const up = () => [...nodes.entries()].filter(([id]) => sim.isUp(id)).map(([, x]) => x)
  const members = (x: GossipNode) =>
    x.swim
      .list()
      .filter((m) => m.state === "alive" || m.state === "suspect")
      .map((m) => m.id)
      .sort()
      .join(",")
  const state = (x: GossipNode) =>
    [...x.replica.entries()]
      .map(([, k, v]) => `${k}=${v}`)
      .sort()
      .join(" ")
  const converged = (expectedMembers: ReadonlyArray<string>, expectedState: string) =>
    up().every((x) => members(x) === [...expectedMembers].sort().join(",") && state(x) === expectedState)
  return { sim, nodes, all, start, logs, up, state, converged }
}

const expectedState = (writes: ReadonlyMap<string, string>) =>
  [...writes]
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(" ")

describe("gossip mode in-process (SWIM + Yjs anti-entropy, simulated loss)", () => {
  for (const [n, loss] of [
    [3, 0.1],
    [5, 0.3],
    [16, 0.1],
    [16, 0.3],
  ] as const) {
    it(`N=${n}, ${loss * 100} % loss: every write reaches every node, membership agrees`, () => {
      const c = cluster(n, 500 + n, loss)
      const writes = new Map<string, string>()
      // Writes interleaved with time passing, every node writing its own keys.
      for (let round = 0; round < 5; round++) {
        for (const id of c.all) {
          const k = `cap/${id}`
          const v = `r${round}`
          c.nodes.get(id)!.put(k, v)
          writes.set(k, v)
          c.nodes.get(id)!.put(`svc/${id}/r${round}`, "up")
          writes.set(`svc/${id}/r${round}`, "up")
        }
        c.sim.run(700)
      }
      c.nodes.get(c.all[0]!)!.remove(`svc/${c.all[0]}/r0`)
      writes.delete(`svc/${c.all[0]}/r0`)
      expect(c.sim.until(() => c.converged(c.all, expectedState(writes)), 90_000)).toBeDefined()
      expect(c.logs.filter((l) => l.includes("refused"))).toEqual([])
    })
  }

  it("a partition: each side keeps writing; after heal both sides hold every write", () => {
    const c = cluster(6, 41, 0.1)
    const left = c.all.slice(0, 3)
    const right = c.all.slice(3)
    expect(c.sim.until(() => c.converged(c.all, ""), 60_000)).toBeDefined()
    c.sim.partition([left, right])
    const writes = new Map<string, string>()
    for (const id of c.all) {
      c.nodes.get(id)!.put(`cap/${id}`, "during")
      writes.set(`cap/${id}`, "during")
    }
    c.sim.run(60_000)
    // Each side converged on its own writes only.
    const leftState = c.state(c.nodes.get(left[0]!)!)
    expect(leftState).toContain(`cap/${left[1]}=during`)
    expect(leftState).not.toContain(`cap/${right[0]}`)
    c.sim.heal()
    expect(c.sim.until(() => c.converged(c.all, expectedState(writes)), 120_000)).toBeDefined()
  })

  it("a killed member restarted from stale saved state: it gets its lost writes back, and its new writes win", () => {
    const c = cluster(5, 77, 0.2)
    const victim = c.all[2]!
    const writes = new Map<string, string>()
    const v = c.nodes.get(victim)!
    v.put(`cap/${victim}`, "1")
    v.put(`svc/${victim}/a`, "a1")
    c.sim.run(5_000)
    const stale = v.replica.snapshot()
    v.put(`cap/${victim}`, "2")
    v.put(`svc/${victim}/b`, "b1")
    c.sim.run(5_000)
    c.sim.kill(victim)
    c.sim.run(30_000)
    const again = c.start(victim, stale)
    again.join([c.all[0]!])
    // Writes at once, before it caught up: this must win over its previous run's "2".
    again.put(`cap/${victim}`, "3")
    writes.set(`cap/${victim}`, "3")
    writes.set(`svc/${victim}/a`, "a1")
    writes.set(`svc/${victim}/b`, "b1")
    expect(c.sim.until(() => c.converged(c.all, expectedState(writes)), 90_000)).toBeDefined()
  })

  it("a member joining a cluster with more state than one datagram gets it all, in bounded messages", () => {
    const c = cluster(8, 91, 0.1)
    const writes = new Map<string, string>()
    const big = "x".repeat(1000)
    for (const id of c.all)
      for (let i = 0; i < 12; i++) {
        c.nodes.get(id)!.put(`svc/${id}/${i}`, `${big}${i}`)
        writes.set(`svc/${id}/${i}`, `${big}${i}`)
      }
    expect(c.sim.until(() => c.converged(c.all, expectedState(writes)), 90_000)).toBeDefined()
    // About 100 kB of updates: a newcomer lacks all of it.
    let largest = 0
    const late = new GossipNode({
      id: "late",
      addr: "late",
      profile: Swim.LAN,
      incarnation: 99,
      now: c.sim.now,
      random: c.sim.random,
      send: (to, msg) => c.sim.send("late", to, msg),
      log: () => {},
    })
    const sizes = (msg: Message) =>
      msg.k === "ae"
        ? msg.u.reduce((n, d) => n + d.u.byteLength, 0)
        : msg.k === "push"
          ? msg.d.reduce((n, d) => n + d.u.byteLength, 0)
          : 0
    const deliver = c.sim.send.bind(c.sim)
    c.sim.send = (from, to, msg) => {
      largest = Math.max(largest, sizes(msg))
      deliver(from, to, msg)
    }
    c.nodes.set("late", late)
    c.sim.add("late", late)
    late.join([c.all[0]!])
    expect(c.sim.until(() => c.converged([...c.all, "late"], expectedState(writes)), 120_000)).toBeDefined()
    expect(largest).toBeGreaterThan(10_000)
    expect(largest).toBeLessThanOrEqual(40_000)
  })

  it("a node that writes another node's key: every receiver refuses it and logs it, nothing applied", () => {
    const c = cluster(4, 13, 0.1)
    expect(c.sim.until(() => c.converged(c.all, ""), 60_000)).toBeDefined()
    const rogue = c.nodes.get(c.all[1]!)!
    // The API refuses it locally...
    expect(() => rogue.put(`cap/${c.all[0]}`, "stolen")).toThrow(/owned by n00, not by n01/)
    // ...and a node that bypasses its API (a bug, an old version) is refused by every receiver.
    const forged = new Replica(
      c.all[1]!,
      999,
      () => {},
      undefined,
      () => c.all[1]!,
    )
    const u = forged.put(`cap/${c.all[0]}`, "stolen")
    c.sim.loss = 0
    for (const id of c.all) if (id !== c.all[1]) c.sim.send(c.all[1]!, id, { k: "delta", d: [{ o: c.all[1]!, u }] })
    c.sim.run(2_000)
    expect(c.up().every((x) => x.replica.get(`cap/${c.all[0]}`) === undefined)).toBe(true)
    const refused = c.logs.filter((l) => l.includes("refused an update of n01's keys from n01"))
    expect(refused.length).toBe(3)
    expect(refused[0]).toContain("cap/n00 is owned by n00, written into n01's keys")
  })
})
