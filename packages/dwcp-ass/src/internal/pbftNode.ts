// One PBFT member: its replica (the engine driven by the peer links and a clock), the client that
// turns state API calls into signed requests accepted on f+1 matching replies, state transfer,
// and the watch log of what the local replica executed. Replicas, clients and the state machine
// are synchronous; the only asynchrony is the sockets and the client's wait for replies.
import { createHash, sign as cryptoSign, verify as cryptoVerify, type KeyObject, X509Certificate } from "node:crypto"
import { Deferred, Duration, Effect, Exit, Option, Queue, Runtime, type Scope, Stream } from "effect"
import { ReplyCollector } from "../Pbft.js"
import { StateTimeout, StateUnavailable } from "../StateError.js"
import type { Entry, Snapshot, WatchEvent } from "../StateStore.js"
import type { Backend, TxnResult } from "./core.js"
import { type Body, KvMachine, type Logged, type Result } from "./pbftKv.js"
import * as Link from "./pbftLink.js"
import { bytesOf, type Message, type NewView, type Reply, type Request, type Signed } from "./pbftMessages.js"
import {
  type CheckpointState,
  type CommitCertificate,
  type Output,
  Replica,
  type Signer,
  type Verifier,
} from "./pbftReplica.js"
import type { Frame } from "./pbftWire.js"

export interface Member {
  readonly id: string
  readonly host: string
  readonly port: number
}

/** Test hook: what this member sends to `to` instead of `message` (drop, alter, duplicate). */
export type Tamper = (
  to: string,
  message: Signed,
  sign: <M extends Message>(message: M) => Signed<M>,
) => ReadonlyArray<Signed>

export interface NodeOptions {
  readonly self: string
  readonly members: ReadonlyArray<Member>
  readonly bind: { readonly host: string; readonly port: number }
  readonly ca: Buffer
  readonly cert: Buffer
  readonly key: KeyObject
  readonly keyPem: Buffer
  readonly callTimeout: Duration.Duration
  readonly defaultLeaseTtl: Duration.Duration
  readonly viewChangeTimeout: number
  readonly checkpointInterval: number
  readonly history: number
  readonly clients: number
  readonly maxFrame: number
  readonly tamper?: Tamper | undefined
  readonly tamperState?: ((to: string, state: CheckpointState) => CheckpointState | undefined) | undefined
  readonly cut?: ((peer: string) => boolean) | undefined
}

export interface NodeInfo {
  readonly id: string
  readonly index: number
  readonly n: number
  readonly f: number
  /** the port the peer link listens on */
  readonly port: number
  /** the replica's current view, last executed sequence number and stable checkpoint */
  readonly status: () => {
    readonly view: number
    readonly active: boolean
    readonly lastExecuted: number
    readonly stable: number
    readonly transfers: number
    readonly refused: number
  }
  /** ms timestamps at which this replica installed each view (for view-change timing) */
  readonly views: ReadonlyArray<{ readonly view: number; readonly at: number }>
}

const algorithm = (key: KeyObject) =>
  key.asymmetricKeyType === "ed25519" || key.asymmetricKeyType === "ed448" ? null : "sha256"

const sha = (text: string) => createHash("sha256").update(text).digest("hex")

