// The state machine PBFT replicates: the key-value store with revisions, leases and fences of the
// other modes, as a deterministic function of the executed requests. Time enters only through
// the requests: each carries its client's clock (`at`, ms), the machine's clock is the largest
// seen, and a lease lapses when that clock passes its expiry (checked before every operation;
// idle clusters get `tick` requests from the nodes that see a lease due). Replicas therefore
// agree on every expiry whatever their own clocks say.
import type { Entry, Snapshot, WatchEvent } from "../StateStore.js"
import type { Guard, TxnResult } from "./core.js"

export type Op =
  | { readonly o: "get"; readonly k: string; readonly at: number }
  | { readonly o: "list"; readonly p: string; readonly at: number }
  | { readonly o: "put"; readonly k: string; readonly v: string; readonly g: Guard; readonly at: number }
  | { readonly o: "del"; readonly k: string; readonly g: Guard; readonly at: number }
  | { readonly o: "grant"; readonly ttl: number; readonly at: number }
  | { readonly o: "keep"; readonly id: string; readonly at: number }
  | { readonly o: "revoke"; readonly id: string; readonly at: number }
  | { readonly o: "tick"; readonly at: number }

/** An operation as the client writes it; `at` (its clock) is added when it is sent. */
export type Body = { readonly [K in Op["o"]]: Omit<Extract<Op, { readonly o: K }>, "at"> }[Op["o"]]

export type Result =
  | { readonly get: Entry | null; readonly revision: number }
  | { readonly list: Snapshot }
  | { readonly txn: TxnResult }
  | { readonly noLease: string }
  | { readonly lease: string; readonly ttl: number }
  | { readonly ttl: number }
  | { readonly ok: true }
  | { readonly malformed: string }

interface Stored {
  readonly v: string
  readonly c: number
  readonly m: number
  readonly n: number
  readonly l?: string | undefined
}

interface LeaseState {
  readonly ttl: number
  exp: number
  readonly keys: Set<string>
}

export interface Logged {
  readonly revision: number
  readonly event: WatchEvent
}

const byKey = <T>(a: readonly [string, T], b: readonly [string, T]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)

const toEntry = (key: string, s: Stored): Entry => ({
  key,
  value: s.v,
  createRevision: s.c,
  modRevision: s.m,
  version: s.n,
  lease: s.l,
})

/** Largest lease TTL granted (a client cannot pin keys for longer). */
const MAX_TTL = 3_600_000

export class KvMachine {
  revision = 0
  clock = 0
  private leaseSeq = 0
  private readonly kv = new Map<string, Stored>()
  private readonly leases = new Map<string, LeaseState>()
  /** events of the operations applied since the last drain (the caller logs and publishes them) */
  private events: Array<Logged> = []

  drain(): Array<Logged> {
    const e = this.events
    this.events = []
    return e
  }

  /** Earliest lease expiry on the machine's clock, if any lease is held. */
  nextExpiry(): number | undefined {
    let min: number | undefined
    for (const l of this.leases.values()) if (min === undefined || l.exp < min) min = l.exp
    return min
  }

  apply(text: string): string {
    let op: Op
    try {
      op = JSON.parse(text) as Op
      if (op === null || typeof op !== "object" || !Number.isFinite(op.at)) throw new Error("no clock")
    } catch (e) {
      return JSON.stringify({ malformed: (e as Error).message } satisfies Result)
    }
    this.clock = Math.max(this.clock, op.at)
    this.expire()
    return JSON.stringify(this.run(op))
  }

  private run(op: Op): Result {
    switch (op.o) {
      case "get": {
        const s = this.kv.get(String(op.k))
        return { get: s === undefined ? null : toEntry(op.k, s), revision: this.revision }
      }
      case "list":
        return { list: this.snapshot(String(op.p)) }
      case "put":
        return this.put(String(op.k), String(op.v), op.g ?? {})
      case "del":
        return this.del(String(op.k), op.g ?? {})
      case "grant": {
        const ttl = Math.min(MAX_TTL, Math.max(1, Math.floor(Number(op.ttl) || 1)))
        const id = `${(++this.leaseSeq).toString(16)}`
        this.leases.set(id, { ttl, exp: this.clock + ttl, keys: new Set() })
        return { lease: id, ttl }
      }
      case "keep": {
        const l = this.leases.get(String(op.id))
        if (l === undefined) return { ttl: 0 }
        l.exp = this.clock + l.ttl
        return { ttl: l.ttl }
      }
      case "revoke": {
        const l = this.leases.get(String(op.id))
        if (l !== undefined) {
          this.leases.delete(String(op.id))
          this.deleteKeys([...l.keys].sort())
        }
        return { ok: true }
      }
      case "tick":
        return { ok: true }
      default:
        return { malformed: "unknown operation" }
    }
  }

