// Raft mode on etcd through the `etcd3` client's raw KV/Lease RPCs. What the defaults get wrong
// here (measured on etcd 3.4, issue 19): the 5 s circuit breaker and calls without deadline stall
// writes for seconds after a leader dies; STM's SerializableSnapshot aborts uncontended
// transactions (we use plain Txn compares on mod/create revision instead); a lease's `lost`
// event comes after 2x TTL (core.ts ends leadership by itself); a watch on a compacted revision
// just ends (we re-read and continue).
import { randomInt } from "node:crypto"
import {
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  isBrokenCircuitError,
  noop,
} from "cockatiel"
import { Deferred, Duration, Effect, Exit, FiberId, Option, Queue, Schedule, type Scope, Stream } from "effect"
import { Etcd3, isRecoverableError } from "etcd3"
import { type StateError, StateTimeout, StateUnavailable } from "../StateError.js"
import type { Entry, Snapshot, WatchEvent } from "../StateStore.js"
import type { Backend, Guard, TxnResult } from "./core.js"

export interface EtcdOptions {
  readonly endpoints: ReadonlyArray<string>
  /** Deadline of one RPC (and of the retries of a read). */
  readonly callTimeout: Duration.Duration
  /** Circuit breaker: how long a failed member is skipped before one probe call. */
  readonly halfOpenAfter?: Duration.Duration | undefined
  readonly defaultLeaseTtl: Duration.Duration
  /** Prepended to every key (several clusters or tests on one etcd). */
  readonly namespace?: string | undefined
  /** PEM material for `https://` members: the CA that signed them, and our client certificate. */
  readonly tls?: TlsMaterial | undefined
}

export interface TlsMaterial {
  readonly rootCertificate: Buffer
  readonly certChain?: Buffer | undefined
  readonly privateKey?: Buffer | undefined
  /** Where they came from, for errors (`dwcp.consensus.etcd_cert_file /var/lib/novacron/tls/node.crt`). */
  readonly caSource: string
  readonly certSource?: string | undefined
}

interface RawKv {
  readonly key: Buffer
  readonly value: Buffer
  readonly create_revision: string
  readonly mod_revision: string
  readonly version: string
  readonly lease: string
}

const credentials = (tls: TlsMaterial) => ({
  rootCertificate: tls.rootCertificate,
  ...(tls.certChain ? { certChain: tls.certChain } : {}),
  ...(tls.privateKey ? { privateKey: tls.privateKey } : {}),
})

const message = (e: unknown) => (e instanceof Error ? e.message : String(e))

// gRPC reports a failed handshake as "No connection established" with OpenSSL's text: say which
// side refused which certificate, and which file it was.
const tlsHint = (m: string, tls: TlsMaterial | undefined): string | undefined => {
  if (
    /alert (bad certificate|unknown ca|certificate unknown|certificate required|handshake failure)|alert number (40|42|46|48|116)\b/i.test(
      m,
    )
  )
    return tls?.certSource === undefined
      ? `etcd requires a client certificate (--client-cert-auth) and none is configured (set dwcp.consensus.etcd_cert_file and etcd_key_file)`
      : `etcd refused the client certificate ${tls.certSource}: it is not signed by a CA in etcd's --trusted-ca-file`
  if (/certificate verify failed|unable to get (local )?issuer|self[- ]signed certificate|unable to verify/i.test(m))
    return `the etcd member's certificate is not signed by the CA in ${tls?.caSource ?? "the system store"}`
  if (/Hostname\/IP does not match|altnames/i.test(m))
    return "the etcd member's certificate does not name the endpoint's host (subjectAltName)"
  if (/wrong version number|packet length too long|http2 .*(Protocol|frame)|record overflow/i.test(m))
    return "TLS/plain-text mismatch: the member does not speak what the endpoint's http(s):// scheme says"
  return undefined
}

