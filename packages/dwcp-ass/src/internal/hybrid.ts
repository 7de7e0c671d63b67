// Hybrid mode: routes each key to the site's etcd or to the inter-site gossip replica, and runs
// the site coordinator's candidacy and re-publishing.
//
// Who writes a site's keys in the pool: the gossip document `site/<site>` is written by whoever
// is the site's coordinator now, under a Yjs client id equal to its fencing token (the create
// revision of its candidacy key in the site's etcd). So the pool has a per-site writer id rather
// than a per-node one, and a handover needs no change of ownership: the next coordinator goes on
// writing the same document under a larger client id. Two coordinators never write at once as
// far as the leases go (the old one stops at last ack + TTL - margin, before etcd can elect the
// next); were they to, their concurrent writes resolve to the later term's (a larger client id
// lands to the right, and YKeyValue keeps the rightmost), and the new coordinator's reconciling
// repairs anything else an old term left behind.
import { Context, Duration, Effect, Layer, Option, Queue, Ref, Schedule, Schema, type Scope, Stream } from "effect"
import * as EtcdStore from "../EtcdStore.js"
import type { GossipApi } from "../GossipStore.js"
import type { HybridApi, Options } from "../HybridStore.js"
import { NotLinearizable, NotOwner, StateUnavailable } from "../StateError.js"
import { StateStore, type StateStoreApi } from "../StateStore.js"
import * as GossipImpl from "./gossipStore.js"

const SITE = /^[a-z0-9][a-z0-9_.-]{0,62}$/

/** `site/<site>/...` (or `site/<site>`) → `<site>`. */
export const siteOf = (key: string): string | undefined => {
  if (!key.startsWith("site/")) return undefined
  const rest = key.slice(5)
  const i = rest.indexOf("/")
  const s = i < 0 ? rest : rest.slice(0, i)
  return s === "" ? undefined : s
}

/** The gossip pool's key ownership in hybrid mode: a site's keys are its document; nothing else is in the pool. */
export const docOf = (key: string): string | undefined => {
  const s = siteOf(key)
  return s === undefined ? undefined : `site/${s}`
}

const MemberMeta = Schema.parseJson(Schema.Struct({ site: Schema.optional(Schema.String) }))
const decodeMeta = Schema.decodeUnknownOption(MemberMeta)

export interface Made {
  readonly store: StateStoreApi
  readonly hybrid: HybridApi
  readonly gossip: GossipApi
}

