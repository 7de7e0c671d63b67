// Leases, fencing and elections written once over a backend's primitives (etcd or local), so
// both modes share the parts that are easy to get subtly wrong.
import { Cause, Clock, Deferred, Duration, Effect, Exit, Metric, Option, Ref, type Scope, Stream } from "effect"
import {
  CompareFailed,
  Deposed,
  LeaseLost,
  type StateError,
  StateTimeout,
  type StateUnavailable,
  type WriteError,
} from "../StateError.js"
import * as StateMetrics from "../StateMetrics.js"
import type {
  CampaignOptions,
  Entry,
  Leadership,
  Lease,
  LeaseOptions,
  Snapshot,
  StateStoreApi,
  WatchEvent,
  WriteOptions,
} from "../StateStore.js"

/** A write's guard: the key's mod revision, and the election key that must still have this create revision. */
export interface Guard {
  readonly expectMod?: number | undefined
  readonly fence?: { readonly key: string; readonly token: number } | undefined
  readonly lease?: string | undefined
}

export type TxnResult =
  | { readonly _tag: "Ok"; readonly revision: number; readonly existed: boolean }
  | { readonly _tag: "Compare"; readonly actual: number }
  | { readonly _tag: "Fence" }

export interface Backend {
  readonly mode: "etcd" | "local" | "pbft"
  readonly get: (key: string) => Effect.Effect<Option.Option<Entry>, StateError>
  readonly list: (prefix: string) => Effect.Effect<Snapshot, StateError>
  readonly put: (key: string, value: string, guard: Guard) => Effect.Effect<TxnResult, StateError>
  readonly delete: (key: string, guard: Guard) => Effect.Effect<TxnResult, StateError>
  readonly watch: (prefix: string, from: number | undefined) => Stream.Stream<WatchEvent, StateError>
  /** Grants a lease; returns its id and the TTL the store granted. */
  readonly leaseGrant: (ttl: Duration.Duration) => Effect.Effect<{ id: string; ttl: Duration.Duration }, StateError>
  /** One keepalive; the remaining TTL, zero when the lease is gone. */
  readonly leaseKeepAlive: (id: string) => Effect.Effect<Duration.Duration, StateError>
  readonly leaseRevoke: (id: string) => Effect.Effect<void, StateError>
  readonly defaultLeaseTtl: Duration.Duration
}

/** How long before the TTL runs out a lease stops counting as held (clock drift, scheduling). */
const margin = (ttl: Duration.Duration) => Duration.max(Duration.millis(100), Duration.times(ttl, 0.1))

const makeLease = (
  b: Backend,
  ttl: Duration.DurationInput,
  options: LeaseOptions = {},
): Effect.Effect<Lease, StateError | LeaseLost, Scope.Scope> =>
  Effect.gen(function* () {
    const sentAt = yield* Clock.currentTimeMillis
    const granted = yield* Effect.acquireRelease(b.leaseGrant(Duration.decode(ttl)), ({ id }) =>
      b.leaseRevoke(id).pipe(Effect.ignore),
    )
    const ttlMs = Duration.toMillis(granted.ttl)
    const marginMs = Duration.toMillis(margin(granted.ttl))
    // Valid until: send time of the last acknowledged grant/keepalive + TTL - margin.
    const until = yield* Ref.make(sentAt + ttlMs - marginMs)
    const lost = yield* Deferred.make<void>()
    const valid = Effect.gen(function* () {
      if (yield* Deferred.isDone(lost)) return false
      const now = yield* Clock.currentTimeMillis
      if (now < (yield* Ref.get(until))) return true
      yield* Deferred.succeed(lost, undefined)
      return false
    })
    const keepAlive = options.keepAlive ?? Effect.succeed(true)
    const loop = Effect.gen(function* () {
      while (yield* valid) {
        const left = (yield* Ref.get(until)) - (yield* Clock.currentTimeMillis)
        yield* Effect.sleep(Duration.millis(Math.max(1, Math.min(ttlMs / 3, left))))
        if (!(yield* keepAlive)) continue
        const t = yield* Clock.currentTimeMillis
        const r = yield* b
          .leaseKeepAlive(granted.id)
          .pipe(Effect.timeoutOption(Duration.millis(Math.max(50, ttlMs / 3))), Effect.either)
        if (r._tag === "Right" && Option.isSome(r.right)) {
          const remaining = Duration.toMillis(r.right.value)
          if (remaining <= 0) {
            yield* Deferred.succeed(lost, undefined)
            return
          }
          yield* Ref.update(until, (u) => Math.max(u, t + remaining - marginMs))
        }
      }
    })
    yield* Effect.forkScoped(loop)
    // Ends the lease on time even when the loop is stuck in a call.
    yield* Effect.forkScoped(
      Effect.gen(function* () {
        while (yield* valid) {
          const left = (yield* Ref.get(until)) - (yield* Clock.currentTimeMillis)
          yield* Effect.sleep(Duration.millis(Math.max(1, left)))
        }
      }),
    )
    return { id: granted.id, ttl: granted.ttl, valid, lost: Deferred.await(lost) } satisfies Lease
  })

