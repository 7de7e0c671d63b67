// SWIM membership with Lifeguard (local health multiplier, nacks, dynamic suspicion), after
// HashiCorp memberlist. A pure engine: no timers, no sockets, no randomness of its own. The host
// calls `tick(now)` and `receive(now, from, msg)`; the engine calls `send` and `emit`. That keeps
// it deterministic under a simulated clock and lossy network (test/support/swimSim.ts).

export type MemberState = "alive" | "suspect" | "dead" | "left"

export interface Member {
  readonly id: string
  readonly addr: string
  readonly incarnation: number
  readonly state: MemberState
  /** Engine time (ms) of the last state change. */
  readonly since: number
  /** Small opaque text the member announces (site, writer id). */
  readonly meta: string
}

/** A membership fact spread by piggybacking (memberlist's alive/suspect/dead messages). */
export type Rumor =
  | { readonly t: "alive"; readonly id: string; readonly inc: number; readonly addr: string; readonly meta: string }
  | { readonly t: "suspect"; readonly id: string; readonly inc: number; readonly from: string }
  | { readonly t: "dead"; readonly id: string; readonly inc: number; readonly from: string }

export interface WireMember {
  readonly id: string
  readonly addr: string
  readonly inc: number
  readonly state: MemberState
  readonly meta: string
}

export type SwimMessage =
  | { readonly k: "ping"; readonly seq: number; readonly target: string; readonly g: ReadonlyArray<Rumor> }
  | { readonly k: "ack"; readonly seq: number; readonly g: ReadonlyArray<Rumor> }
  | { readonly k: "nack"; readonly seq: number }
  | {
      readonly k: "pingreq"
      readonly seq: number
      readonly target: string
      readonly addr: string
      readonly g: ReadonlyArray<Rumor>
    }
  | { readonly k: "gossip"; readonly g: ReadonlyArray<Rumor> }
  | { readonly k: "sync"; readonly reply: boolean; readonly members: ReadonlyArray<WireMember> }

/** memberlist's tunables (its names, milliseconds). */
export interface SwimProfile {
  readonly probeInterval: number
  readonly probeTimeout: number
  readonly indirectChecks: number
  readonly suspicionMult: number
  readonly suspicionMaxTimeoutMult: number
  readonly retransmitMult: number
  readonly awarenessMaxMultiplier: number
  readonly gossipInterval: number
  readonly gossipNodes: number
  readonly gossipToTheDeadTime: number
  readonly pushPullInterval: number
  /** Serf's reconnect: how often a dead member is tried again (heals partitions). */
  readonly reconnectInterval: number
  /** Rumors piggybacked on one message at most (keeps datagrams under the MTU). */
  readonly maxPiggyback: number
}

/** memberlist DefaultLANConfig. */
export const LAN: SwimProfile = {
  probeInterval: 1000,
  probeTimeout: 500,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 4,
  awarenessMaxMultiplier: 8,
  gossipInterval: 200,
  gossipNodes: 3,
  gossipToTheDeadTime: 30_000,
  pushPullInterval: 30_000,
  reconnectInterval: 10_000,
  maxPiggyback: 10,
}

/** memberlist DefaultWANConfig. */
export const WAN: SwimProfile = {
  ...LAN,
  probeInterval: 5000,
  probeTimeout: 3000,
  suspicionMult: 6,
  gossipInterval: 500,
  gossipNodes: 4,
  gossipToTheDeadTime: 60_000,
  pushPullInterval: 60_000,
  reconnectInterval: 30_000,
}

export interface SwimHost {
  readonly send: (addr: string, msg: SwimMessage) => void
  /** A member's state changed (or it appeared). */
  readonly emit: (member: Member, previous: MemberState | undefined) => void
  /** Uniform in [0, 1). */
  readonly random: () => number
  readonly log?: ((line: string) => void) | undefined
}

interface Suspicion {
  readonly inc: number
  /** Who started it here (its own message is not a confirmation). */
  readonly origin: string
  readonly start: number
  readonly min: number
  readonly max: number
  readonly k: number
  readonly confirmations: Set<string>
  deadline: number
}

interface Probe {
  readonly seq: number
  readonly target: string
  readonly start: number
  readonly directDeadline: number
  readonly end: number
  indirectSent: boolean
  expectedNacks: number
  nacks: number
  acked: boolean
}

interface Relay {
  readonly origin: string
  readonly originSeq: number
  readonly nackAt: number
  readonly end: number
}

