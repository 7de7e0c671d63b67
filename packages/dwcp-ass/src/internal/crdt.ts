// Delta-state CRDT replica of the gossip mode: one Yjs document per writer node, each holding a
// YKeyValue (y-utility: a Y.Array of {key, val} that drops overwritten entries, so its size stays
// near the live data, unlike Y.Map which keeps every value ever set). Single writer per key: a
// node writes only keys it owns, into its own document; a received update that inserts a key its
// document's owner does not own is refused whole. Deletes are written as tombstones (val null)
// so that every change advances the state vector, which is what anti-entropy compares.

import { YKeyValue } from "y-utility/y-keyvalue"
import * as Y from "yjs"
import { NotOwner, ownerOf } from "./owner.js"

export { NotOwner, ownerOf }

/**
 * A stored value: a string; a string bound to its writer's run (`r`: the run id), which readers
 * show only while that run of the writer is a live member (gossip mode's leases); or a
 * tombstone (null).
 */
export type Val = string | { readonly v: string; readonly r: number } | null

const text = (v: Val): string | undefined => (v === null ? undefined : typeof v === "string" ? v : v.v)
const runOf = (v: Val): number | undefined => (v !== null && typeof v === "object" ? v.r : undefined)

export interface Change {
  readonly owner: string
  readonly key: string
  /** undefined: deleted. */
  readonly value: string | undefined
  /** The writer's run this value is bound to (a membership lease), if any. */
  readonly run: number | undefined
}

export interface Limits {
  readonly maxKey: number
  readonly maxValue: number
  readonly maxUpdate: number
}

export const defaultLimits: Limits = { maxKey: 512, maxValue: 64 * 1024, maxUpdate: 60 * 1024 }

interface Doc {
  readonly doc: Y.Doc
  readonly kv: YKeyValue<Val>
}

export type Applied =
  | { readonly _tag: "Applied"; readonly changed: boolean }
  | { readonly _tag: "Refused"; readonly reason: string }

const sv = (doc: Y.Doc): Map<number, number> => Y.decodeStateVector(Y.encodeStateVector(doc))

/** Whether state vector `a` has a struct `b` lacks. */
const ahead = (a: Map<number, number>, b: Map<number, number>): boolean => {
  for (const [client, clock] of a) if (clock > (b.get(client) ?? 0)) return true
  return false
}

export class Replica {
  private readonly docs = new Map<string, Doc>()
  /** The document this replica writes: its node's own, or (hybrid mode) its site's while it leads. */
  private writer: string

  /**
   * @param incarnation the Yjs client id of this node's writes: larger than any earlier run's,
   *   so a restarted node never reuses (client, clock) pairs a peer already holds with other
   *   content, and its new writes order after its old ones.
   */
  constructor(
    readonly self: string,
    private readonly incarnation: number,
    private readonly onChange: (changes: ReadonlyArray<Change>, origin: "local" | "remote") => void,
    readonly limits: Limits = defaultLimits,
    readonly owner: (key: string) => string | undefined = ownerOf,
  ) {
    this.writer = self
    this.open(self)
  }

  /** The owner whose document local writes go to. */
  get writing(): string {
    return this.writer
  }

  /**
   * Writes go to `owner`'s document from now on, under Yjs client id `client`; `undefined`: back
   * to this node's own. Hybrid mode's coordinator passes its fencing token, so every term writes
   * under a client id of its own (never reusing a (client, clock) pair an earlier coordinator
   * used) and a later term's concurrent writes land to the right of an earlier one's, which
   * YKeyValue keeps.
   */
  writeAs(w: { readonly owner: string; readonly client: number } | undefined): void {
    if (w === undefined) {
      this.writer = this.self
      return
    }
    this.writer = w.owner
    this.open(w.owner).doc.clientID = w.client
  }