const fenceOf = (key: string, options: WriteOptions | undefined) =>
  Effect.gen(function* () {
    const f = options?.fence
    if (f === undefined) return undefined
    if (!(yield* f.isLeader)) return yield* new Deposed({ election: f.election, token: f.token, key })
    return { key: f.key, token: f.token }
  })

const leaseOf = (options: WriteOptions | undefined) => options?.lease?.id

const resultOf = (tag: string): StateMetrics.Result => {
  switch (tag) {
    case "StateUnavailable":
      return "unavailable"
    case "StateTimeout":
      return "timeout"
    case "CompareFailed":
      return "compare_failed"
    case "Deposed":
      return "deposed"
    case "StateDecodeError":
      return "decode_error"
    case "NotLinearizable":
      return "not_linearizable"
    case "NotOwner":
      return "not_owner"
    default:
      return "lease_lost"
  }
}

// Tagged metrics built once: tagging per call would hash the labels on every operation.
const counters = new Map(
  StateMetrics.operations.map((op) => [
    op,
    new Map(
      StateMetrics.results.map((r) => [r, StateMetrics.ops.pipe(Metric.tagged("op", op), Metric.tagged("result", r))]),
    ),
  ]),
)
const timers = new Map(StateMetrics.operations.map((op) => [op, Metric.tagged(StateMetrics.opSeconds, "op", op)]))

/** Counts the call by result and records its duration. */
export const instrument =
  (op: StateMetrics.Operation) =>
  <A, E extends { readonly _tag: string }, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(Clock.currentTimeNanos, (start) =>
      Effect.onExit(self, (exit) => {
        const result: StateMetrics.Result = Exit.isSuccess(exit)
          ? "ok"
          : Option.match(Cause.failureOption(exit.cause), {
              onNone: () => "interrupted",
              onSome: (e) => resultOf(e._tag),
            })
        return Effect.flatMap(Clock.currentTimeNanos, (end) =>
          Effect.zipRight(
            Metric.increment(counters.get(op)!.get(result)!),
            Metric.update(timers.get(op)!, Number(end - start) / 1e9),
          ),
        )
      }),
    )

