// Local mode: the state in memory, written through to the node's database before it is
// visible. One process, writes serialized: linearizable trivially. Leases live only in this
// process (a restart ends them, as a dead holder's would), so keys bound to one are dropped at load.
import { randomBytes } from "node:crypto"
import type { Database } from "@novacron/database"
import { Clock, Duration, Effect, Option, PubSub, type Scope, Stream } from "effect"
import { StateUnavailable } from "../StateError.js"
import type { Entry, Snapshot, WatchEvent } from "../StateStore.js"
import type { Backend, Guard, TxnResult } from "./core.js"

const KEY = "ass/k/"
const REV = "ass/rev"

interface Stored {
  readonly v: string
  readonly c: number
  readonly m: number
  readonly n: number
  readonly l?: string | undefined
}

type Logged = { readonly revision: number; readonly event: WatchEvent }

export interface LocalOptions {
  readonly db: Database.Repository
  readonly defaultLeaseTtl: Duration.Duration
  /** Changes kept for watchers that start in the past (older: a `Reset`). */
  readonly history?: number | undefined
  /** How often lapsed leases are swept. */
  readonly sweep?: Duration.DurationInput | undefined
}

const unavailable = (operation: string, key: string) => (e: { readonly message: string }) =>
  new StateUnavailable({ operation, key, message: `local store: ${e.message}` })

const toEntry = (key: string, s: Stored): Entry => ({
  key,
  value: s.v,
  createRevision: s.c,
  modRevision: s.m,
  version: s.n,
  lease: s.l,
})