/** Surely not sent, or refused before it was proposed: safe to retry, nothing applied. */
const notApplied = (e: unknown): boolean => {
  if (isBrokenCircuitError(e)) return true
  const m = message(e)
  // Refused connections never carried the request; "no leader" and "not capable" are answered by
  // etcd's gRPC interceptors before the request reaches raft. Anything else may have been applied.
  return /ECONNREFUSED|No connection established|connection refused|failed to connect|etcdserver: no leader|etcdserver: not capable|Broken circuit/i.test(
    m,
  )
}

const prefixEnd = (prefix: Buffer): Buffer => {
  const end = Buffer.from(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1
      return end.subarray(0, i + 1)
    }
  }
  return Buffer.from([0])
}

export const make = (options: EtcdOptions): Effect.Effect<Backend & { readonly client: Etcd3 }, never, Scope.Scope> =>
  Effect.gen(function* () {
    const callMs = Duration.toMillis(options.callTimeout)
    const ns = options.namespace ?? ""
    // An open breaker hides why the member failed (a refused certificate, say): say the last reason.
    let lastFailure: string | undefined
    const describe = (e: unknown): string => {
      if (isBrokenCircuitError(e) && lastFailure !== undefined)
        return `${lastFailure} [member skipped for now after failing calls]`
      const m = message(e)
      const hint = tlsHint(m, options.tls)
      const text = hint === undefined ? m : `${hint} (${m.trim()})`
      if (!isBrokenCircuitError(e)) lastFailure = text
      return text
    }
    const open = (hosts: ReadonlyArray<string>) =>
      Effect.acquireRelease(
        Effect.sync(
          () =>
            new Etcd3({
              hosts: [...hosts],
              ...(options.tls ? { credentials: credentials(options.tls) } : {}),
              defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callMs }),
              dialTimeout: callMs,
              faultHandling: {
                host: () =>
                  circuitBreaker(handleWhen(isRecoverableError), {
                    halfOpenAfter: Duration.toMillis(options.halfOpenAfter ?? Duration.millis(200)),
                    breaker: new ConsecutiveBreaker(3),
                  }),
                // Retries are ours: a write is retried only when it surely was not applied.
                global: noop,
                // The default backs off to 30 s: a watch (and so a waiting candidate) would sleep
                // through a whole failover after a member restart.
                // etcd3 types this as a backoff but calls it as a factory (`.next()`), which this is.
                watchBackoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1000 }) as never,
              },
            }),
        ),
        (c) => Effect.sync(() => c.close()),
      )
    const client = yield* open(options.endpoints)
    // One client per member for writes, sent to the member that says it leads. A write sent to a
    // follower is forwarded to the leader; when the leader was killed, the follower keeps
    // forwarding into the void until its election timeout fires (1-2 s), and the write waits out
    // its whole deadline. Sent to the leader itself, it fails at once (connection refused: not
    // applied, retried), and the retry waits for a member that says it leads: the new leader.
    const members = options.endpoints.length > 1 ? yield* Effect.forEach(options.endpoints, (e) => open([e])) : []
    // The member believed to lead, and when that was learnt. Re-asked every second: a leader that
    // stepped down (leadership transfer, a member upgrade) but lives still takes writes and
    // forwards them, an extra hop each; one status call a second while writing costs nothing.
    let leader: { readonly index: number; readonly at: number } | undefined
    const statusMs = Math.max(50, Math.min(250, callMs / 4))
    /** Asks every member who leads; the index of one that says itself, else the first error. */
    const findLeader = Effect.tryPromise({
      try: async () => {
        const answers = await Promise.all(
          members.map((m) =>
            m.maintenance.status({ deadline: Date.now() + statusMs }).then(
              (s) => ({ ok: s }),
              (e: unknown) => ({ error: e }),
            ),
          ),
        )
        let best: { index: number; term: number } | undefined
        answers.forEach((a, index) => {
          if (!("ok" in a) || String(a.ok.leader) !== String(a.ok.header.member_id)) return
          // Two members saying they lead (one cut off, not stepped down yet): the later term.
          const term = Number(a.ok.raftTerm)
          if (best === undefined || term > best.term) best = { index, term }
        })
        if (best !== undefined) return best.index
        const answered = answers.filter((a) => "ok" in a).length
        if (answered > 0)
          throw new Error(`etcdserver: no leader (${answered} of ${members.length} members answer, none leads)`)
        throw (answers[0] as { error: unknown }).error
      },
      catch: (e) => e,
    })
    const leaderRefreshMs = 1_000
    /** The client of the leader when known (found now if need be), else the pool's. */
    const target = Effect.suspend((): Effect.Effect<{ readonly c: Etcd3; readonly index: number }, unknown> => {
      if (members.length === 0) return Effect.succeed({ c: client, index: -1 })
      const now = Date.now()
      if (leader !== undefined && now - leader.at < leaderRefreshMs)
        return Effect.succeed({ c: members[leader.index]!, index: leader.index })
      const found = Effect.map(findLeader, (index) => {
        leader = { index, at: Date.now() }
        return { c: members[index]!, index }
      })
      if (leader === undefined) return found
      // Time to re-ask: one status call to the member we use, all of them only if it stopped leading
      // (so a dead or cut-off follower does not slow a write every few seconds).
      const known = leader.index
      return Effect.tryPromise(() => members[known]!.maintenance.status({ deadline: Date.now() + statusMs })).pipe(
        Effect.flatMap((st) =>
          String(st.leader) === String(st.header.member_id)
            ? Effect.sync(() => {
                leader = { index: known, at: Date.now() }
                return { c: members[known]!, index: known }
              })
            : found,
        ),
        Effect.orElse(() => found),
      )
    })
    const k = (key: string) => Buffer.from(ns + key)
    const unk = (b: Buffer) => b.toString().slice(ns.length)
    const toEntry = (kv: RawKv): Entry => ({
      key: unk(kv.key),
      value: kv.value.toString(),
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
      version: Number(kv.version),
      lease: kv.lease === undefined || String(kv.lease) === "0" ? undefined : String(kv.lease),
    })

    const retry = Schedule.exponential(Duration.millis(20), 1.5).pipe(
      Schedule.union(Schedule.spaced(Duration.millis(200))),
      Schedule.upTo(options.callTimeout),
    )

    // A write retried is one that was not sent or was refused by a member that does not lead: asking
    // who leads again every 50 ms costs three status calls and takes the new leader within 50 ms.
    const retryWrite = Schedule.exponential(Duration.millis(10), 1.5).pipe(
      Schedule.union(Schedule.spaced(Duration.millis(50))),
      Schedule.upTo(options.callTimeout),
    )

    // The retry schedule is set up only once a call failed (it costs on the hot path otherwise).
    const retried =
      (retryable: (e: StateError) => boolean, schedule = retry) =>
      <A>(self: Effect.Effect<A, StateError>): Effect.Effect<A, StateError> =>
        Effect.catchIf(self, retryable, () => Effect.retry(self, { schedule, while: retryable }))

    /** A read: any failure applied nothing, so retry until the deadline. */
    const read = <A>(operation: string, key: string, f: () => Promise<A>): Effect.Effect<A, StateError> =>
      Effect.tryPromise({
        try: f,
        catch: (e) => new StateUnavailable({ operation, key, message: `etcd: ${describe(e)}` }),
      }).pipe(retried(() => true))

    /** A write: retried only when surely not applied; otherwise its outcome is unknown. */
    const write = <A>(operation: string, key: string, f: (c: Etcd3) => Promise<A>): Effect.Effect<A, StateError> =>
      Effect.matchEffect(target, {
        // Nothing was sent: no member says it leads (election running) or none answers.
        onFailure: (e) => Effect.fail(new StateUnavailable({ operation, key, message: `etcd: ${describe(e)}` })),
        onSuccess: ({ c, index }) =>
          Effect.tryPromise({
            try: () => f(c),
            catch: (e): StateError => {
              if (leader?.index === index) leader = undefined
              return notApplied(e)
                ? new StateUnavailable({ operation, key, message: `etcd: ${describe(e)}` })
                : new StateTimeout({ operation, key, message: `etcd: ${describe(e)} (outcome unknown)` })
            },
          }),
      }).pipe(retried((e) => e._tag === "StateUnavailable", retryWrite))

    const get = (key: string) =>
      read("get", key, () => client.kv.range({ key: k(key) })).pipe(
        Effect.map((r) => Option.map(Option.fromNullable(r.kvs[0] as RawKv | undefined), toEntry)),
      )

    const list = (prefix: string): Effect.Effect<Snapshot, StateError> =>
      read("list", prefix, () => client.kv.range({ key: k(prefix), range_end: prefixEnd(k(prefix)) })).pipe(
        Effect.map((r) => ({
          revision: Number(r.header.revision),
          entries: (r.kvs as Array<RawKv>).map(toEntry).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
        })),
      )

    const compares = (key: string, g: Guard) => {
      const out: Array<Record<string, unknown>> = []
      if (g.expectMod !== undefined)
        out.push({ key: k(key), target: "Mod", result: "Equal", mod_revision: g.expectMod })
      if (g.fence !== undefined)
        out.push({ key: k(g.fence.key), target: "Create", result: "Equal", create_revision: g.fence.token })
      return out
    }

    const txn = (operation: string, key: string, g: Guard, op: Record<string, unknown>) =>
      write(operation, key, (c) =>
        c.kv.txn({
          compare: compares(key, g) as never,
          success: [op as never],
          failure: [
            { request_range: { key: k(key) } },
            ...(g.fence === undefined ? [] : [{ request_range: { key: k(g.fence.key) } }]),
          ],
        }),
      ).pipe(
        Effect.map((r): TxnResult => {
          if (r.succeeded) {
            const res = r.responses[0] as unknown as {
              response_delete_range?: { deleted: string }
              response_put?: { prev_kv?: RawKv }
            }
            return {
              _tag: "Ok",
              revision: Number(r.header.revision),
              existed: res.response_delete_range ? Number(res.response_delete_range.deleted) > 0 : true,
            }
          }
          // A lost fence first: a deposed writer learns nothing about the key.
          if (g.fence !== undefined) {
            const f = r.responses[1]?.response_range.kvs[0] as RawKv | undefined
            if (f === undefined || Number(f.create_revision) !== g.fence.token) return { _tag: "Fence" }
          }
          const kv = r.responses[0]?.response_range.kvs[0] as RawKv | undefined
          const actual = kv === undefined ? 0 : Number(kv.mod_revision)
          if (g.expectMod !== undefined && actual !== g.expectMod) return { _tag: "Compare", actual }
          return { _tag: "Fence" }
        }),
      )

    // Group commit for unguarded puts: a put goes out at once while fewer than `maxBatches` are in
    // flight; puts made meanwhile wait and go together as one etcd transaction (one raft entry, one
    // call). 64 writers in flight measured 0.62x of the etcd3 client sending each put itself to the
    // leader: the cost was per call, in etcd and in the client. Puts of one batch commit at one
    // revision, atomically; guarded writes (compare, fence) keep their own transaction.
    interface Queued {
      readonly key: string
      readonly req: { readonly key: Buffer; readonly value: Buffer; readonly lease: string | number }
      readonly done: Deferred.Deferred<TxnResult, StateError>
    }
    const maxBatches = 2
    // Well under etcd's limits (--max-txn-ops 128, --max-request-bytes 1.5 MiB).
    const maxOps = 64
    const maxBytes = 512 * 1024
    const queued = yield* Queue.unbounded<Queued>()
    const slots = yield* Effect.makeSemaphore(maxBatches)
    const closed = (key: string) =>
      new StateUnavailable({ operation: "put", key, message: "the state store closed before the put was sent" })
    /** The batch's failure, told to each put under its own key. */
    const own = (e: StateError, key: string): StateError =>
      e._tag === "StateUnavailable"
        ? new StateUnavailable({ operation: e.operation, key, message: e.message })
        : e._tag === "StateTimeout"
          ? new StateTimeout({ operation: e.operation, key, message: e.message })
          : e
    const send = (batch: ReadonlyArray<Queued>) => {
      const call: Effect.Effect<{ readonly header: { readonly revision: string } }, StateError> =
        batch.length === 1
          ? write("put", batch[0]!.key, (c) => c.kv.put(batch[0]!.req))
          : write("put", batch[0]!.key, (c) =>
              c.kv.txn({ compare: [], success: batch.map((q) => ({ request_put: q.req })) as never, failure: [] }),
            )
      return call.pipe(
        // Sent but not answered: it may have been applied.
        Effect.onInterrupt(() =>
          Effect.forEach(
            batch,
            (q) =>
              Deferred.fail(
                q.done,
                new StateTimeout({
                  operation: "put",
                  key: q.key,
                  message: "the state store closed while the put was in flight (outcome unknown)",
                }),
              ),
            { discard: true },
          ),
        ),
        Effect.exit,
        Effect.flatMap((exit) =>
          Effect.forEach(
            batch,
            (q) =>
              Deferred.done(
                q.done,
                Exit.mapBoth(exit, {
                  onFailure: (e) => own(e, q.key),
                  onSuccess: (r): TxnResult => ({ _tag: "Ok", revision: Number(r.header.revision), existed: true }),
                }),
              ),
            { discard: true },
          ),
        ),
      )
    }
    let carried: Array<Queued> = []
    const batcher = Effect.gen(function* () {
      while (true) {
        yield* slots.take(1)
        const taken =
          carried.length > 0
            ? [...carried, ...(yield* Queue.takeAll(queued))]
            : [...(yield* Queue.takeBetween(queued, 1, maxOps))]
        // One op per key in a transaction (etcd refuses duplicates): a second put of a key waits for
        // a later batch (two puts of a key in one batch were concurrent: either order is right).
        const batch: Array<Queued> = []
        const keys = new Set<string>()
        let bytes = 0
        carried = []
        for (const q of taken) {
          const size = q.req.key.length + q.req.value.length
          if (
            keys.has(q.key) ||
            batch.length >= maxOps ||
            (batch.length > 0 && bytes + size > maxBytes) ||
            carried.length > 0
          )
            carried.push(q)
          else {
            keys.add(q.key)
            bytes += size
            batch.push(q)
          }
        }
        yield* Effect.forkScoped(Effect.ensuring(send(batch), slots.release(1)))
      }
    })
    // Every put not answered yet; when the store closes, those never sent fail (nothing applied)
    // instead of waiting forever, and later puts fail at once.
    const waiting = new Set<Queued>()
    let accepting = true
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        accepting = false
        return Effect.forEach(waiting, (q) => Deferred.fail(q.done, closed(q.key)), { discard: true })
      }),
    )
    yield* Effect.forkScoped(batcher)

    const put = (key: string, value: string, g: Guard): Effect.Effect<TxnResult, StateError> => {
      const req = { key: k(key), value: Buffer.from(value), lease: g.lease ?? 0 }
      if (g.expectMod === undefined && g.fence === undefined)
        return Effect.suspend(() => {
          if (!accepting) return Effect.fail(closed(key))
          const q: Queued = { key, req, done: Deferred.unsafeMake(FiberId.none) }
          waiting.add(q)
          queued.unsafeOffer(q)
          return Effect.ensuring(
            Deferred.await(q.done),
            Effect.sync(() => waiting.delete(q)),
          )
        })
      return txn("put", key, g, { request_put: req })
    }

    const del = (key: string, g: Guard) => {
      if (g.expectMod === undefined && g.fence === undefined)
        return write("delete", key, (c) => c.kv.deleteRange({ key: k(key) })).pipe(
          Effect.map(
            (r): TxnResult => ({ _tag: "Ok", revision: Number(r.header.revision), existed: Number(r.deleted) > 0 }),
          ),
        )
      return txn("delete", key, g, { request_delete_range: { key: k(key) } })
    }

    const watch = (prefix: string, from: number | undefined): Stream.Stream<WatchEvent, StateError> =>
      Stream.asyncPush<WatchEvent, StateError>((emit) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            let closed = false
            let current: { cancel: () => Promise<void> } | undefined
            const open = (start: number | undefined) => {
              if (closed) return
              const b = client.watch().prefix(ns + prefix)
              if (start !== undefined) b.startRevision(String(start))
              const w = b.watcher()
              current = w
              w.on("put", (kv) => emit.single({ _tag: "Put", entry: toEntry(kv as unknown as RawKv) }))
              w.on("delete", (kv) =>
                emit.single({ _tag: "Delete", key: unk(kv.key), revision: Number(kv.mod_revision) }),
              )
              w.on("error", (err) => {
                if (closed) return
                // etcd 3.4 cancels a watch on a compacted revision with an empty reason.
                if (/compacted|^Watcher canceled: *$/i.test(err.message)) {
                  // The changes since `start` are gone: hand over a fresh snapshot and go on from it.
                  Effect.runPromise(Effect.either(list(prefix))).then((r) => {
                    if (r._tag === "Left") return emit.fail(r.left)
                    emit.single({ _tag: "Reset", snapshot: r.right })
                    open(r.right.revision + 1)
                  })
                } else {
                  emit.fail(
                    new StateUnavailable({ operation: "watch", key: prefix, message: `etcd: ${describe(err)}` }),
                  )
                }
              })
            }
            open(from === undefined ? undefined : from + 1)
            return () => {
              closed = true
              return current?.cancel()
            }
          }),
          (close) => Effect.promise(async () => close()).pipe(Effect.ignore),
        ),
      )

    // We pick the lease id: int64 fields may reach us as JS numbers (the proto loader's `longs`
    // option is not honoured under every module loader, e.g. vitest's), rounding an id etcd picked.
    const leaseGrant = (ttl: Duration.Duration) =>
      Effect.suspend(() => {
        const id = String(randomInt(1, 2 ** 47) * 64 + randomInt(0, 64))
        return write("lease", id, (c) =>
          c.leaseClient.leaseGrant({ ID: id, TTL: Math.max(1, Math.ceil(Duration.toSeconds(ttl))) }),
        ).pipe(Effect.map((r) => ({ id, ttl: Duration.seconds(Number(r.TTL)) })))
      }).pipe(Effect.retry({ times: 3, while: (e) => /lease already exists/i.test(e.message) }))

    const leaseKeepAlive = (id: string) =>
      Effect.async<Duration.Duration, StateError>((resume) => {
        let stream: { write: (x: unknown) => void; end: () => void; cancel?: () => void } | undefined
        client.leaseClient
          .leaseKeepAlive()
          .then((s) => {
            stream = s as never
            s.on("data", (res) => {
              s.end()
              resume(Effect.succeed(Duration.seconds(Number(res.TTL))))
            })
            s.on("error", (e) =>
              resume(Effect.fail(new StateUnavailable({ operation: "keepalive", key: id, message: describe(e) }))),
            )
            s.write({ ID: id })
          })
          .catch((e) =>
            resume(Effect.fail(new StateUnavailable({ operation: "keepalive", key: id, message: describe(e) }))),
          )
        return Effect.sync(() => {
          try {
            stream?.end()
            stream?.cancel?.()
          } catch {}
        })
      })

    const leaseRevoke = (id: string) =>
      write("revoke", id, (c) => c.leaseClient.leaseRevoke({ ID: id })).pipe(
        Effect.catchIf(
          (e) => /not found/i.test(e.message),
          () => Effect.void,
        ),
        Effect.asVoid,
      )

    return {
      mode: "etcd" as const,
      client,
      defaultLeaseTtl: options.defaultLeaseTtl,
      get,
      list,
      put,
      delete: del,
      watch,
      leaseGrant,
      leaseKeepAlive,
      leaseRevoke,
    }
  })