  private open(owner: string): Doc {
    const found = this.docs.get(owner)
    if (found !== undefined) return found
    const doc = new Y.Doc({ gc: true })
    if (owner === this.self) doc.clientID = this.incarnation
    const kv = new YKeyValue<Val>(doc.getArray("kv"))
    kv.on("change", (changes: Map<string, { action: string; newValue?: Val }>, tr: Y.Transaction) => {
      const out: Array<Change> = []
      for (const [key, c] of changes)
        out.push(
          c.action === "delete"
            ? { owner, key, value: undefined, run: undefined }
            : { owner, key, value: text(c.newValue ?? null), run: runOf(c.newValue ?? null) },
        )
      if (out.length > 0) this.onChange(out, tr.local && tr.origin === "local" ? "local" : "remote")
    })
    const d = { doc, kv }
    this.docs.set(owner, d)
    return d
  }

  owners(): ReadonlyArray<string> {
    return [...this.docs.keys()]
  }

  private write(key: string, val: Val): Uint8Array {
    const o = this.owner(key)
    if (o !== this.writer) throw new NotOwner(key, o, this.writer)
    if (key.length > this.limits.maxKey)
      throw new RangeError(`${key.slice(0, 64)}...: key longer than ${this.limits.maxKey}`)
    const t = text(val)
    if (t !== undefined && t.length > this.limits.maxValue)
      throw new RangeError(`${key}: value of ${t.length} chars, more than ${this.limits.maxValue}`)
    const { doc, kv } = this.open(this.writer)
    let delta: Uint8Array | undefined
    const capture = (u: Uint8Array) => {
      delta = u
    }
    doc.on("update", capture)
    try {
      doc.transact(() => kv.set(key, val), "local")
    } finally {
      doc.off("update", capture)
    }
    return delta!
  }

  /** Writes an owned key; returns the delta to spread. Throws NotOwner for another node's key. */
  put(key: string, value: string, run?: number): Uint8Array {
    return this.write(key, run === undefined ? value : { v: value, r: run })
  }

  /**
   * Deletes an owned key by writing a tombstone, even when this replica does not hold the key:
   * a node restarted with stale state may not have caught up with its own earlier writes yet.
   */
  remove(key: string): Uint8Array {
    return this.write(key, null)
  }

  get(key: string): string | undefined {
    const o = this.owner(key)
    if (o === undefined) return undefined
    return text(this.docs.get(o)?.kv.get(key) ?? null)
  }

  /** The value and the run it is bound to, if any. */
  read(key: string): { readonly value: string; readonly run: number | undefined } | undefined {
    const o = this.owner(key)
    if (o === undefined) return undefined
    const v = this.docs.get(o)?.kv.get(key) ?? null
    const t = text(v)
    return t === undefined ? undefined : { value: t, run: runOf(v) }
  }

  /** Live entries (tombstones skipped), of one owner or all. */
  *entries(owner?: string): Generator<readonly [string, string, string, number | undefined]> {
    for (const [o, d] of this.docs) {
      if (owner !== undefined && o !== owner) continue
      for (const [k, e] of d.kv.map) {
        const t = text(e.val)
        if (t !== undefined) yield [o, k, t, runOf(e.val)] as const
      }
    }
  }

  /** Per owner, the encoded state vector. */
  digest(): Array<{ readonly o: string; readonly sv: Uint8Array }> {
    return [...this.docs].map(([o, d]) => ({ o, sv: Y.encodeStateVector(d.doc) }))
  }

  /**
   * What a peer with `digest` lacks: per owner, the update from its state vector (the whole
   * document for owners it does not list). Owners it is not behind on are skipped.
   */
  missing(digest: ReadonlyArray<{ readonly o: string; readonly sv: Uint8Array }>): Array<{ o: string; u: Uint8Array }> {
    const theirs = new Map(digest.map((d) => [d.o, d.sv]))
    const out: Array<{ o: string; u: Uint8Array }> = []
    for (const [o, d] of this.docs) {
      const s = theirs.get(o)
      if (s === undefined) {
        if (d.kv.map.size > 0 || sv(d.doc).size > 0) out.push({ o, u: Y.encodeStateAsUpdate(d.doc) })
        continue
      }
      if (ahead(sv(d.doc), Y.decodeStateVector(s))) out.push({ o, u: Y.encodeStateAsUpdate(d.doc, s) })
    }
    return out
  }

