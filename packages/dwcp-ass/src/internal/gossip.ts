// A gossip-mode agent without I/O: SWIM membership plus the CRDT replica, spreading each write
// as a delta by rumor mongering (a few retransmits to random members) and repairing whatever a
// rumor missed by push-pull anti-entropy on state vectors with one random member per interval.
// The host drives it with tick/receive and carries its messages (UDP, or the test simulator).
import { type Change, type Limits, Replica } from "./crdt.js"
import * as Swim from "./swim.js"

export interface Delta {
  readonly o: string
  readonly u: Uint8Array
}

export interface Digest {
  readonly o: string
  readonly sv: Uint8Array
}

export type CrdtMessage =
  /** Fresh writes, spread on by whoever they are new to. */
  | { readonly k: "delta"; readonly d: ReadonlyArray<Delta> }
  /** The last leg of anti-entropy: a repair, applied and not spread on. */
  | { readonly k: "push"; readonly d: ReadonlyArray<Delta> }
  | {
      readonly k: "ae"
      readonly reply: boolean
      readonly dg: ReadonlyArray<Digest>
      readonly u: ReadonlyArray<Delta>
    }

export type Message = Swim.SwimMessage | CrdtMessage

export interface NodeOptions {
  readonly id: string
  readonly addr: string
  /** Who owns a key (default: owner.ts's ownerOf, a node id). */
  readonly owner?: ((key: string) => string | undefined) | undefined
  readonly meta?: string | undefined
  readonly profile: Swim.SwimProfile
  /** Yjs client id of this run's writes; larger than any earlier run's (see Replica). */
  readonly incarnation: number
  /** State saved by an earlier run (possibly stale). */
  readonly snapshot?: ReadonlyArray<Delta> | undefined
  /** Anti-entropy period (default: 5 gossip intervals). */
  readonly syncInterval?: number | undefined
  /** Budget of deltas in one message, in bytes of updates. */
  readonly maxDeltaBytes?: number | undefined
  /**
   * Budget of one anti-entropy message, in bytes of updates (default 40000: base64 in a signed
   * datagram stays under 60 KiB). A single writer's document larger than this goes alone.
   */
  readonly maxSyncBytes?: number | undefined
  readonly limits?: Limits | undefined
  readonly now: number
  readonly random: () => number
  readonly send: (addr: string, msg: Message) => void
  readonly log: (line: string) => void
  readonly onChange?: ((changes: ReadonlyArray<Change>, origin: "local" | "remote") => void) | undefined
  readonly onMember?: ((member: Swim.Member, previous: Swim.MemberState | undefined) => void) | undefined
}

interface Rumor {
  readonly d: Delta
  transmits: number
}

export class GossipNode {
  readonly swim: Swim.Swim
  readonly replica: Replica
  private rumors: Array<Rumor> = []
  private nextDelta: number
  private nextSync: number
  private readonly syncInterval: number
  private readonly maxDeltaBytes: number
  private readonly maxSyncBytes: number
  /** Updates refused (foreign keys, malformed, oversized): counted for tests and metrics. */
  refused = 0

  constructor(private readonly o: NodeOptions) {
    this.replica = new Replica(o.id, o.incarnation, (c, origin) => o.onChange?.(c, origin), o.limits, o.owner)
    for (const s of o.snapshot ?? []) {
      const r = this.replica.apply(s.o, s.u)
      if (r._tag === "Refused") o.log(`gossip ${o.id}: saved state of ${s.o} refused: ${r.reason}`)
    }
    this.swim = new Swim.Swim(
      o.id,
      o.addr,
      o.meta ?? "",
      o.profile,
      { send: o.send, emit: (m, p) => o.onMember?.(m, p), random: o.random, log: o.log },
      o.now,
    )
    this.syncInterval = o.syncInterval ?? o.profile.gossipInterval * 5
    this.maxDeltaBytes = o.maxDeltaBytes ?? 1024
    this.maxSyncBytes = o.maxSyncBytes ?? 40_000
    this.nextDelta = o.now + o.profile.gossipInterval
    this.nextSync = o.now + Math.floor(o.random() * this.syncInterval)
  }

  get id(): string {
    return this.o.id
  }

  join(seeds: ReadonlyArray<string>): void {
    this.swim.join(seeds)
  }