export const make = (b: Backend): StateStoreApi => {
  const deposed = (key: string, options: WriteOptions | undefined) =>
    new Deposed({ election: options?.fence?.election ?? "", token: options?.fence?.token ?? 0, key })

  const put: StateStoreApi["put"] = (key, value, options) =>
    options?.fence === undefined
      ? Effect.flatMap(b.put(key, value, { lease: leaseOf(options) }), (r) =>
          r._tag === "Ok" ? Effect.succeed(r.revision) : Effect.fail(deposed(key, options)),
        )
      : Effect.gen(function* () {
          const fence = yield* fenceOf(key, options)
          const r = yield* b.put(key, value, { fence, lease: leaseOf(options) })
          if (r._tag === "Ok") return r.revision
          return yield* deposed(key, options)
        })

  const compareAndSet: StateStoreApi["compareAndSet"] = (key, expected, value, options) =>
    Effect.gen(function* () {
      const fence = yield* fenceOf(key, options)
      const r = yield* b.put(key, value, { fence, lease: leaseOf(options), expectMod: expected })
      switch (r._tag) {
        case "Ok":
          return r.revision
        case "Compare":
          return yield* new CompareFailed({ key, expected, actual: r.actual })
        case "Fence":
          return yield* deposed(key, options)
      }
    })

  const del: StateStoreApi["delete"] = (key, options) =>
    Effect.gen(function* () {
      const fence = yield* fenceOf(key, options)
      const r = yield* b.delete(key, { fence })
      if (r._tag === "Ok") return r.existed
      return yield* deposed(key, options)
    })

  const lease: StateStoreApi["lease"] = (ttl, options) => makeLease(b, ttl, options)

  const candidates = (election: string) =>
    b.list(`${election}/`).pipe(
      Effect.map((s) => ({
        revision: s.revision,
        entries: [...s.entries].sort((x, y) => x.createRevision - y.createRevision),
      })),
    )

  const campaign: StateStoreApi["campaign"] = (election, value, options: CampaignOptions = {}) =>
    Effect.gen(function* () {
      const l = options.lease ?? (yield* makeLease(b, options.ttl ?? b.defaultLeaseTtl))
      const key = `${election}/${l.id}`
      const created = yield* Effect.acquireRelease(
        b.put(key, value, { expectMod: 0, lease: l.id }),
        // Resign: only our own key, only while it is still ours.
        () => b.delete(key, {}).pipe(Effect.ignore),
      )
      const mine =
        created._tag === "Ok"
          ? created.revision
          : yield* b
              .get(key)
              .pipe(Effect.map(Option.getOrUndefined))
              .pipe(
                Effect.flatMap((e) =>
                  e === undefined
                    ? Effect.fail(new LeaseLost({ lease: l.id, message: `${key}: candidacy vanished` }))
                    : Effect.succeed(e.createRevision),
                ),
              )
      // Wait until no older candidate remains: watch the one just before ours (no herd).
      while (true) {
        if (!(yield* l.valid))
          return yield* new LeaseLost({ lease: l.id, message: `lease lapsed while campaigning for ${election}` })
        const c = yield* candidates(election)
        const me = c.entries.find((e) => e.key === key)
        if (me === undefined) return yield* new LeaseLost({ lease: l.id, message: `${key}: candidacy vanished` })
        const older = c.entries.filter((e) => e.createRevision < me.createRevision)
        if (older.length === 0) break
        const prev = older[older.length - 1]!
        yield* b.watch(prev.key, c.revision).pipe(
          Stream.filter((e) => e._tag !== "Put"),
          Stream.take(1),
          Stream.runDrain,
          Effect.raceFirst(l.lost),
        )
      }
      // Counted up once won, down once when the lease is lost or the campaign's scope closes.
      const gauge = Metric.tagged(StateMetrics.leader, "election", election)
      const held = yield* Ref.make(true)
      const stepDown = Effect.flatMap(Ref.getAndSet(held, false), (was) =>
        was ? Metric.incrementBy(gauge, -1) : Effect.void,
      )
      yield* Metric.increment(gauge)
      yield* Effect.addFinalizer(() => stepDown)
      yield* Effect.forkScoped(Effect.zipRight(l.lost, stepDown))
      const isLeader = l.valid
      return {
        election,
        key,
        token: mine,
        lease: l,
        isLeader,
        deposed: l.lost,
      } satisfies Leadership
    })

  const leader: StateStoreApi["leader"] = (election) =>
    candidates(election).pipe(Effect.map((c) => Option.fromNullable(c.entries[0])))

  return {
    mode: b.mode,
    get: (key) => instrument("get")(b.get(key)),
    list: (prefix) => instrument("list")(b.list(prefix)),
    put: (key, value, options) => instrument("put")(put(key, value, options)),
    compareAndSet: (key, expected, value, options) =>
      instrument("compare_and_set")(compareAndSet(key, expected, value, options)),
    delete: (key, options) => instrument("delete")(del(key, options)),
    watch: (prefix, from) => b.watch(prefix, from),
    lease,
    campaign: (election, value, options) => instrument("campaign")(campaign(election, value, options)),
    leader: (election) => instrument("leader")(leader(election)),
  }
}

export type { StateUnavailable, WriteError }
export const timeout = (operation: string, key: string, message: string) =>
  new StateTimeout({ operation, key, message })