  /** Whether the peer's digest shows something we lack (then we ask back). */
  behind(digest: ReadonlyArray<{ readonly o: string; readonly sv: Uint8Array }>): boolean {
    for (const { o, sv: s } of digest) {
      const d = this.docs.get(o)
      const theirs = Y.decodeStateVector(s)
      if (d === undefined ? theirs.size > 0 : ahead(theirs, sv(d.doc))) return true
    }
    return false
  }

  /** Checks, then applies, an update to `owner`'s document. Nothing is applied when refused. */
  apply(owner: string, update: Uint8Array): Applied {
    if (update.byteLength > this.limits.maxUpdate)
      return { _tag: "Refused", reason: `update of ${update.byteLength} bytes, more than ${this.limits.maxUpdate}` }
    let decoded: ReturnType<typeof Y.decodeUpdate>
    try {
      decoded = Y.decodeUpdate(update)
    } catch (e) {
      return { _tag: "Refused", reason: `malformed update: ${String(e)}` }
    }
    for (const s of decoded.structs) {
      if (!(s instanceof Y.Item)) continue
      const c = s.content
      if (c instanceof Y.ContentDeleted) continue
      if (!(c instanceof Y.ContentAny))
        return { _tag: "Refused", reason: `content ${c.constructor.name} is not a key-value entry` }
      if ((typeof s.parent === "string" && s.parent !== "kv") || s.parentSub !== null)
        return { _tag: "Refused", reason: `entry outside the "kv" array (${String(s.parent)}, ${String(s.parentSub)})` }
      for (const e of c.arr as ReadonlyArray<unknown>) {
        const entry = e as { key?: unknown; val?: unknown } | null
        const val = entry?.val as { v?: unknown; r?: unknown } | null | string | undefined
        const okVal =
          val === null ||
          typeof val === "string" ||
          (typeof val === "object" &&
            val !== undefined &&
            typeof val.v === "string" &&
            typeof val.r === "number" &&
            Object.keys(val).length === 2)
        if (entry === null || typeof entry !== "object" || typeof entry.key !== "string" || !okVal)
          return { _tag: "Refused", reason: "an entry is not {key: string, val: string | {v, r} | null}" }
        const o = this.owner(entry.key)
        if (o !== owner)
          return {
            _tag: "Refused",
            reason: `${entry.key} is ${o === undefined ? "owned by no node" : `owned by ${o}`}, written into ${owner}'s keys`,
          }
      }
    }
    const d = this.open(owner)
    const before = Y.encodeStateVector(d.doc)
    try {
      Y.applyUpdate(d.doc, update, "remote")
    } catch (e) {
      return { _tag: "Refused", reason: `update does not apply: ${String(e)}` }
    }
    const after = Y.encodeStateVector(d.doc)
    return { _tag: "Applied", changed: Buffer.compare(before, after) !== 0 }
  }

  /** Every document, for persistence (and tests of a restart with stale state). */
  snapshot(): Array<{ o: string; u: Uint8Array }> {
    return [...this.docs].map(([o, d]) => ({ o, u: Y.encodeStateAsUpdate(d.doc) }))
  }

  /** Bytes of every document's full state (the "state size" of the benchmark). */
  size(): number {
    let n = 0
    for (const d of this.docs.values()) n += Y.encodeStateAsUpdate(d.doc).byteLength
    return n
  }

  /** Highest Yjs client id in this node's own document (to pick a larger incarnation). */
  static maxClient(snapshot: ReadonlyArray<{ o: string; u: Uint8Array }>, owner: string): number {
    let max = 0
    for (const s of snapshot) {
      if (s.o !== owner) continue
      for (const client of Y.decodeStateVector(Y.encodeStateVectorFromUpdate(s.u)).keys()) max = Math.max(max, client)
    }
    return max
  }
}
