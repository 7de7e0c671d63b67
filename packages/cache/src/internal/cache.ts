import { randomUUID } from "node:crypto"
import { RedisConnection } from "@novacron/redis"
import { Deferred, Duration, Effect, Exit, Option, Ref, type Scope, SubscriptionRef } from "effect"
import type { Redis } from "ioredis"
import { LRUCache } from "lru-cache"
import type { CacheService, Options, Stats, Status } from "../Cache.js"
import { RedisUnavailable } from "../CacheError.js"
import type { CacheSettings } from "../CacheSettings.js"

interface Entry {
  readonly value: string
  /** Version of the shared entry this copy was taken from; null while written without Redis. */
  readonly version: string | null
}

/** The command connection with the scripts registered (EVALSHA, falling back to EVAL once per server). */
type Scripted = Redis & {
  cacheRead(key: string, version: string): Promise<null | [string, string?, number?]>
  cacheWrite(
    key: string,
    seq: string,
    epoch: string,
    value: string,
    ttl: string,
    epochCandidate: string,
    channel: string,
    name: string,
    origin: string,
  ): Promise<string>
  cacheInvalidate(key: string, channel: string, name: string, origin: string): Promise<number>
}

interface Link {
  readonly cmd: Scripted
  readonly sub: Redis
  /** Completed when either connection drops or a command fails. */
  readonly lost: Deferred.Deferred<void>
}

// Reads the shared entry, returning only its version when the caller's copy is current,
// so a validated local hit costs one round trip and no payload.
const READ = `local v = redis.call('HGET', KEYS[1], 'v')
if not v then return false end
if v == ARGV[1] then return {v} end
return {v, redis.call('HGET', KEYS[1], 'd'), redis.call('PTTL', KEYS[1])}`

// Versions are <epoch>:<counter>: never reused, even if the counter is lost with a flushed server.
const WRITE = `local e = redis.call('GET', KEYS[3])
if not e then e = ARGV[3]; redis.call('SET', KEYS[3], e) end
local v = e .. ':' .. redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'v', v, 'd', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[4], cjson.encode({k = ARGV[5], v = v, o = ARGV[6]}))
return v`

const INVALIDATE = `redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], cjson.encode({k = ARGV[2], v = '', o = ARGV[3]}))
return 1`

// Reconnection is the link supervisor's (on the shared schedule), so each drop surfaces at once as
// "end"; commands fail fast rather than queue while the link is down.
const linkOptions: RedisConnection.Options = {
  reconnect: "caller",
  offlineQueue: false,
  maxRetriesPerRequest: 0,
  connectTimeout: "2 seconds",
  commandTimeout: "2 seconds",
}

const connectOnce = (url: string, channel: string, onMessage: (msg: string) => void) =>
  Effect.gen(function* () {
    const lost = yield* Deferred.make<void>()
    const cmd = (yield* RedisConnection.open(url, linkOptions)) as Scripted
    const sub = yield* RedisConnection.open(url, linkOptions).pipe(Effect.tapError(() => RedisConnection.close(cmd)))
    cmd.defineCommand("cacheRead", { numberOfKeys: 1, lua: READ })
    cmd.defineCommand("cacheWrite", { numberOfKeys: 3, lua: WRITE })
    cmd.defineCommand("cacheInvalidate", { numberOfKeys: 1, lua: INVALIDATE })
    const dropped = () => Deferred.unsafeDone(lost, Exit.void)
    for (const c of [cmd, sub]) {
      c.on("end", dropped)
      // A drop between connecting and listening would otherwise go unseen.
      if (c.status === "end") dropped()
    }
    sub.on("message", (_channel: string, msg: string) => onMessage(msg))
    const link: Link = { cmd, sub, lost }
    return yield* Effect.tryPromise({
      try: () => sub.subscribe(channel).then(() => link),
      catch: (cause) => new RedisUnavailable({ url, cause }),
    }).pipe(Effect.tapError(() => dispose(link)))
  })

const dispose = (link: Link) =>
  Effect.sync(() => {
    link.cmd.disconnect()
    link.sub.disconnect()
  })