  /** Writes an owned key (throws NotOwner otherwise) and starts spreading it. */
  put(key: string, value: string, run?: number): number {
    const u = this.replica.put(key, value, run)
    this.spread({ o: this.replica.writing, u })
    return u.byteLength
  }

  /** Deletes an owned key; whether this replica held it. */
  remove(key: string): boolean {
    const existed = this.replica.get(key) !== undefined
    const u = this.replica.remove(key)
    this.spread({ o: this.replica.writing, u })
    return existed
  }

  private spread(d: Delta): void {
    this.rumors.push({ d, transmits: 0 })
  }

  private peers(): Array<Swim.Member> {
    return this.swim.list().filter((m) => m.id !== this.o.id && m.state === "alive")
  }

  private pick(xs: ReadonlyArray<Swim.Member>, k: number): Array<Swim.Member> {
    const a = [...xs]
    const out: Array<Swim.Member> = []
    while (out.length < k && a.length > 0) out.push(a.splice(Math.floor(this.o.random() * a.length), 1)[0]!)
    return out
  }

  tick(now: number): void {
    this.swim.tick(now)
    if (now >= this.nextDelta) {
      this.nextDelta = now + this.o.profile.gossipInterval
      this.gossipDeltas()
    }
    if (now >= this.nextSync) {
      this.nextSync = now + this.syncInterval
      const [peer] = this.pick(this.peers(), 1)
      if (peer !== undefined) this.o.send(peer.addr, { k: "ae", reply: true, dg: this.replica.digest(), u: [] })
    }
  }

  private gossipDeltas(): void {
    if (this.rumors.length === 0) return
    const peers = this.peers()
    const limit = Swim.retransmitLimit(this.o.profile.retransmitMult, peers.length + 1)
    for (const p of this.pick(peers, this.o.profile.gossipNodes)) {
      const batch: Array<Delta> = []
      let bytes = 0
      for (const r of [...this.rumors].sort((a, b) => a.transmits - b.transmits)) {
        if (bytes + r.d.u.byteLength > this.maxDeltaBytes && batch.length > 0) break
        batch.push(r.d)
        bytes += r.d.u.byteLength
        r.transmits++
      }
      this.rumors = this.rumors.filter((r) => r.transmits < limit)
      if (batch.length > 0) this.o.send(p.addr, { k: "delta", d: batch })
    }
    // Nobody to tell: keep the rumors for when someone joins (anti-entropy would also carry them).
  }

  private applyAll(from: string, ds: ReadonlyArray<Delta>, rumor: boolean): void {
    for (const d of ds) {
      const r = this.replica.apply(d.o, d.u)
      if (r._tag === "Refused") {
        this.refused++
        this.o.log(`gossip ${this.o.id}: refused an update of ${d.o}'s keys from ${from}: ${r.reason}`)
      } else if (r.changed && rumor) this.spread(d)
    }
  }

  receive(now: number, from: string, msg: Message): void {
    switch (msg.k) {
      case "delta":
        this.applyAll(from, msg.d, true)
        return
      case "push":
        this.applyAll(from, msg.d, false)
        return
      case "ae": {
        this.applyAll(from, msg.u, false)
        // What the peer lacks, in messages of at most maxSyncBytes of updates each (a datagram
        // has a size limit; a new member may lack every other member's document).
        const chunks = chunk(this.replica.missing(msg.dg), this.maxSyncBytes)
        if (msg.reply) this.o.send(from, { k: "ae", reply: false, dg: this.replica.digest(), u: chunks.shift() ?? [] })
        for (const d of chunks) this.o.send(from, { k: "push", d })
        return
      }
      default:
        this.swim.receive(now, from, msg)
    }
  }
}

/** Splits deltas into groups of at most `budget` bytes (a larger one alone). */
export const chunk = (ds: ReadonlyArray<Delta>, budget: number): Array<Array<Delta>> => {
  const out: Array<Array<Delta>> = []
  let cur: Array<Delta> = []
  let bytes = 0
  for (const d of ds) {
    if (cur.length > 0 && bytes + d.u.byteLength > budget) {
      out.push(cur)
      cur = []
      bytes = 0
    }
    cur.push(d)
    bytes += d.u.byteLength
  }
  if (cur.length > 0) out.push(cur)
  return out
}
