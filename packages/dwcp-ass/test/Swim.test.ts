import { describe, expect, it } from "vitest"
import * as Swim from "../src/internal/swim.js"
import { Sim } from "./support/sim.js"

const ids = (n: number) => Array.from({ length: n }, (_, i) => `n${String(i).padStart(2, "0")}`)

// SWIM_SEED=k replays every scenario on other schedules.
const seedBase = Number(process.env.SWIM_SEED ?? 0)

const cluster = (n: number, seed: number, loss = 0, profile = Swim.LAN) => {
  const sim = new Sim<Swim.SwimMessage>(seed + seedBase * 7919)
  const nodes = new Map<string, Swim.Swim>()
  const deaths: Array<{ by: string; id: string; at: number }> = []
  const start = (id: string) => {
    const s = new Swim.Swim(
      id,
      id,
      "",
      profile,
      {
        send: (to, msg) => sim.send(id, to, msg),
        emit: (m, prev) => {
          if (process.env.SWIM_TRACE) console.log(sim.now, id, m.id, prev, "->", m.state, m.incarnation)
          if (m.state === "dead") deaths.push({ by: id, id: m.id, at: sim.now })
        },
        random: sim.random,
      },
      sim.now,
    )
    nodes.set(id, s)
    sim.add(id, s)
    return s
  }
  const all = ids(n)
  for (const id of all) start(id)
  // Everyone joins through the first node.
  for (const id of all.slice(1)) nodes.get(id)!.join([all[0]!])
  sim.loss = loss
  /** Whether every live node sees exactly `expected` as alive (self included). */
  const agree = (expected: ReadonlyArray<string>) =>
    [...nodes.entries()]
      .filter(([id]) => sim.isUp(id))
      .every(([, s]) => {
        const alive = s
          .list()
          .filter((m) => m.state === "alive" || m.state === "suspect")
          .map((m) => m.id)
          .sort()
        return JSON.stringify(alive) === JSON.stringify([...expected].sort())
      })
  return { sim, nodes, all, start, agree, deaths }
}

describe("Swim timing (memberlist formulas)", () => {
  it("suspicion timeout scales with log10 N, retransmits with log10 (N + 1)", () => {
    expect(Swim.suspicionTimeout(4, 5, 1000)).toBe(4000)
    expect(Swim.suspicionTimeout(4, 100, 1000)).toBe(8000)
    expect(Swim.retransmitLimit(4, 9)).toBe(4)
    expect(Swim.retransmitLimit(4, 10)).toBe(8)
    expect([Swim.WAN.probeInterval, Swim.WAN.probeTimeout]).toEqual([5000, 3000])
  })
})