export const make = (
  settings: CacheSettings,
  options: Options,
  start: "strict" | "degraded",
): Effect.Effect<CacheService, RedisUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const clock = yield* Effect.clock
    const ns = options.namespace ?? "novacron:cache:"
    const channel = `${ns}invalidate`
    const origin = randomUUID()
    const ttlMs = Math.max(1, Duration.toMillis(settings.cache_ttl))
    const url = settings.cache_redis_url
    // TTL on the Effect clock, so TestClock drives expiry in tests.
    const local = new LRUCache<string, Entry>({
      max: settings.cache_max_entries,
      ttl: ttlMs,
      ttlResolution: 0,
      // +1: lru-cache treats a start time of 0 (TestClock's epoch) as "no TTL".
      perf: { now: () => clock.unsafeCurrentTimeMillis() + 1 },
    })
    const counters = {
      localHits: 0,
      sharedHits: 0,
      misses: 0,
      remoteInvalidations: 0,
      recoveries: 0,
      degradedSince: undefined as number | undefined,
    }
    const statusRef = yield* SubscriptionRef.make<Status>(url === "" ? "memory-only" : "degraded")
    const current = yield* Ref.make<Link | undefined>(undefined)

    const onMessage = (msg: string) => {
      try {
        const { k, v, o } = JSON.parse(msg) as { k: string; v: string; o: string }
        if (o === origin) return
        const held = local.peek(k)
        if (held !== undefined && held.version !== v) {
          local.delete(k)
          counters.remoteInvalidations++
        }
      } catch {
        // not one of ours
      }
    }

    const setStatus = (status: Status) => SubscriptionRef.set(statusRef, status)

    const up = (link: Link, recovered: boolean) =>
      Effect.gen(function* () {
        // Entries kept while degraded may have missed other nodes' writes.
        if (recovered) local.clear()
        yield* Ref.set(current, link)
        counters.degradedSince = undefined
        if (recovered) counters.recoveries++
        yield* setStatus("connected")
        if (recovered) yield* Effect.logInfo("cache: redis reachable again; shared level restored")
      })

    const down = Effect.gen(function* () {
      const link = yield* Ref.getAndSet(current, undefined)
      if (link !== undefined) yield* dispose(link)
      counters.degradedSince ??= clock.unsafeCurrentTimeMillis()
      yield* setStatus("degraded")
    })

    const reconnect = RedisConnection.reconnect({ base: options.reconnectBase, max: options.reconnectMax })

    /** Watches the link: on loss goes degraded, reconnects with backoff, restores. */
    const supervise = (initial: Link | undefined): Effect.Effect<never> =>
      Effect.gen(function* () {
        let link = initial
        while (true) {
          if (link === undefined) {
            link = yield* connectOnce(url, channel, onMessage).pipe(Effect.retry(reconnect), Effect.orDie)
            yield* up(link, true)
          }
          yield* Deferred.await(link.lost)
          yield* Effect.logWarning("cache: redis link lost; serving the in-memory level while reconnecting")
          yield* down
          link = undefined
        }
      })

    if (url !== "") {
      if (start === "strict") {
        const link = yield* connectOnce(url, channel, onMessage)
        yield* up(link, false)
        yield* Effect.forkScoped(supervise(link))
      } else {
        counters.degradedSince = clock.unsafeCurrentTimeMillis()
        yield* Effect.logWarning("cache: starting without redis, degraded; reconnecting in the background")
        yield* Effect.forkScoped(supervise(undefined))
      }
      yield* Effect.addFinalizer(() => Ref.get(current).pipe(Effect.flatMap((l) => (l ? dispose(l) : Effect.void))))
    }

    /** Runs a shared-level command; a failure marks the link lost and yields None. */
    const shared = <A>(f: (link: Link) => Promise<A>): Effect.Effect<Option.Option<A>> =>
      Effect.flatMap(Ref.get(current), (link) =>
        link === undefined
          ? Effect.succeedNone
          : Effect.tryPromise(() => f(link)).pipe(
              Effect.map(Option.some),
              Effect.catchAll(() => Effect.as(Deferred.succeed(link.lost, undefined), Option.none<A>())),
            ),
      )

    const key = (k: string) => `${ns}e:${k}`

    const localGet = (k: string): Option.Option<string> => {
      const e = local.get(k)
      if (e === undefined) {
        counters.misses++
        return Option.none()
      }
      counters.localHits++
      return Option.some(e.value)
    }

    const getShared = (k: string): Effect.Effect<Option.Option<string>> =>
      Effect.gen(function* () {
        const held = local.get(k)
        const reply = yield* shared((l) => l.cmd.cacheRead(key(k), held?.version ?? ""))
        if (Option.isNone(reply)) return localGet(k)
        const r = reply.value
        if (r === null) {
          local.delete(k)
          counters.misses++
          return Option.none()
        }
        if (r.length === 1 && held !== undefined) {
          counters.localHits++
          return Option.some(held.value)
        }
        const [version, value, pttl] = r as [string, string, number]
        local.set(k, { value, version }, { ttl: pttl > 0 ? Math.min(pttl, ttlMs) : ttlMs })
        counters.sharedHits++
        return Option.some(value)
      })

    // Without a link (memory-only or degraded) a get is a plain local lookup.
    const get = (k: string): Effect.Effect<Option.Option<string>> =>
      Effect.flatMap(Ref.get(current), (link) => (link === undefined ? Effect.sync(() => localGet(k)) : getShared(k)))

    const set = (k: string, value: string, ttl?: Duration.DurationInput): Effect.Effect<void> =>
      Effect.gen(function* () {
        const ms = ttl === undefined ? ttlMs : Math.max(1, Duration.toMillis(ttl))
        const version = yield* shared((l) =>
          l.cmd.cacheWrite(key(k), `${ns}seq`, `${ns}epoch`, value, String(ms), randomUUID(), channel, k, origin),
        )
        local.set(k, { value, version: Option.getOrNull(version) }, { ttl: ms })
      })

    const invalidate = (k: string): Effect.Effect<void> =>
      Effect.gen(function* () {
        local.delete(k)
        yield* shared((l) => l.cmd.cacheInvalidate(key(k), channel, k, origin))
      })

    const service: CacheService = {
      get,
      set,
      invalidate,
      getOrSet: (k, compute) =>
        Effect.flatMap(get(k), (hit) =>
          Option.match(hit, {
            onSome: Effect.succeed,
            onNone: () => Effect.tap(compute, (v) => set(k, v)),
          }),
        ),
      status: SubscriptionRef.get(statusRef),
      statusRef,
      stats: Effect.map(
        SubscriptionRef.get(statusRef),
        (status): Stats => ({ status, localEntries: local.size, ...counters }),
      ),
      peekLocal: (k) => Option.map(Option.fromNullable(local.peek(k)), (e) => e.value),
    }
    return service
  })
