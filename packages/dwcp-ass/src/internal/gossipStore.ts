// The gossip store's implementation (GossipStore.layer), also used by hybrid mode, which needs
// two things the public layer does not offer: its own key ownership (sites' keys instead of
// nodes') and switching the writer of the local replica (a site's coordinator writes its site's
// document while it leads).
import { createPrivateKey, X509Certificate } from "node:crypto"
import * as dgram from "node:dgram"
import * as fs from "node:fs"
import { Deferred, Duration, Effect, Metric, Option, PubSub, Runtime, Schema, type Scope, Stream } from "effect"
import type { GossipApi, Options } from "../GossipStore.js"
import { NotLinearizable, NotOwner, StateUnavailable, type WriteError } from "../StateError.js"
import * as StateMetrics from "../StateMetrics.js"
import type { Entry, Lease, StateStoreApi, WatchEvent } from "../StateStore.js"
import { instrument } from "./core.js"
import type { Change } from "./crdt.js"
import type { GossipNode, Message } from "./gossip.js"
import { NotOwner as CrdtNotOwner, ownerOf } from "./owner.js"
import * as Swim from "./swim.js"
import * as Wire from "./wire.js"

const unavailable = (message: string) => new StateUnavailable({ operation: "gossip", key: "", message })

/** Splits `host:port` and `[v6]:port`. */
export const parseAddress = (text: string): { readonly host: string; readonly port: number } | undefined => {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text)
  if (m === null) return undefined
  const port = Number(m[2])
  return port >= 0 && port <= 65535 ? { host: m[1]!, port } : undefined
}

const loadIdentity = (o: Options) =>
  Effect.try({
    try: () => {
      const read = (file: string, what: string) => {
        try {
          return fs.readFileSync(file)
        } catch (e) {
          throw new Error(`${what} ${file}: ${(e as Error).message}`)
        }
      }
      const ca = new X509Certificate(read(o.caFile, "CA certificate"))
      const cert = new X509Certificate(read(o.certFile, "node certificate"))
      const key = createPrivateKey(read(o.keyFile, "node key"))
      if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey))
        throw new Error(`node certificate ${o.certFile} is not issued by the CA in ${o.caFile}`)
      if (!cert.checkPrivateKey(key)) throw new Error(`${o.keyFile} is not the key of ${o.certFile}`)
      const id = Wire.commonName(cert)
      if (id === undefined || id === "") throw new Error(`node certificate ${o.certFile} has no common name (node id)`)
      return { identity: { id, cert: cert.raw, key } satisfies Wire.Identity, ca }
    },
    catch: (e) => unavailable(`gossip identity: ${(e as Error).message}`),
  })

interface Meta {
  c: number
  m: number
  n: number
}

/** What a member announces in its SWIM metadata: its run (lease holder identity) and site. */
const MemberMeta = Schema.parseJson(Schema.Struct({ run: Schema.Number, site: Schema.optional(Schema.String) }))
const decodeMeta = Schema.decodeUnknownOption(MemberMeta)

export interface Hooks {
  /** Who owns a key (default: its second segment, a node id; see owner.ts). */
  readonly owner?: ((key: string) => string | undefined) | undefined
}

export interface Made {
  readonly store: StateStoreApi
  readonly gossip: GossipApi
  /**
   * From now on this replica writes `owner`'s document (hybrid mode: a site's coordinator writes
   * `site/<site>`) with Yjs client id `client`; `undefined` gives the writing back to the node.
   */
  readonly writeAs: (writer: { readonly owner: string; readonly client: number } | undefined) => void
  /** Live entries of one owner's document, in this replica (tombstones skipped). */
  readonly entries: (owner: string) => ReadonlyMap<string, string>
}