describe("Swim membership (in-process, simulated loss)", () => {
  for (const [n, loss] of [
    [3, 0.1],
    [5, 0.2],
    [16, 0.3],
  ] as const) {
    it(`N=${n} with ${loss * 100} % loss: all join, a killed member is declared dead by all, the rest stay members`, () => {
      const c = cluster(n, 1000 + n, loss)
      expect(c.sim.until(() => c.agree(c.all), 60_000)).toBeDefined()
      // Under heavy loss a healthy member may be declared dead for a while; it refutes and comes back.
      c.sim.run(30_000)
      expect(c.sim.until(() => c.agree(c.all), 60_000)).toBeDefined()
      const falseDeaths = c.deaths.length
      const victim = c.all[n - 1]!
      c.sim.kill(victim)
      const rest = c.all.filter((x) => x !== victim)
      const took = c.sim.until(
        () =>
          [...c.nodes.entries()].filter(([id]) => id !== victim).every(([, s]) => s.member(victim)?.state === "dead"),
        60_000,
      )
      expect(took).toBeDefined()
      expect(c.sim.until(() => c.agree(rest), 60_000)).toBeDefined()
      expect(c.deaths.slice(falseDeaths).some((d) => d.id === victim)).toBe(true)
    })
  }

  it("N=16 with 10 % loss for 5 minutes: no healthy member is ever declared dead", () => {
    const c = cluster(16, 99, 0)
    expect(c.sim.until(() => c.agree(c.all), 60_000)).toBeDefined()
    c.sim.loss = 0.1
    c.sim.run(300_000)
    expect(c.deaths).toEqual([])
    expect(c.agree(c.all)).toBe(true)
  })

  it("WAN profile (probe 5 s, timeout 3 s), N=5, 10 % loss: joins, detects a kill, no false deaths over 10 minutes", () => {
    const c = cluster(5, 21, 0.1, Swim.WAN)
    expect(c.sim.until(() => c.agree(c.all), 120_000)).toBeDefined()
    c.sim.run(600_000)
    expect(c.deaths).toEqual([])
    c.sim.kill(c.all[4]!)
    const took = c.sim.until(
      () => c.all.slice(0, 4).every((id) => c.nodes.get(id)!.member(c.all[4]!)?.state === "dead"),
      120_000,
    )
    // Suspicion alone is 6 x max(1, log10 5) x 5 s = 30 s at the least.
    expect(took).toBeGreaterThan(30_000)
    expect(took).toBeLessThan(120_000)
  })

  it("a partition: each side declares the other dead; after heal membership converges again", () => {
    const c = cluster(6, 7, 0.1)
    const joined = c.sim.until(() => c.agree(c.all), 60_000)
    if (joined === undefined)
      for (const [id, s] of c.nodes)
        console.log(
          id,
          s
            .list()
            .map((m) => `${m.id}:${m.state}:${m.incarnation}`)
            .join(" "),
        )
    expect(joined).toBeDefined()
    const left = c.all.slice(0, 3)
    const right = c.all.slice(3)
    c.sim.partition([left, right])
    const split = c.sim.until(
      () =>
        left.every((l) => right.every((r) => c.nodes.get(l)!.member(r)?.state === "dead")) &&
        right.every((r) => left.every((l) => c.nodes.get(r)!.member(l)?.state === "dead")),
      60_000,
    )
    expect(split).toBeDefined()
    // Longer than gossipToTheDeadTime (30 s): only the reconnect of dead members can heal it now.
    c.sim.run(60_000)
    c.sim.heal()
    // Reconnect (a dead member tried every 10 s) plus refutation brings both sides back.
    expect(c.sim.until(() => c.agree(c.all), 90_000)).toBeDefined()
  })

  it("a restarted member (incarnation 0 again, considered dead) refutes and is alive everywhere", () => {
    const c = cluster(5, 11, 0.1)
    expect(c.sim.until(() => c.agree(c.all), 60_000)).toBeDefined()
    const victim = c.all[2]!
    c.sim.kill(victim)
    expect(c.sim.until(() => c.agree(c.all.filter((x) => x !== victim)), 60_000)).toBeDefined()
    c.start(victim).join([c.all[0]!])
    expect(c.sim.until(() => c.agree(c.all), 60_000)).toBeDefined()
    expect(c.nodes.get(victim)!.member(victim)!.incarnation).toBeGreaterThan(0)
  })

  it("Lifeguard: a slow prober (all its acks lost) raises its own health score instead of killing others", () => {
    const c = cluster(5, 3, 0)
    expect(c.sim.until(() => c.agree(c.all), 60_000)).toBeDefined()
    const slow = c.nodes.get(c.all[0]!)!
    c.sim.partition([[c.all[0]!]])
    c.sim.run(8_000)
    expect(slow.health()).toBeGreaterThan(0)
    c.sim.heal()
    c.sim.run(30_000)
    expect(slow.health()).toBe(0)
  })

  it("a graceful leave is 'left', not 'dead'", () => {
    const c = cluster(4, 5, 0)
    expect(c.sim.until(() => c.agree(c.all), 60_000)).toBeDefined()
    c.nodes.get(c.all[3]!)!.leave()
    expect(
      c.sim.until(() => c.all.slice(0, 3).every((id) => c.nodes.get(id)!.member(c.all[3]!)?.state === "left"), 10_000),
    ).toBeDefined()
    expect(c.deaths).toEqual([])
  })
})

describe("Swim engine details (a recording host, no network)", () => {
  const engine = (members: ReadonlyArray<string>, random = 0.99) => {
    const sent: Array<{ to: string; msg: Swim.SwimMessage; at: number }> = []
    const clock = { now: 0 }
    const s = new Swim.Swim(
      "me",
      "me",
      "",
      Swim.LAN,
      { send: (to, msg) => sent.push({ to, msg, at: clock.now }), emit: () => {}, random: () => random },
      0,
    )
    s.receive(0, "x", {
      k: "sync",
      reply: false,
      members: members.map((id) => ({ id, addr: id, inc: 0, state: "alive", meta: "" })),
    })
    const run = (from: number, to: number) => {
      for (let t = from; t <= to; t += 10) {
        clock.now = t
        s.tick(t)
      }
    }
    return { s, sent, run }
  }

  it("a member it suspects is told so directly (it can refute even if no piggyback reaches it)", () => {
    const { s, sent, run } = engine(["a"])
    // Probes of "a" go unanswered: after the probe interval "me" suspects it.
    run(0, 3000)
    expect(s.member("a")?.state).toBe("suspect")
    const suspected = sent.find((x) => "g" in x.msg && x.msg.g.some((r) => r.t === "suspect"))!
    // At once, not on the next gossip tick (which may pick other members).
    const direct = sent.filter((x) => x.to === "a" && x.at === suspected.at && x.msg.k === "gossip")
    expect(direct.flatMap((x) => ("g" in x.msg ? x.msg.g : []))).toContainEqual({
      t: "suspect",
      id: "a",
      inc: 0,
      from: "me",
    })
  })

  it("its own failed probe confirms a suspicion another member started, and spreads the confirmation", () => {
    // random 0: "a" is probed first.
    const { s, sent, run } = engine(["a", "b", "c", "d", "e", "f"], 0)
    s.receive(10, "b", { k: "gossip", g: [{ t: "suspect", id: "a", inc: 0, from: "b" }] })
    expect(s.member("a")?.state).toBe("suspect")
    sent.length = 0
    // Nothing answers: every probe fails, including those of "a".
    run(20, 3000)
    const confirmations = sent
      .flatMap((x) => ("g" in x.msg ? x.msg.g : []))
      .filter((r) => r.t === "suspect" && r.id === "a")
    expect(confirmations.some((r) => r.t === "suspect" && r.from === "me")).toBe(true)
  })
})