export const make = (options: LocalOptions): Effect.Effect<Backend, StateUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const db = options.db
    const historyMax = options.history ?? 10_000
    const state = new Map<string, Stored>()
    const leases = new Map<string, { ttl: number; expiresAt: number; keys: Set<string> }>()
    const log: Array<Logged> = []
    let revision = 0
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<Logged>(), PubSub.shutdown)
    const lock = yield* Effect.makeSemaphore(1)

    // Load, dropping keys of leases that ended with the previous process.
    const rows = yield* db.kv.list(KEY).pipe(Effect.mapError(unavailable("load", KEY)))
    const stale: Array<string> = []
    for (const [k, raw] of rows) {
      const s = JSON.parse(raw) as Stored
      revision = Math.max(revision, s.m)
      if (s.l !== undefined) stale.push(k)
      else state.set(k.slice(KEY.length), s)
    }
    const rev = yield* db.kv.get(REV).pipe(Effect.mapError(unavailable("load", REV)))
    if (Option.isSome(rev)) revision = Math.max(revision, Number(rev.value))
    for (const k of stale) yield* db.kv.delete(k).pipe(Effect.mapError(unavailable("load", k)))
    if (stale.length > 0) {
      revision += 1
      yield* db.kv.set(REV, String(revision)).pipe(Effect.mapError(unavailable("load", REV)))
    }
    let compacted = revision

    const publish = (events: ReadonlyArray<Logged>) =>
      Effect.gen(function* () {
        for (const e of events) log.push(e)
        if (log.length > historyMax) {
          const drop = log.splice(0, log.length - historyMax)
          compacted = drop[drop.length - 1]!.revision
        }
        yield* PubSub.publishAll(pubsub, events)
      })

    const deleteKeys = (keys: ReadonlyArray<string>, at: number) =>
      Effect.gen(function* () {
        yield* db.kv.set(REV, String(at)).pipe(Effect.mapError(unavailable("delete", keys[0] ?? "")))
        for (const k of keys) yield* db.kv.delete(KEY + k).pipe(Effect.mapError(unavailable("delete", k)))
        const events: Array<Logged> = []
        for (const k of keys) {
          const s = state.get(k)
          if (s?.l !== undefined) leases.get(s.l)?.keys.delete(k)
          state.delete(k)
          events.push({ revision: at, event: { _tag: "Delete", key: k, revision: at } })
        }
        revision = at
        yield* publish(events)
      })

    const check = (key: string, g: Guard): TxnResult | undefined => {
      if (g.fence !== undefined && state.get(g.fence.key)?.c !== g.fence.token) return { _tag: "Fence" }
      if (g.expectMod !== undefined) {
        const actual = state.get(key)?.m ?? 0
        if (actual !== g.expectMod) return { _tag: "Compare", actual }
      }
      return undefined
    }

    const put = (key: string, value: string, g: Guard) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const refused = check(key, g)
          if (refused !== undefined) return refused
          if (g.lease !== undefined && !leases.has(g.lease))
            return yield* new StateUnavailable({ operation: "put", key, message: `lease ${g.lease} not found` })
          const at = revision + 1
          const old = state.get(key)
          const s: Stored = { v: value, c: old?.c ?? at, m: at, n: (old?.n ?? 0) + 1, l: g.lease }
          yield* db.kv.set(KEY + key, JSON.stringify(s)).pipe(Effect.mapError(unavailable("put", key)))
          yield* db.kv.set(REV, String(at)).pipe(Effect.mapError(unavailable("put", key)))
          if (old?.l !== undefined && old.l !== g.lease) leases.get(old.l)?.keys.delete(key)
          if (g.lease !== undefined) leases.get(g.lease)?.keys.add(key)
          state.set(key, s)
          revision = at
          yield* publish([{ revision: at, event: { _tag: "Put", entry: toEntry(key, s) } }])
          return { _tag: "Ok", revision: at, existed: old !== undefined } as TxnResult
        }),
      )

    const del = (key: string, g: Guard) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const refused = check(key, g)
          if (refused !== undefined) return refused
          if (!state.has(key)) return { _tag: "Ok", revision, existed: false } as TxnResult
          yield* deleteKeys([key], revision + 1)
          return { _tag: "Ok", revision, existed: true } as TxnResult
        }),
      )

    const snapshot = (prefix: string): Snapshot => ({
      revision,
      entries: [...state.entries()]
        .filter(([k]) => k.startsWith(prefix))
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, s]) => toEntry(k, s)),
    })

    const matches = (prefix: string) => (l: Logged) =>
      l.event._tag === "Put"
        ? l.event.entry.key.startsWith(prefix)
        : l.event._tag === "Delete" && l.event.key.startsWith(prefix)

    const watch = (prefix: string, from: number | undefined): Stream.Stream<WatchEvent, StateUnavailable> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const sub = yield* PubSub.subscribe(pubsub)
          let start = from ?? revision
          const head: Array<WatchEvent> = []
          if (start < compacted) {
            const snap = snapshot(prefix)
            head.push({ _tag: "Reset", snapshot: snap })
            start = snap.revision
          }
          const backlog = log.filter((l) => l.revision > start && matches(prefix)(l))
          const last = backlog.length > 0 ? backlog[backlog.length - 1]!.revision : start
          for (const l of backlog) head.push(l.event)
          return Stream.concat(
            Stream.fromIterable(head),
            Stream.fromQueue(sub).pipe(
              Stream.filter((l) => l.revision > last && matches(prefix)(l)),
              Stream.map((l) => l.event),
            ),
          )
        }),
      )

    const sweep = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      for (const [id, l] of leases) {
        if (l.expiresAt > now) continue
        leases.delete(id)
        if (l.keys.size > 0) yield* deleteKeys([...l.keys], revision + 1)
      }
    })
    yield* Effect.forkScoped(
      lock
        .withPermits(1)(sweep)
        .pipe(
          Effect.catchAll((e) => Effect.logWarning(`lease sweep: ${e.message}`)),
          Effect.zipRight(Effect.sleep(options.sweep ?? Duration.millis(50))),
          Effect.forever,
        ),
    )

    const backend: Backend = {
      mode: "local",
      defaultLeaseTtl: options.defaultLeaseTtl,
      get: (key) => Effect.sync(() => Option.map(Option.fromNullable(state.get(key)), (s) => toEntry(key, s))),
      list: (prefix) => Effect.sync(() => snapshot(prefix)),
      put,
      delete: del,
      watch,
      leaseGrant: (ttl) =>
        Effect.gen(function* () {
          const id = randomBytes(8).toString("hex")
          const ms = Math.max(1, Duration.toMillis(ttl))
          leases.set(id, { ttl: ms, expiresAt: (yield* Clock.currentTimeMillis) + ms, keys: new Set() })
          return { id, ttl: Duration.millis(ms) }
        }),
      leaseKeepAlive: (id) =>
        Effect.gen(function* () {
          const l = leases.get(id)
          if (l === undefined) return Duration.zero
          l.expiresAt = (yield* Clock.currentTimeMillis) + l.ttl
          return Duration.millis(l.ttl)
        }),
      leaseRevoke: (id) =>
        lock.withPermits(1)(
          Effect.gen(function* () {
            const l = leases.get(id)
            if (l === undefined) return
            leases.delete(id)
            if (l.keys.size > 0) yield* deleteKeys([...l.keys], revision + 1)
          }),
        ),
    }
    return backend
  })