export const make = (
  o: NodeOptions,
): Effect.Effect<{ backend: Backend; info: NodeInfo }, StateUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const rt = yield* Effect.runtime<never>()
    const log = (message: string) => Runtime.runFork(rt)(Effect.logWarning(message))
    const ids = o.members.map((m) => m.id)
    const index = ids.indexOf(o.self)
    const n = ids.length
    const f = Math.floor((n - 1) / 3)
    const keys = new Map<string, KeyObject>([[o.self, new X509Certificate(o.cert).publicKey]])
    let refused = 0
    // Counted per member, so one flooding member cannot hide what another sends: its first 20
    // refusals are logged, then every 100th.
    const refusedFrom = new Map<string, number>()
    const refuse = (from: string | undefined, why: string) => {
      refused++
      const count = (refusedFrom.get(from ?? "") ?? 0) + 1
      refusedFrom.set(from ?? "", count)
      const who = from === undefined ? "" : ` from ${from}`
      if (count <= 20) log(`pbft: refused${who}: ${why}`)
      else if (count % 100 === 0) log(`pbft: refused${who}: ${why} (${count} refused${who} so far)`)
    }

    // A replica signs as its index, a client as "<node id>#<slot>"; both with the node's key.
    const principal = (from: string): string | undefined => {
      const hash = from.indexOf("#")
      if (hash > 0) return from.slice(0, hash)
      const i = Number(from)
      return Number.isInteger(i) && i >= 0 && i < n && String(i) === from ? ids[i] : undefined
    }
    const signer: Signer = { sign: (bytes) => new Uint8Array(cryptoSign(algorithm(o.key), bytes, o.key)) }
    // One message is verified several times (a request when it arrives, inside its pre-prepare,
    // forwarded by each backup; retransmissions): remember the good ones, by signer, bytes and
    // signature, so a valid signature over other bytes never hits.
    const verified = new Set<string>()
    const verifier: Verifier = {
      verify: (from, bytes, signature) => {
        const who = principal(from)
        const key = who === undefined ? undefined : keys.get(who)
        if (key === undefined) return false
        const id = `${from}\n${createHash("sha256").update(bytes).update(signature).digest("base64")}`
        if (verified.has(id)) return true
        if (!cryptoVerify(algorithm(key), bytes, key, signature)) return false
        if (verified.size >= 8192) verified.clear()
        verified.add(id)
        return true
      },
    }
    const signAs = <M extends Message>(message: M): Signed<M> => ({
      from: String(index),
      message,
      signature: signer.sign(bytesOf(message)),
    })

    // --- the state machine and the watch log ------------------------------------------------
    const kv = new KvMachine()
    const history: Array<Logged> = []
    let compacted = 0
    const watchers = new Set<Queue.Queue<Logged | "reset">>()
    const publish = () => {
      const events = kv.drain()
      if (events.length === 0) return
      for (const e of events) history.push(e)
      if (history.length > o.history) {
        const dropped = history.splice(0, history.length - o.history)
        compacted = dropped[dropped.length - 1]!.revision
      }
      for (const q of watchers) for (const e of events) Queue.unsafeOffer(q, e)
    }

    const replica = new Replica({
      id: index,
      n,
      signer,
      verifier,
      apply: (op) => kv.apply(op),
      snapshot: () => kv.save(),
      restore: (text) => {
        kv.load(text)
        // The changes in between are not known here: watchers start over from a snapshot.
        history.length = 0
        compacted = kv.revision
        for (const q of watchers) Queue.unsafeOffer(q, "reset")
      },
      checkpointInterval: o.checkpointInterval,
      viewChangeTimeout: o.viewChangeTimeout,
    })
    const views: Array<{ view: number; at: number }> = []
    let transfers = 0

    // --- the client's side: requests in flight by client id --------------------------------
    const inFlight = new Map<
      string,
      { readonly timestamp: number; readonly collector: ReplyCollector; readonly done: Deferred.Deferred<string> }
    >()
    const onReply = (m: Signed<Reply>) => {
      const r = inFlight.get(m.message.client)
      if (r === undefined) return
      const result = r.collector.add(m)
      if (result !== undefined) Deferred.unsafeDone(r.done, Exit.succeed(result))
    }

    let link: Link.Link | undefined
    const sendTo = (to: string, frame: Frame) => {
      if (to === o.self || link === undefined) return
      if (o.tamperState !== undefined && frame.t === "s") {
        const state = o.tamperState(to, frame.state)
        if (state !== undefined) link.send(to, { t: "s", state })
        return
      }
      if (o.tamper !== undefined && (frame.t === "m" || frame.t === "r")) {
        // a tampered reply frame with another message in it is refused by the receiver (logged)
        for (const m of o.tamper(to, frame.m, signAs)) link.send(to, { t: frame.t, m } as Frame)
        return
      }
      link.send(to, frame)
    }
    const broadcast = (frame: Frame) => {
      for (const id of ids) sendTo(id, frame)
    }

    // --- state transfer ---------------------------------------------------------------------
    let transfer: { seq: number; offers: Map<string, CheckpointState>; timer: NodeJS.Timeout | undefined } | undefined
    const askState = (seq: number) => {
      if (transfer !== undefined) {
        transfer.seq = Math.max(transfer.seq, seq)
        return
      }
      transfer = { seq, offers: new Map(), timer: undefined }
      const ask = () => {
        if (transfer === undefined) return
        broadcast({ t: "sq", seq: transfer.seq })
        transfer.timer = setTimeout(ask, 500)
      }
      ask()
    }
    const onOffer = (from: string, state: CheckpointState) => {
      if (transfer === undefined) return
      if (state.seq < transfer.seq) return
      transfer.offers.set(from, state)
      // f+1 replicas sent the same state: at least one of them is correct.
      const same = [...transfer.offers.values()].filter(
        (s) => s.seq === state.seq && sha(s.snapshot) === sha(state.snapshot),
      )
      if (same.length < f + 1) return
      for (const s of same) {
        const r = replica.installState(s, Date.now())
        if (r.installed) {
          clearTimeout(transfer.timer)
          transfer = undefined
          transfers++
          publish()
          handle(r.outputs)
          return
        }
      }
    }

    // --- views ---------------------------------------------------------------------------------
    // A member that missed a view change (cut off while it happened) hears votes of a later view
    // and asks for the new-view message, which proves itself (2f+1 signed view-changes).
    let newest: Signed<NewView> | undefined
    const keepNewView = (m: Signed) => {
      if (m.message.type === "new-view" && (newest === undefined || m.message.view > newest.message.view))
        newest = m as Signed<NewView>
    }
    let askedAt = 0
    const askNewView = (from: string) => {
      const now = Date.now()
      if (now - askedAt < 250) return
      askedAt = now
      sendTo(from, { t: "nv?" })
    }

    // --- the replica's outputs ----------------------------------------------------------------
    const handle = (outputs: ReadonlyArray<Output>) => {
      for (const out of outputs) {
        switch (out.kind) {
          case "broadcast":
            keepNewView(out.message)
            broadcast({ t: "m", m: out.message })
            break
          case "send":
            sendTo(ids[out.to]!, { t: "m", m: out.message })
            break
          case "reply": {
            const node = principal(out.client)
            if (node === o.self) onReply(out.message)
            else if (node !== undefined) sendTo(node, { t: "r", m: out.message })
            break
          }
          case "view":
            if (out.active) views.push({ view: out.view, at: Date.now() })
            break
          case "needs-state-transfer":
            askState(out.seq)
            break
          case "executed":
            break
        }
      }
      publish()
    }
    /** `from`: the member it came from (none for this member's own requests) */
    const deliver = (m: Signed, from?: string) => {
      let outputs: Array<Output>
      try {
        outputs = replica.receive(m, Date.now())
      } catch (e) {
        refuse(from, `message the replica could not read: ${(e as Error).message}`)
        kv.drain()
        return
      }
      handle(outputs)
    }

    // Frames arrive decoded with their Schemas (pbftWire.ts): only who may send what is checked here.
    const onFrame = (from: string, frame: Frame) => {
      switch (frame.t) {
        case "m": {
          const m = frame.m
          // Requests are relayed (a backup forwards them to the primary) and carry their client's
          // signature, new-views are relayed to a member that missed them and carry their proof;
          // every other message must come from the replica that signed it.
          const relayed = m.message.type === "request" || m.message.type === "new-view"
          if (!relayed && principal(m.from) !== from) return refuse(from, `message signed as ${m.from}`)
          if (m.message.type !== "view-change" && "view" in m.message && m.message.view > replica.view) askNewView(from)
          if (m.message.type === "checkpoint" && m.message.seq > replica.lastExecuted + 6 * o.checkpointInterval)
            askState(m.message.seq)
          deliver(m, from)
          if (m.message.type === "new-view" && replica.active && replica.view === m.message.view) keepNewView(m)
          return
        }
        case "nv?":
          if (newest !== undefined) sendTo(from, { t: "m", m: newest })
          return
        case "cq": {
          const certs: Array<CommitCertificate> = []
          for (let seq = frame.seq; seq < frame.seq + 16; seq++) {
            const c = replica.certificate(seq)
            if (c !== undefined) certs.push(c)
          }
          if (certs.length > 0) sendTo(from, { t: "c", certs })
          return
        }
        case "c":
          for (const cert of frame.certs) {
            try {
              handle(replica.installCertificate(cert, Date.now()))
            } catch (e) {
              refuse(from, `certificate the replica could not read: ${(e as Error).message}`)
            }
          }
          return
        case "r":
          if (frame.m.from !== String(ids.indexOf(from))) return refuse(from, `reply signed as ${frame.m.from}`)
          onReply(frame.m)
          return
        case "sq": {
          const state = replica.stableCheckpoint()
          if (state !== undefined && state.seq >= frame.seq) sendTo(from, { t: "s", state })
          return
        }
        case "s":
          onOffer(from, frame.state)
          return
      }
    }

    link = yield* Link.make({
      self: o.self,
      peers: o.members,
      bind: o.bind,
      ca: o.ca,
      cert: o.cert,
      key: o.keyPem,
      maxFrame: o.maxFrame,
      onFrame,
      onPeerKey: (id, key) => keys.set(id, key),
      onRefused: refuse,
      onDown: (why) => log(`pbft: ${why}`),
      cut: o.cut,
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => transfer?.timer && clearTimeout(transfer.timer)))

    // Keys are learnt in the handshakes. A request relayed inside a pre-prepare before its client's
    // member connected here would be refused (and cost a view change): at start, wait a little for
    // every member, not for ever (a member may be down).
    for (let waited = 0; keys.size < n && waited < Math.max(2_000, o.viewChangeTimeout); waited += 10)
      yield* Effect.sleep(Duration.millis(10))

    // A gap in the log (a later request committed, an earlier one missed) that does not fill by
    // itself: ask the others for the commit certificates, which prove themselves.
    let gapSeen: { seq: number; since: number; asked: number } | undefined
    const checkGap = (now: number) => {
      const gap = replica.gap
      if (gap === undefined) {
        gapSeen = undefined
        return
      }
      if (gapSeen?.seq !== gap) gapSeen = { seq: gap, since: now, asked: 0 }
      if (now - gapSeen.since >= 100 && now - gapSeen.asked >= 300) {
        gapSeen.asked = now
        broadcast({ t: "cq", seq: gap })
      }
    }

    // The engine's timers (view change) run on this clock.
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.zipRight(
          Effect.sleep(Duration.millis(20)),
          Effect.sync(() => {
            const now = Date.now()
            handle(replica.tick(now))
            checkGap(now)
          }),
        ),
      ),
    )

    // --- requests ---------------------------------------------------------------------------
    const slots = yield* Queue.bounded<number>(o.clients)
    yield* Queue.offerAll(
      slots,
      Array.from({ length: o.clients }, (_, i) => i),
    )
    const lastTimestamp = new Array<number>(o.clients).fill(0)

    const request = (operation: string, key: string, op: Body): Effect.Effect<Result, StateTimeout> =>
      Effect.acquireUseRelease(
        Queue.take(slots),
        (slot) =>
          Effect.gen(function* () {
            const client = `${o.self}#${slot}`
            // Strictly increasing per client, also across restarts (the replicas remember the last).
            const timestamp = Math.max(lastTimestamp[slot]! + 1, Date.now() * 1000)
            lastTimestamp[slot] = timestamp
            const message: Request = {
              type: "request",
              client,
              timestamp,
              op: JSON.stringify({ ...op, at: Date.now() }),
            }
            const signed: Signed<Request> = { from: client, message, signature: signer.sign(bytesOf(message)) }
            const done = yield* Deferred.make<string>()
            inFlight.set(client, { timestamp, collector: new ReplyCollector(f, client, timestamp, verifier), done })
            const send = Effect.sync(() => {
              broadcast({ t: "m", m: signed })
              deliver(signed)
            })
            // Sent to every replica (the backups watch the primary), again while no answer came.
            const resend = Effect.forever(Effect.zipRight(send, Effect.sleep(Duration.millis(400))))
            // Interruptible even when called from an acquire (a lease grant): the resend loop and
            // the deadline must be able to stop.
            const result = yield* Deferred.await(done).pipe(
              Effect.raceFirst(Effect.zipRight(resend, Effect.never)),
              Effect.timeoutFail({
                duration: o.callTimeout,
                onTimeout: () =>
                  new StateTimeout({
                    operation,
                    key,
                    message: `pbft: no f+1 matching replies within ${Duration.format(o.callTimeout)} (outcome unknown)`,
                  }),
              }),
              Effect.interruptible,
              Effect.ensuring(Effect.sync(() => inFlight.delete(client))),
            )
            return JSON.parse(result) as Result
          }),
        (slot) => Queue.offer(slots, slot),
      )

    const malformed = (operation: string, key: string, r: Result) =>
      new StateUnavailable({
        operation,
        key,
        message: `pbft: unexpected result ${JSON.stringify(r).slice(0, 200)}`,
      })

    const txn = (operation: string, key: string, r: Result): Effect.Effect<TxnResult, StateUnavailable> => {
      if ("txn" in r) return Effect.succeed(r.txn)
      if ("noLease" in r)
        return Effect.fail(new StateUnavailable({ operation, key, message: `lease ${r.noLease} not found` }))
      return Effect.fail(malformed(operation, key, r))
    }

    // Leases lapse on the machine's clock, which moves only with requests: send one when due.
    let ticking = false
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.gen(function* () {
          yield* Effect.sleep(Duration.millis(50))
          const due = kv.nextExpiry()
          if (ticking || due === undefined || due > Date.now()) return
          ticking = true
          yield* request("tick", "", { o: "tick" }).pipe(
            Effect.ignore,
            Effect.ensuring(Effect.sync(() => (ticking = false))),
          )
        }),
      ),
    )

    const watch = (prefix: string, from: number | undefined): Stream.Stream<WatchEvent, StateUnavailable> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const q = yield* Effect.acquireRelease(Queue.unbounded<Logged | "reset">(), (q) =>
            Effect.zipRight(
              Effect.sync(() => watchers.delete(q)),
              Queue.shutdown(q),
            ),
          )
          watchers.add(q)
          let start = from ?? kv.revision
          const head: Array<WatchEvent> = []
          const matches = (l: Logged) =>
            l.event._tag === "Put"
              ? l.event.entry.key.startsWith(prefix)
              : l.event._tag === "Delete" && l.event.key.startsWith(prefix)
          if (start < compacted) {
            const snap = kv.snapshot(prefix)
            head.push({ _tag: "Reset", snapshot: snap })
            start = snap.revision
          }
          const backlog = history.filter((l) => l.revision > start && matches(l))
          let last = backlog.length > 0 ? backlog[backlog.length - 1]!.revision : start
          for (const l of backlog) head.push(l.event)
          return Stream.concat(
            Stream.fromIterable(head),
            Stream.fromQueue(q).pipe(
              Stream.mapConcat((l): ReadonlyArray<WatchEvent> => {
                if (l === "reset") {
                  const snap = kv.snapshot(prefix)
                  last = snap.revision
                  return [{ _tag: "Reset", snapshot: snap }]
                }
                return l.revision > last && matches(l) ? [l.event] : []
              }),
            ),
          )
        }),
      )

    const backend: Backend = {
      mode: "pbft",
      defaultLeaseTtl: o.defaultLeaseTtl,
      get: (key) =>
        Effect.flatMap(request("get", key, { o: "get", k: key }), (r) =>
          "get" in r
            ? Effect.succeed(Option.fromNullable(r.get as Entry | null))
            : Effect.fail(malformed("get", key, r)),
        ),
      list: (prefix) =>
        Effect.flatMap(request("list", prefix, { o: "list", p: prefix }), (r) =>
          "list" in r ? Effect.succeed<Snapshot>(r.list) : Effect.fail(malformed("list", prefix, r)),
        ),
      put: (key, value, guard) =>
        Effect.flatMap(request("put", key, { o: "put", k: key, v: value, g: guard }), (r) => txn("put", key, r)),
      delete: (key, guard) =>
        Effect.flatMap(request("delete", key, { o: "del", k: key, g: guard }), (r) => txn("delete", key, r)),
      watch,
      leaseGrant: (ttl) =>
        Effect.flatMap(request("lease", "", { o: "grant", ttl: Duration.toMillis(ttl) }), (r) =>
          "lease" in r
            ? Effect.succeed({ id: r.lease, ttl: Duration.millis(r.ttl) })
            : Effect.fail(malformed("lease", "", r)),
        ),
      leaseKeepAlive: (id) =>
        Effect.flatMap(request("keepalive", id, { o: "keep", id }), (r) =>
          "ttl" in r && !("lease" in r)
            ? Effect.succeed(Duration.millis(r.ttl))
            : Effect.fail(malformed("keepalive", id, r)),
        ),
      leaseRevoke: (id) => Effect.asVoid(request("revoke", id, { o: "revoke", id })),
    }

    const info: NodeInfo = {
      id: o.self,
      index,
      n,
      f,
      port: link.port,
      status: () => ({
        view: replica.view,
        active: replica.active,
        lastExecuted: replica.lastExecuted,
        stable: replica.stable,
        transfers,
        refused: refused + [...replica.rejected.values()].reduce((a, b) => a + b, 0),
      }),
      views,
    }
    return { backend, info }
  })