interface Queued {
  readonly rumor: Rumor
  transmits: number
}

/** memberlist's suspicionTimeout: mult * max(1, log10(n)) * interval. */
export const suspicionTimeout = (mult: number, n: number, interval: number): number =>
  Math.floor(mult * Math.max(1, Math.log10(Math.max(1, n))) * interval)

/** memberlist's retransmitLimit: mult * ceil(log10(n + 1)). */
export const retransmitLimit = (mult: number, n: number): number => mult * Math.ceil(Math.log10(n + 1))

export class Swim {
  private readonly members = new Map<string, Member>()
  private readonly suspicions = new Map<string, Suspicion>()
  private readonly queue = new Map<string, Queued>()
  private readonly probes = new Map<number, Probe>()
  private readonly relays = new Map<number, Relay>()
  private incarnation = 0
  private seq = 0
  private awareness = 0
  private probeOrder: Array<string> = []
  private probeIndex = 0
  private nextProbe = 0
  private nextGossip = 0
  private nextPushPull = 0
  private nextReconnect = 0
  private leaving = false
  // Retried while nobody else is known: a join over UDP can be lost (memberlist joins over TCP).
  private seeds: ReadonlyArray<string> = []

  constructor(
    readonly id: string,
    readonly addr: string,
    private meta: string,
    readonly profile: SwimProfile,
    private readonly host: SwimHost,
    now: number,
  ) {
    const self: Member = { id, addr, incarnation: 0, state: "alive", since: now, meta }
    this.members.set(id, self)
    this.nextProbe = now + Math.floor(host.random() * profile.probeInterval)
    this.nextGossip = now + Math.floor(host.random() * profile.gossipInterval)
    this.nextPushPull = now + profile.pushPullInterval
    this.nextReconnect = now + profile.reconnectInterval
    this.enqueue({ t: "alive", id, inc: 0, addr, meta })
  }

  /** Every member known, self included. */
  list(): ReadonlyArray<Member> {
    return [...this.members.values()]
  }

  member(id: string): Member | undefined {
    return this.members.get(id)
  }

  /** Lifeguard's local health score (0 = healthy). */
  health(): number {
    return this.awareness
  }

  /** Members not dead or left, self excluded. */
  private live(): Array<Member> {
    const out: Array<Member> = []
    for (const m of this.members.values())
      if (m.id !== this.id && (m.state === "alive" || m.state === "suspect")) out.push(m)
    return out
  }

  private count(): number {
    let n = 0
    for (const m of this.members.values()) if (m.state === "alive" || m.state === "suspect") n++
    return n
  }

  private scaled(ms: number): number {
    return ms * (this.awareness + 1)
  }

  private pick<T>(xs: ReadonlyArray<T>, k: number): Array<T> {
    const a = [...xs]
    const out: Array<T> = []
    while (out.length < k && a.length > 0) out.push(a.splice(Math.floor(this.host.random() * a.length), 1)[0]!)
    return out
  }

  /** Contacts seeds (addresses) with a full-state sync, as memberlist's Join does. */
  join(seeds: ReadonlyArray<string>): void {
    this.seeds = seeds.filter((s) => s !== this.addr)
    for (const s of this.seeds) this.host.send(s, { k: "sync", reply: true, members: this.wire() })
  }

  /** Announces departure (dead rumor about self, memberlist's Leave). */
  leave(): void {
    this.leaving = true
    const self = this.members.get(this.id)!
    this.set({ ...self, state: "left" }, self.state)
    this.enqueue({ t: "dead", id: this.id, inc: this.incarnation, from: this.id })
  }

  updateMeta(meta: string): void {
    this.meta = meta
    this.refute(this.incarnation)
  }

  private wire(): Array<WireMember> {
    return [...this.members.values()].map((m) => ({
      id: m.id,
      addr: m.addr,
      inc: m.incarnation,
      state: m.state,
      meta: m.meta,
    }))
  }

  private set(m: Member, previous: MemberState | undefined): void {
    this.members.set(m.id, m)
    this.host.emit(m, previous)
  }

  private enqueue(rumor: Rumor): void {
    // A newer rumor about a member replaces the older one (memberlist's invalidation).
    this.queue.set(rumor.id, { rumor, transmits: 0 })
  }

  private piggyback(): Array<Rumor> {
    if (this.queue.size === 0) return []
    const limit = retransmitLimit(this.profile.retransmitMult, this.count())
    const items = [...this.queue.values()].sort((a, b) => a.transmits - b.transmits).slice(0, this.profile.maxPiggyback)
    for (const q of items) {
      q.transmits++
      if (q.transmits >= limit) this.queue.delete(q.rumor.id)
    }
    return items.map((q) => q.rumor)
  }