export const make = (options: Options, hooks: Hooks = {}): Effect.Effect<Made, StateUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const owner = hooks.owner ?? ownerOf
    const runtime = yield* Effect.runtime<never>()
    const runSync = Runtime.runSync(runtime)
    const { identity, ca } = yield* loadIdentity(options)
    const bind = parseAddress(options.bind)
    if (bind === undefined) return yield* unavailable(`gossip bind "${options.bind}": expected host:port`)
    const seeds = options.seeds ?? []
    for (const s of seeds)
      if (parseAddress(s) === undefined) return yield* unavailable(`gossip seed "${s}": expected host:port`)
    const socket = yield* Effect.acquireRelease(
      Effect.async<dgram.Socket, StateUnavailable>((resume) => {
        const s = dgram.createSocket({ type: bind.host.includes(":") ? "udp6" : "udp4" })
        s.once("error", (e) => resume(Effect.fail(unavailable(`gossip bind ${options.bind}: ${e.message}`))))
        s.bind(bind.port, bind.host, () => {
          s.removeAllListeners("error")
          resume(Effect.succeed(s))
        })
      }),
      (s) => Effect.sync(() => s.close()),
    )
    const port = socket.address().port
    const wildcard = bind.host === "0.0.0.0" || bind.host === "::"
    if (options.advertise === undefined && wildcard)
      return yield* unavailable(`gossip bind ${options.bind} is a wildcard: set the advertise address`)
    const addr = options.advertise ?? (bind.host.includes(":") ? `[${bind.host}]:${port}` : `${bind.host}:${port}`)

    const opener = new Wire.Opener({ ca, maxSkewMs: options.maxSkewMs ?? 60_000 })
    const lastLogged = new Map<string, number>()
    const warn = (line: string) => runSync(Effect.logWarning(line))
    const send = (to: string, msg: Message) => {
      const a = parseAddress(to)
      if (a === undefined) return
      let datagram: Buffer
      try {
        datagram = Wire.seal(identity, msg, Date.now())
      } catch (e) {
        warn(`gossip: not sent to ${to}: ${(e as Error).message}`)
        return
      }
      socket.send(datagram, a.port, a.host)
    }

    // Local revisions: each change this replica shows (its own or a peer's) gets the next. A value
    // bound to a run (written under a lease) shows only while that run of its writer is a member.
    let revision = 0
    const run = Date.now()
    const shown = new Map<string, Meta>()
    const runs = new Map<string, number>()
    const historyMax = options.history ?? 10_000
    const history: Array<{ revision: number; event: WatchEvent }> = []
    let compacted = 0
    const pubsub = yield* Effect.acquireRelease(
      PubSub.unbounded<{ revision: number; event: WatchEvent }>(),
      PubSub.shutdown,
    )
    const entryOf = (key: string, value: string, m: Meta): Entry => ({
      key,
      value,
      createRevision: m.c,
      modRevision: m.m,
      version: m.n,
      lease: undefined,
    })
    const publish = (event: WatchEvent) => {
      const logged = { revision, event }
      history.push(logged)
      if (history.length > historyMax) compacted = history.splice(0, history.length - historyMax).at(-1)!.revision
      runSync(PubSub.publish(pubsub, logged))
    }
    const visible = (o: string, r: number | undefined) =>
      r === undefined || (o === identity.id ? r === run : runs.get(o) === r)
    // Assigned just below; nothing calls refresh before (no saved state is loaded).
    let node: GossipNode | undefined
    const refresh = (key: string, changed: boolean) => {
      const r = node?.replica.read(key)
      const prev = shown.get(key)
      if (r !== undefined && visible(owner(key) ?? "", r.run)) {
        if (prev !== undefined && !changed) return
        revision++
        const m = { c: prev?.c ?? revision, m: revision, n: (prev?.n ?? 0) + 1 }
        shown.set(key, m)
        publish({ _tag: "Put", entry: entryOf(key, r.value, m) })
      } else if (prev !== undefined) {
        revision++
        shown.delete(key)
        publish({ _tag: "Delete", key, revision })
      }
    }
    const onChange = (changes: ReadonlyArray<Change>) => {
      for (const c of changes) refresh(c.key, true)
    }
    const states = ["alive", "suspect", "dead", "left"] as const
    const memberGauges = new Map(states.map((st) => [st, Metric.tagged(StateMetrics.gossipMembers, "state", st)]))
    const refusedDatagram = Metric.tagged(StateMetrics.gossipRefused, "what", "datagram")
    const refusedUpdate = Metric.tagged(StateMetrics.gossipRefused, "what", "update")
    let refusedSeen = 0
    const countMembers = () => {
      const n = { alive: 0, suspect: 0, dead: 0, left: 0 }
      for (const m of node?.swim.list() ?? []) n[m.state]++
      for (const st of states) runSync(Metric.set(memberGauges.get(st)!, n[st]))
      const r = node?.refused ?? 0
      if (r > refusedSeen) runSync(Metric.incrementBy(refusedUpdate, r - refusedSeen))
      refusedSeen = r
    }
    const onMember = (m: Swim.Member) => {
      countMembers()
      if (m.id === identity.id) return
      const live = m.state === "alive" || m.state === "suspect"
      const r = live ? Option.getOrUndefined(decodeMeta(m.meta))?.run : undefined
      if (runs.get(m.id) === r) return
      if (r === undefined) runs.delete(m.id)
      else runs.set(m.id, r)
      for (const [, key, , bound] of node?.replica.entries(m.id) ?? []) if (bound !== undefined) refresh(key, false)
    }

    // Loaded here, not at import: Yjs costs start-up time on nodes in raft or local mode.
    const { GossipNode } = yield* Effect.promise(() => import("./gossip.js"))
    node = new GossipNode({
      id: identity.id,
      owner,
      addr,
      meta: JSON.stringify(options.site === undefined ? { run } : { run, site: options.site }),
      profile: options.profile === "wan" ? Swim.WAN : Swim.LAN,
      // A Yjs client id larger than any earlier run's of this node (see internal/crdt.ts).
      incarnation: run,
      now: Date.now(),
      random: Math.random,
      send,
      log: (line) => {
        warn(line)
        countMembers()
      },
      onChange,
      onMember,
    })
    const agent = node
    countMembers()
    socket.on("message", (buf, rinfo) => {
      const from = rinfo.family === "IPv6" ? `[${rinfo.address}]:${rinfo.port}` : `${rinfo.address}:${rinfo.port}`
      const now = Date.now()
      const r = opener.open(buf, now)
      if (r._tag === "Refused") {
        runSync(Metric.increment(refusedDatagram))
        // At most one line per source per 10 s: a flood must not flood the log too.
        if ((lastLogged.get(rinfo.address) ?? 0) + 10_000 <= now) {
          if (lastLogged.size > 1024) lastLogged.clear()
          lastLogged.set(rinfo.address, now)
          warn(`gossip: refused a datagram from ${from}: ${r.reason}`)
        }
        return
      }
      agent.receive(now, from, r.message)
    })
    const timer = yield* Effect.acquireRelease(
      Effect.sync(() => {
        agent.join(seeds)
        return setInterval(() => agent.tick(Date.now()), 10)
      }),
      (t) =>
        Effect.gen(function* () {
          // Say goodbye (a "left" rumor), give it a few gossip rounds, then stop.
          agent.swim.leave()
          yield* Effect.sleep(Swim.LAN.gossipInterval * 2)
          clearInterval(t)
        }),
    )
    void timer

    const notLinearizable = (operation: string, key: string) => new NotLinearizable({ operation, key, mode: "gossip" })
    const owned = <A>(key: string, f: () => A) =>
      Effect.try({
        try: f,
        catch: (e) =>
          e instanceof CrdtNotOwner
            ? new NotOwner({ key, owner: e.owner ?? "", node: identity.id })
            : new StateUnavailable({ operation: "put", key, message: (e as Error).message }),
      })

    const get: StateStoreApi["get"] = (key) =>
      Effect.sync(() => {
        const r = agent.replica.read(key)
        const m = shown.get(key)
        return r === undefined || m === undefined ? Option.none() : Option.some(entryOf(key, r.value, m))
      })
    const snapshot = (prefix: string) => {
      const entries: Array<Entry> = []
      for (const [key, m] of shown)
        if (key.startsWith(prefix)) {
          const r = agent.replica.read(key)
          if (r !== undefined) entries.push(entryOf(key, r.value, m))
        }
      entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      return { entries, revision }
    }

    // Leases are membership: a key written under one shows while this run of the node is a
    // member, goes when SWIM declares it dead or it leaves (not after the TTL), and is deleted
    // when the lease's scope closes.
    const leases = new Map<string, Set<string>>()
    let leaseSeq = 0
    const lease: StateStoreApi["lease"] = (ttl) =>
      Effect.gen(function* () {
        const lost = yield* Deferred.make<void>()
        const id = `${identity.id}/${run}/${++leaseSeq}`
        yield* Effect.acquireRelease(
          Effect.sync(() => leases.set(id, new Set())),
          () =>
            Effect.sync(() => {
              for (const key of leases.get(id) ?? [])
                if (agent.replica.read(key)?.run === run) {
                  try {
                    agent.remove(key)
                  } catch {}
                }
              leases.delete(id)
            }).pipe(Effect.zipRight(Deferred.succeed(lost, undefined))),
        )
        return {
          id,
          ttl: Duration.decode(ttl),
          valid: Effect.sync(() => leases.has(id)),
          lost: Deferred.await(lost),
        } satisfies Lease
      })

    const store: StateStoreApi = {
      mode: "gossip",
      get: (key) => instrument("get")(get(key)),
      list: (prefix) => instrument("list")(Effect.sync(() => snapshot(prefix))),
      put: (key, value, opts) =>
        instrument("put")(
          opts?.fence !== undefined
            ? Effect.fail<WriteError>(notLinearizable("put with a fence", key))
            : opts?.lease !== undefined && !leases.has(opts.lease.id)
              ? Effect.fail<WriteError>(
                  new StateUnavailable({ operation: "put", key, message: `lease ${opts.lease.id} is not held` }),
                )
              : owned(key, () => {
                  agent.put(key, value, opts?.lease === undefined ? undefined : run)
                  if (opts?.lease !== undefined) leases.get(opts.lease.id)!.add(key)
                  return revision
                }),
        ),
      delete: (key, opts) =>
        instrument("delete")(
          opts?.fence !== undefined
            ? Effect.fail<WriteError>(notLinearizable("delete with a fence", key))
            : owned(key, () => agent.remove(key)),
        ),
      compareAndSet: (key) => instrument("compare_and_set")(Effect.fail(notLinearizable("compareAndSet", key))),
      lease,
      campaign: (election) => instrument("campaign")(Effect.fail(notLinearizable("campaign", election))),
      leader: (election) => instrument("leader")(Effect.fail(notLinearizable("leader", election))),
      watch: (prefix, from) =>
        Stream.unwrapScoped(
          Effect.gen(function* () {
            const sub = yield* PubSub.subscribe(pubsub)
            const start = from ?? revision
            const at = revision
            const head: Array<WatchEvent> =
              start < compacted
                ? [{ _tag: "Reset", snapshot: snapshot(prefix) }]
                : history.filter((l) => l.revision > start && keyOf(l.event).startsWith(prefix)).map((l) => l.event)
            return Stream.concat(
              Stream.fromIterable(head),
              Stream.fromQueue(sub).pipe(
                Stream.filter((l) => l.revision > at && keyOf(l.event).startsWith(prefix)),
                Stream.map((l) => l.event),
              ),
            )
          }),
        ),
    }
    const gossip: GossipApi = {
      id: identity.id,
      addr,
      members: Effect.sync(() =>
        agent.swim
          .list()
          .map((m) => ({ id: m.id, addr: m.addr, state: m.state, incarnation: m.incarnation, meta: m.meta })),
      ),
      refused: Effect.sync(() => agent.refused),
    }
    return {
      store,
      gossip,
      writeAs: (w) => agent.replica.writeAs(w),
      entries: (owner) => {
        const out = new Map<string, string>()
        for (const [, key, value] of agent.replica.entries(owner)) out.set(key, value)
        return out
      },
    }
  })

const keyOf = (e: WatchEvent): string => (e._tag === "Put" ? e.entry.key : e._tag === "Delete" ? e.key : "")