export const make = (options: Options): Effect.Effect<Made, StateUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const site = options.site
    if (!SITE.test(site))
      return yield* new StateUnavailable({
        operation: "hybrid",
        key: "",
        message: `site "${site}": expected [a-z0-9][a-z0-9_.-]*, at most 63 characters (it is a key segment)`,
      })
    const etcd = Context.get(yield* Layer.build(EtcdStore.layer(options.etcd)), StateStore)
    const g = yield* GossipImpl.make({ ...options.gossip, site }, { owner: docOf })
    const gossip = g.store
    const own = `site/${site}/`
    const doc = `site/${site}`

    // This site's keys go to etcd; another site's to the replica.
    const remote = (key: string) => {
      const s = siteOf(key)
      return s !== undefined && s !== site
    }
    // A prefix is etcd's when every key under it is this site's, the replica's when every key
    // under it is a site key; otherwise it spans both.
    const storeOfPrefix = (prefix: string): StateStoreApi | undefined => {
      if (prefix.startsWith("site/")) {
        const rest = prefix.slice(5)
        const i = rest.indexOf("/")
        if (i < 0) return gossip
        return rest.slice(0, i) === site ? etcd : gossip
      }
      return "site/".startsWith(prefix) ? undefined : etcd
    }
    const spans = (operation: string, prefix: string) =>
      new NotLinearizable({
        operation: `${operation} across this site's etcd and the other sites' replica, prefix`,
        key: JSON.stringify(prefix),
        mode: "hybrid",
      })
    const notOwner = (key: string) =>
      new NotOwner({ key, owner: `the coordinator of site ${siteOf(key)}`, node: `${g.gossip.id} of site ${site}` })

    const store: StateStoreApi = {
      mode: "hybrid",
      get: (key) => (remote(key) ? gossip.get(key) : etcd.get(key)),
      list: (prefix) => {
        const s = storeOfPrefix(prefix)
        return s === undefined ? Effect.fail(spans("list", prefix)) : s.list(prefix)
      },
      put: (key, value, o) => (remote(key) ? Effect.fail(notOwner(key)) : etcd.put(key, value, o)),
      compareAndSet: (key, expected, value, o) =>
        remote(key) ? Effect.fail(notOwner(key)) : etcd.compareAndSet(key, expected, value, o),
      delete: (key, o) => (remote(key) ? Effect.fail(notOwner(key)) : etcd.delete(key, o)),
      watch: (prefix, from) => {
        const s = storeOfPrefix(prefix)
        return s === undefined ? Stream.fail(spans("watch", prefix)) : s.watch(prefix, from)
      },
      lease: etcd.lease,
      campaign: etcd.campaign,
      leader: etcd.leader,
    }

    const coordinating = yield* Ref.make(false)
    const terms = yield* Ref.make(0)
    const every = Duration.decode(options.reconcileEvery ?? Duration.seconds(1))
    const election = options.election ?? "hybrid/coordinator"

    // Makes the site's document in the pool say what etcd says under site/<site>/.
    const reconcile = (isLeader: Effect.Effect<boolean>) =>
      Effect.gen(function* () {
        const want = new Map((yield* etcd.list(own)).entries.map((e) => [e.key, e.value]))
        // Checked after the read and right before the writes: a coordinator whose lease may have
        // lapsed writes nothing more.
        if (!(yield* isLeader)) return false
        const have = g.entries(doc)
        for (const [k, v] of want) if (have.get(k) !== v) yield* gossip.put(k, v)
        for (const k of have.keys()) if (!want.has(k)) yield* gossip.delete(k)
        return true
      })

    const term = Effect.gen(function* () {
      const leadership = yield* etcd.campaign(election, g.gossip.id)
      yield* Effect.acquireRelease(
        Effect.zipRight(
          Effect.sync(() => g.writeAs({ owner: doc, client: leadership.token })),
          Effect.zipRight(
            Ref.set(coordinating, true),
            Ref.update(terms, (n) => n + 1),
          ),
        ),
        () =>
          Effect.zipRight(
            Ref.set(coordinating, false),
            Effect.sync(() => g.writeAs(undefined)),
          ),
      )
      yield* Effect.logInfo(`hybrid: ${g.gossip.id} coordinates site ${site} (term ${leadership.token})`)
      // Any change on either side, and a timer, wakes the reconciler; one pending wake is enough.
      const wake = yield* Queue.sliding<void>(1)
      const poke = Queue.offer(wake, undefined)
      yield* etcd.watch(own).pipe(
        Stream.runForEach(() => poke),
        Effect.forkScoped,
      )
      yield* gossip.watch(own).pipe(
        Stream.runForEach(() => poke),
        Effect.forkScoped,
      )
      yield* poke.pipe(Effect.schedule(Schedule.spaced(every)), Effect.forever, Effect.forkScoped)
      // A failed round (etcd slow, a value too large for a datagram) is logged and tried again on
      // the next wake; only the end of the leadership ends the term.
      const round = reconcile(leadership.isLeader).pipe(
        Effect.catchAll((e) => Effect.as(Effect.logWarning(`hybrid: re-publishing site ${site}: ${e.message}`), true)),
      )
      const loop = Effect.gen(function* () {
        while (yield* round) yield* Queue.take(wake)
      })
      yield* Effect.raceFirst(loop, leadership.deposed)
      yield* Effect.logWarning(`hybrid: ${g.gossip.id} no longer coordinates site ${site} (term ${leadership.token})`)
    }).pipe(Effect.scoped)

    // Stand again after every term and after every failure (etcd unreachable, lease lost).
    const candidacy = term.pipe(
      Effect.catchAll((e) => Effect.logWarning(`hybrid: coordinator candidacy for site ${site}: ${e.message}`)),
      Effect.zipRight(Effect.sleep(Duration.millis(200))),
      Effect.forever,
    )
    yield* Effect.forkScoped(candidacy)

    const hybrid: HybridApi = {
      site,
      coordinator: Ref.get(coordinating),
      terms: Ref.get(terms),
      sites: g.gossip.members.pipe(
        Effect.map((ms) => {
          const out = new Map<string, string>()
          for (const m of ms)
            if (m.state === "alive" || m.state === "suspect") {
              const s = Option.getOrUndefined(decodeMeta(m.meta))?.site
              if (s !== undefined) out.set(m.id, s)
            }
          return out
        }),
      ),
    }
    return { store, hybrid, gossip: g.gossip }
  })