  tick(now: number): void {
    this.expireProbes(now)
    this.expireRelays(now)
    for (const [id, s] of this.suspicions) if (now >= s.deadline) this.suspicionExpired(now, id, s)
    if (this.leaving) return
    if (now >= this.nextProbe) {
      this.nextProbe = now + this.scaled(this.profile.probeInterval)
      if (this.live().length === 0) this.join(this.seeds)
      this.probe(now)
    }
    if (now >= this.nextGossip) {
      this.nextGossip = now + this.profile.gossipInterval
      this.gossip(now)
    }
    if (now >= this.nextPushPull) {
      // memberlist's pushPullScale: slower beyond 32 members.
      const n = this.count()
      const scale = n <= 32 ? 1 : Math.ceil(Math.log2(n) - Math.log2(32)) + 1
      this.nextPushPull = now + this.profile.pushPullInterval * scale
      const [peer] = this.pick(
        this.live().filter((m) => m.state === "alive"),
        1,
      )
      if (peer !== undefined) this.host.send(peer.addr, { k: "sync", reply: true, members: this.wire() })
    }
    if (now >= this.nextReconnect) {
      this.nextReconnect = now + this.profile.reconnectInterval
      const dead = [...this.members.values()].filter((m) => m.state === "dead")
      const [peer] = this.pick(dead, 1)
      if (peer !== undefined) this.host.send(peer.addr, { k: "sync", reply: true, members: this.wire() })
    }
  }

  private probe(now: number): void {
    if (this.probeIndex >= this.probeOrder.length) {
      this.probeOrder = this.pick(
        this.live().map((m) => m.id),
        Number.POSITIVE_INFINITY,
      )
      this.probeIndex = 0
    }
    let target: Member | undefined
    while (this.probeIndex < this.probeOrder.length && target === undefined) {
      const m = this.members.get(this.probeOrder[this.probeIndex++]!)
      if (m !== undefined && (m.state === "alive" || m.state === "suspect")) target = m
    }
    if (target === undefined) return
    const seq = ++this.seq
    const timeout = this.scaled(this.profile.probeTimeout)
    this.probes.set(seq, {
      seq,
      target: target.id,
      start: now,
      directDeadline: now + timeout,
      end: now + this.scaled(this.profile.probeInterval),
      indirectSent: false,
      expectedNacks: 0,
      nacks: 0,
      acked: false,
    })
    this.host.send(target.addr, { k: "ping", seq, target: target.id, g: this.piggyback() })
  }

  private expireProbes(now: number): void {
    for (const [seq, p] of this.probes) {
      if (p.acked) {
        this.probes.delete(seq)
        continue
      }
      const target = this.members.get(p.target)
      if (!p.indirectSent && now >= p.directDeadline) {
        p.indirectSent = true
        if (target !== undefined) {
          const helpers = this.pick(
            this.live().filter((m) => m.state === "alive" && m.id !== p.target),
            this.profile.indirectChecks,
          )
          p.expectedNacks = helpers.length
          for (const h of helpers)
            this.host.send(h.addr, { k: "pingreq", seq, target: target.id, addr: target.addr, g: this.piggyback() })
        }
      }
      if (now >= p.end) {
        this.probes.delete(seq)
        // Lifeguard: missing nacks mean our own links or process are slow, not the target.
        this.adjustAwareness(p.expectedNacks > 0 ? Math.max(0, p.expectedNacks - p.nacks) : 1)
        if (target !== undefined && (target.state === "alive" || target.state === "suspect"))
          this.onSuspect(now, { t: "suspect", id: target.id, inc: target.incarnation, from: this.id })
      }
    }
  }

  private expireRelays(now: number): void {
    for (const [seq, r] of this.relays) {
      if (now >= r.end) this.relays.delete(seq)
      else if (now >= r.nackAt && r.nackAt >= 0) {
        this.host.send(r.origin, { k: "nack", seq: r.originSeq })
        this.relays.set(seq, { ...r, nackAt: -1 })
      }
    }
  }

  private adjustAwareness(delta: number): void {
    this.awareness = Math.max(0, Math.min(this.profile.awarenessMaxMultiplier - 1, this.awareness + delta))
  }