  private expire(): void {
    const due = [...this.leases.entries()].filter(([, l]) => l.exp <= this.clock).sort(byKey)
    for (const [id, l] of due) {
      this.leases.delete(id)
      this.deleteKeys([...l.keys].sort())
    }
  }

  private check(key: string, g: Guard): TxnResult | undefined {
    if (g.fence !== undefined && this.kv.get(String(g.fence.key))?.c !== g.fence.token) return { _tag: "Fence" }
    if (g.expectMod !== undefined) {
      const actual = this.kv.get(key)?.m ?? 0
      if (actual !== g.expectMod) return { _tag: "Compare", actual }
    }
    return undefined
  }

  private put(key: string, value: string, g: Guard): Result {
    const refused = this.check(key, g)
    if (refused !== undefined) return { txn: refused }
    const lease = g.lease === undefined ? undefined : String(g.lease)
    if (lease !== undefined && !this.leases.has(lease)) return { noLease: lease }
    const at = this.revision + 1
    const old = this.kv.get(key)
    const s: Stored = { v: value, c: old?.c ?? at, m: at, n: (old?.n ?? 0) + 1, l: lease }
    if (old?.l !== undefined && old.l !== lease) this.leases.get(old.l)?.keys.delete(key)
    if (lease !== undefined) this.leases.get(lease)?.keys.add(key)
    this.kv.set(key, s)
    this.revision = at
    this.events.push({ revision: at, event: { _tag: "Put", entry: toEntry(key, s) } })
    return { txn: { _tag: "Ok", revision: at, existed: old !== undefined } }
  }

  private del(key: string, g: Guard): Result {
    const refused = this.check(key, g)
    if (refused !== undefined) return { txn: refused }
    if (!this.kv.has(key)) return { txn: { _tag: "Ok", revision: this.revision, existed: false } }
    this.deleteKeys([key])
    return { txn: { _tag: "Ok", revision: this.revision, existed: true } }
  }

  private deleteKeys(keys: ReadonlyArray<string>): void {
    if (keys.length === 0) return
    const at = this.revision + 1
    for (const k of keys) {
      const s = this.kv.get(k)
      if (s?.l !== undefined) this.leases.get(s.l)?.keys.delete(k)
      this.kv.delete(k)
      this.events.push({ revision: at, event: { _tag: "Delete", key: k, revision: at } })
    }
    this.revision = at
  }

  get(key: string): Entry | undefined {
    const s = this.kv.get(key)
    return s === undefined ? undefined : toEntry(key, s)
  }

  snapshot(prefix: string): Snapshot {
    return {
      revision: this.revision,
      entries: [...this.kv.entries()]
        .filter(([k]) => k.startsWith(prefix))
        .sort(byKey)
        .map(([k, s]) => toEntry(k, s)),
    }
  }

  /** Canonical text of the whole state: equal states give equal text. */
  save(): string {
    return JSON.stringify({
      revision: this.revision,
      clock: this.clock,
      leaseSeq: this.leaseSeq,
      kv: [...this.kv.entries()].sort(byKey).map(([k, s]) => [k, s.v, s.c, s.m, s.n, s.l ?? null]),
      leases: [...this.leases.entries()].sort(byKey).map(([id, l]) => [id, l.ttl, l.exp, [...l.keys].sort()]),
    })
  }

  load(text: string): void {
    const s = JSON.parse(text) as {
      revision: number
      clock: number
      leaseSeq: number
      kv: Array<[string, string, number, number, number, string | null]>
      leases: Array<[string, number, number, Array<string>]>
    }
    this.revision = s.revision
    this.clock = s.clock
    this.leaseSeq = s.leaseSeq
    this.kv.clear()
    for (const [k, v, c, m, n, l] of s.kv) this.kv.set(k, { v, c, m, n, l: l ?? undefined })
    this.leases.clear()
    for (const [id, ttl, exp, keys] of s.leases) this.leases.set(id, { ttl, exp, keys: new Set(keys) })
    this.events = []
  }
}