  private gossip(now: number): void {
    if (this.queue.size === 0) return
    const targets = [...this.members.values()].filter(
      (m) =>
        m.id !== this.id &&
        (m.state === "alive" ||
          m.state === "suspect" ||
          (m.state === "dead" && now - m.since < this.profile.gossipToTheDeadTime)),
    )
    for (const t of this.pick(targets, this.profile.gossipNodes)) {
      const g = this.piggyback()
      if (g.length === 0) return
      this.host.send(t.addr, { k: "gossip", g })
    }
  }

  /** `from`: the address the message came from (replies go there). */
  receive(now: number, from: string, msg: SwimMessage): void {
    switch (msg.k) {
      case "ping":
        this.rumors(now, from, msg.g)
        // A ping for another name (a reused address) is not ours to answer (memberlist does the same).
        if (msg.target !== this.id) return
        this.host.send(from, { k: "ack", seq: msg.seq, g: this.piggyback() })
        return
      case "ack": {
        this.rumors(now, from, msg.g)
        const p = this.probes.get(msg.seq)
        if (p !== undefined && !p.acked) {
          p.acked = true
          this.adjustAwareness(-1)
          return
        }
        const r = this.relays.get(msg.seq)
        if (r !== undefined) {
          this.relays.delete(msg.seq)
          this.host.send(r.origin, { k: "ack", seq: r.originSeq, g: [] })
        }
        return
      }
      case "nack": {
        const p = this.probes.get(msg.seq)
        if (p !== undefined) p.nacks++
        return
      }
      case "pingreq": {
        this.rumors(now, from, msg.g)
        const seq = ++this.seq
        const timeout = this.scaled(this.profile.probeTimeout)
        this.relays.set(seq, {
          origin: from,
          originSeq: msg.seq,
          nackAt: now + Math.floor(timeout * 0.8),
          end: now + timeout,
        })
        this.host.send(msg.addr, { k: "ping", seq, target: msg.target, g: this.piggyback() })
        return
      }
      case "gossip":
        this.rumors(now, from, msg.g)
        return
      case "sync":
        this.merge(now, msg.members)
        if (msg.reply) this.host.send(from, { k: "sync", reply: false, members: this.wire() })
        return
    }
  }

  private rumors(now: number, from: string, g: ReadonlyArray<Rumor>): void {
    const corrections: Array<Rumor> = []
    for (const r of g) {
      if (r.t === "alive") this.onAlive(now, r)
      else if (r.t === "suspect") this.onSuspect(now, r)
      else this.onDead(now, r)
      // The sender spreads a suspicion we know is refuted: tell it directly, rather than hope the
      // refutation's few retransmits reached it (they sometimes do not, and it then declares a false death).
      if (r.t !== "alive") {
        const m = this.members.get(r.id)
        if (m !== undefined && m.state === "alive" && m.incarnation > r.inc)
          corrections.push({ t: "alive", id: m.id, inc: m.incarnation, addr: m.addr, meta: m.meta })
      }
    }
    if (corrections.length > 0)
      this.host.send(from, { k: "gossip", g: corrections.slice(0, this.profile.maxPiggyback) })
  }

  private merge(now: number, members: ReadonlyArray<WireMember>): void {
    for (const m of members) {
      if (m.state === "alive") this.onAlive(now, { t: "alive", id: m.id, inc: m.inc, addr: m.addr, meta: m.meta })
      else if (m.state === "suspect") {
        // memberlist: a suspect in remote state is learned as alive, then suspected.
        this.onAlive(now, { t: "alive", id: m.id, inc: m.inc, addr: m.addr, meta: m.meta })
        this.onSuspect(now, { t: "suspect", id: m.id, inc: m.inc, from: this.id })
      } else {
        // Dead in the remote view: a suspicion here (it may be a stale view), except about ourselves.
        if (m.id === this.id) this.onDead(now, { t: "dead", id: m.id, inc: m.inc, from: "sync" })
        else if (m.state === "left") this.onDead(now, { t: "dead", id: m.id, inc: m.inc, from: m.id })
        else this.onSuspect(now, { t: "suspect", id: m.id, inc: m.inc, from: this.id })
      }
    }
  }

  private refute(inc: number): void {
    this.incarnation = Math.max(this.incarnation, inc) + 1
    const self = this.members.get(this.id)!
    const next = { ...self, incarnation: this.incarnation, meta: this.meta }
    this.members.set(this.id, next)
    this.enqueue({ t: "alive", id: this.id, inc: this.incarnation, addr: this.addr, meta: this.meta })
  }

  private onAlive(now: number, r: Extract<Rumor, { t: "alive" }>): void {
    if (r.id === this.id) {
      // Someone spreads an old or forged view of us: out-announce it.
      if (r.inc > this.incarnation || (r.inc === this.incarnation && r.meta !== this.meta)) this.refute(r.inc)
      return
    }
    const m = this.members.get(r.id)
    if (m === undefined) {
      this.set({ id: r.id, addr: r.addr, incarnation: r.inc, state: "alive", since: now, meta: r.meta }, undefined)
      this.enqueue(r)
      return
    }
    if (r.inc <= m.incarnation) return
    this.suspicions.delete(r.id)
    this.set(
      {
        ...m,
        addr: r.addr,
        incarnation: r.inc,
        state: "alive",
        since: m.state === "alive" ? m.since : now,
        meta: r.meta,
      },
      m.state,
    )
    this.enqueue(r)
  }

  private onSuspect(now: number, r: Extract<Rumor, { t: "suspect" }>): void {
    if (r.id === this.id) {
      if (this.leaving) return
      if (r.inc >= this.incarnation) {
        this.adjustAwareness(1)
        this.refute(r.inc)
      }
      return
    }
    const m = this.members.get(r.id)
    if (m === undefined || r.inc < m.incarnation || m.state === "dead" || m.state === "left") return
    const s = this.suspicions.get(r.id)
    if (m.state === "suspect") {
      // memberlist: any member other than the one that started this suspicion here confirms it,
      // our own failed probe included; each confirmation shortens the timeout and is spread.
      if (s !== undefined && r.inc === s.inc && r.from !== s.origin && !s.confirmations.has(r.from)) {
        s.confirmations.add(r.from)
        s.deadline = s.start + this.lifeguardTimeout(s)
        this.enqueue(r)
      }
      return
    }
    const n = this.count()
    const min = suspicionTimeout(this.profile.suspicionMult, n, this.profile.probeInterval)
    const max = min * this.profile.suspicionMaxTimeoutMult
    // Expect k independent confirmations; with few members, none (memberlist).
    const kk = this.profile.suspicionMult - 2
    const k = n - 2 < kk ? 0 : kk
    const sus: Suspicion = {
      inc: r.inc,
      origin: r.from,
      start: now,
      min,
      max,
      k,
      confirmations: new Set(),
      deadline: 0,
    }
    sus.deadline = now + this.lifeguardTimeout(sus)
    this.suspicions.set(r.id, sus)
    this.set({ ...m, incarnation: r.inc, state: "suspect", since: now }, m.state)
    this.enqueue(r)
    // Tell the suspect directly, so it can refute: random piggybacking alone sometimes misses it
    // for a whole suspicion timeout (seen in simulation at 10 % loss). The originator and about
    // three others, not all N: a slow node must not get N datagrams at once.
    if (r.from === this.id || this.host.random() < 3 / n) this.host.send(m.addr, { k: "gossip", g: [r] })
  }

  /** Lifeguard: max - (max - min) * log(c + 1) / log(k + 1), never below min. */
  private lifeguardTimeout(s: Suspicion): number {
    if (s.k < 1) return s.min
    const c = Math.min(s.confirmations.size, s.k)
    const frac = Math.log(c + 1) / Math.log(s.k + 1)
    return Math.max(s.min, Math.floor(s.max - (s.max - s.min) * frac))
  }

  private suspicionExpired(now: number, id: string, s: Suspicion): void {
    this.suspicions.delete(id)
    const m = this.members.get(id)
    if (m === undefined || m.state !== "suspect" || m.incarnation !== s.inc) return
    this.host.log?.(
      `swim ${this.id}: ${id} is dead (suspected ${now - s.start} ms, ${s.confirmations.size} confirmations)`,
    )
    this.onDead(now, { t: "dead", id, inc: s.inc, from: this.id })
  }

  private onDead(now: number, r: Extract<Rumor, { t: "dead" }>): void {
    if (r.id === this.id) {
      if (this.leaving) return
      if (r.inc >= this.incarnation) this.refute(r.inc)
      return
    }
    const m = this.members.get(r.id)
    if (m === undefined || r.inc < m.incarnation) return
    const state: MemberState = r.from === r.id ? "left" : "dead"
    if (m.state === "dead" || m.state === "left") {
      if (m.state === state || state === "dead") return
    }
    this.suspicions.delete(r.id)
    this.set({ ...m, incarnation: r.inc, state, since: now }, m.state)
    this.enqueue(r)
  }
}
