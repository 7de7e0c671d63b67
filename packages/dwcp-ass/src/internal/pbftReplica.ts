// One PBFT replica (Castro & Liskov, OSDI'99 / TOCS'02) as a deterministic state machine: it
// takes signed messages and the current time, and returns what to send. No I/O, no clock, no
// randomness: the caller owns the network and the timers, so tests can replay any schedule.
import {
  bytesOf,
  type Checkpoint,
  type Commit,
  chain,
  digestOf,
  type Message,
  type NewView,
  NULL_DIGEST,
  type PrePrepare,
  type Prepare,
  type PreparedProof,
  type Reply,
  type Request,
  type Signed,
  type ViewChange,
} from "./pbftMessages.js"

export interface Signer {
  readonly sign: (bytes: Uint8Array) => Uint8Array
}

export interface Verifier {
  /** whether `signature` over `bytes` is `from`'s (a replica index as a string, or a client id) */
  readonly verify: (from: string, bytes: Uint8Array, signature: Uint8Array) => boolean
}

export interface ReplicaConfig {
  readonly id: number
  /** replicas, at least 4: they tolerate f = ⌊(n - 1) / 3⌋ Byzantine ones */
  readonly n: number
  readonly signer: Signer
  readonly verifier: Verifier
  /** the replicated state machine: deterministic */
  readonly apply: (op: string) => string
  /** checkpoint every K executed sequence numbers (default 16) */
  readonly checkpointInterval?: number
  /** sequence numbers accepted above the stable checkpoint (default 2K) */
  readonly window?: number
  /** first view-change timeout in ms; doubles on each consecutive view change (default 1000) */
  readonly viewChangeTimeout?: number
  /** the state machine's state as canonical text, taken at each checkpoint (for state transfer) */
  readonly snapshot?: () => string
  /** replaces the state machine's state with a {@link ReplicaConfig.snapshot} text (state transfer) */
  readonly restore?: (text: string) => void
}

/** Proof that a request committed at a sequence number: its pre-prepare and 2f+1 matching commits. */
export interface CommitCertificate {
  readonly prePrepare: Signed<PrePrepare>
  readonly commits: ReadonlyArray<Signed<Commit>>
}

/** A stable checkpoint with its proof and the state it names: what state transfer sends. */
export interface CheckpointState {
  readonly seq: number
  readonly proof: ReadonlyArray<Signed<Checkpoint>>
  /** the state machine's snapshot and the client table, as text */
  readonly snapshot: string
}

export type Output =
  | { readonly kind: "broadcast"; readonly message: Signed }
  | { readonly kind: "send"; readonly to: number; readonly message: Signed }
  | { readonly kind: "reply"; readonly client: string; readonly message: Signed<Reply> }
  | {
      readonly kind: "executed"
      readonly seq: number
      readonly digest: string
      readonly request: Request | null
      readonly result: string | null
    }
  | { readonly kind: "view"; readonly view: number; readonly active: boolean }
  | { readonly kind: "needs-state-transfer"; readonly seq: number }

export type Rejection = "signature" | "sender" | "view" | "watermark" | "conflict" | "proof" | "malformed"

interface Slot {
  prePrepare: Signed<PrePrepare> | undefined
  readonly prepares: Map<number, Signed<Prepare>>
  readonly commits: Map<number, Signed<Commit>>
  sentCommit: boolean
  committed: boolean
}

export class Replica {
  readonly id: number
  readonly n: number
  readonly f: number
  /** votes that make a quorum: ⌈(n + f + 1) / 2⌉, 2f+1 when n = 3f+1 */
  readonly q: number
  private readonly K: number
  private readonly L: number
  private readonly baseTimeout: number
  private readonly signer: Signer
  private readonly verifier: Verifier
  private readonly apply: (op: string) => string
  private readonly snapshotApp: (() => string) | undefined
  private readonly restoreApp: ((text: string) => void) | undefined

  view = 0
  /** false between sending a view-change and installing the new view */
  active = true
  stable = 0
  lastExecuted = 0
  state = "genesis"
  readonly rejected = new Map<Rejection, number>()

  private stableProof: ReadonlyArray<Signed<Checkpoint>> = []
  private nextSeq = 0
  private readonly slots = new Map<string, Slot>()
  private readonly committed = new Map<number, Signed<PrePrepare>>()
  private readonly preparedProofs = new Map<number, PreparedProof>()
  private readonly checkpoints = new Map<number, Map<number, Signed<Checkpoint>>>()
  private readonly ownCheckpoints = new Map<number, string>()
  /** commit certificates above the stable checkpoint, for a replica that missed them */
  private readonly certificates = new Map<number, CommitCertificate>()
  /** snapshot text at own checkpoints not below the stable one */
  private readonly snapshots = new Map<number, string>()
  private readonly clients = new Map<string, { timestamp: number; reply: Signed<Reply> | undefined }>()
  /** requests known and not yet executed, by digest */
  private readonly pending = new Map<string, Signed<Request>>()
  private readonly viewChanges = new Map<number, Map<number, Signed<ViewChange>>>()
  private timeout: number
  private deadline: number | undefined
  private out: Array<Output> = []
  private now = 0
  /** pre-prepares for a view not installed yet (they may overtake the new-view), bounded */
  private future: Array<Signed<PrePrepare>> = []
  /** normal-case messages just above the window (this replica's checkpoint lags), replayed when it moves */
  private ahead: Array<Signed<PrePrepare | Prepare | Commit>> = []

  constructor(config: ReplicaConfig) {
    if (!Number.isInteger(config.n) || config.n < 4) throw new Error(`pbft: n must be at least 4, got ${config.n}`)
    if (!Number.isInteger(config.id) || config.id < 0 || config.id >= config.n)
      throw new Error(`pbft: replica id ${config.id} outside 0..${config.n - 1}`)
    this.id = config.id
    this.n = config.n
    this.f = Math.floor((config.n - 1) / 3)
    // Any two quorums share f+1 replicas, so at least one correct one; 2f+1 when n = 3f+1 (for
    // n = 5 or 6 with f = 1, 2f+1 would let two quorums meet in one replica, a Byzantine one).
    this.q = Math.ceil((config.n + this.f + 1) / 2)
    this.K = config.checkpointInterval ?? 16
    this.L = config.window ?? 2 * this.K
    this.baseTimeout = config.viewChangeTimeout ?? 1000
    this.timeout = this.baseTimeout
    this.signer = config.signer
    this.verifier = config.verifier
    this.apply = config.apply
    this.snapshotApp = config.snapshot
    this.restoreApp = config.restore
  }

  primary(view: number = this.view): number {
    return view % this.n
  }

  /** The timer deadline (ms), if a view-change timer runs. */
  get timerDeadline(): number | undefined {
    return this.deadline
  }

  /** The timeout the next view-change timer will use (doubles per consecutive view change). */
  get currentTimeout(): number {
    return this.timeout
  }

  /** View-change messages held. */
  get viewChangesHeld(): number {
    let n = 0
    for (const byReplica of this.viewChanges.values()) n += byReplica.size
    return n
  }

  /** Log entries held (for checking garbage collection). */
  get logSize(): number {
    return this.slots.size + this.committed.size + this.preparedProofs.size
  }

  receive(message: Signed, now: number): Array<Output> {
    this.out = []
    this.now = now
    this.fire(now)
    this.handle(message, now)
    return this.flush()
  }

  /** Advance time: an expired timer starts a view change. */
  tick(now: number): Array<Output> {
    this.out = []
    this.now = now
    this.fire(now)
    return this.flush()
  }

  private flush(): Array<Output> {
    const out = this.out
    this.out = []
    return out
  }

  private reject(why: Rejection): void {
    this.rejected.set(why, (this.rejected.get(why) ?? 0) + 1)
  }

  private sign<M extends Message>(message: M): Signed<M> {
    return { from: String(this.id), message, signature: this.signer.sign(bytesOf(message)) }
  }

  private verified(m: Signed): boolean {
    let ok = false
    try {
      ok = m.signature instanceof Uint8Array && this.verifier.verify(m.from, bytesOf(m.message), m.signature)
    } catch {
      ok = false
    }
    if (!ok) this.reject("signature")
    return ok
  }

  /** a replica message signed by the replica it names */
  private fromReplica(m: Signed, replica: number): boolean {
    if (!Number.isInteger(replica) || replica < 0 || replica >= this.n || m.from !== String(replica)) {
      this.reject("sender")
      return false
    }
    return this.verified(m)
  }

  /** verified, above the window by at most 2L: kept (bounded) until the watermark moves */
  private defer(m: Signed<PrePrepare | Prepare | Commit>): void {
    const seq = m.message.seq
    if (Number.isInteger(seq) && seq > this.stable + this.L && seq <= this.stable + 3 * this.L) {
      // per sender, so a Byzantine replica cannot crowd out the others
      if (this.ahead.filter((x) => x.from === m.from).length < 3 * this.L) {
        this.ahead.push(m)
        return
      }
    }
    this.reject("watermark")
  }

  private inWindow(seq: number, low: number = this.stable): boolean {
    return Number.isInteger(seq) && seq > low && seq <= low + this.L
  }

  private slot(view: number, seq: number): Slot {
    const key = `${view}:${seq}`
    let s = this.slots.get(key)
    if (!s) {
      s = { prePrepare: undefined, prepares: new Map(), commits: new Map(), sentCommit: false, committed: false }
      this.slots.set(key, s)
    }
    return s
  }

  private handle(m: Signed, now: number): void {
    const msg = m.message as Message | undefined
    if (!msg || typeof msg !== "object") {
      this.reject("malformed")
      return
    }
    switch (msg.type) {
      case "request": {
        this.onRequest(m as Signed<Request>)
        return
      }
      case "pre-prepare": {
        this.onPrePrepare(m as Signed<PrePrepare>)
        return
      }
      case "prepare": {
        this.onPrepare(m as Signed<Prepare>)
        return
      }
      case "commit": {
        this.onCommit(m as Signed<Commit>)
        return
      }
      case "checkpoint": {
        this.onCheckpoint(m as Signed<Checkpoint>)
        return
      }
      case "view-change": {
        this.onViewChange(m as Signed<ViewChange>, now)
        return
      }
      case "new-view": {
        this.onNewView(m as Signed<NewView>)
        return
      }
      default: {
        this.reject("malformed")
        return
      }
    }
  }

  // --- requests ---------------------------------------------------------------------------

  private validRequest(r: Signed<Request>): boolean {
    const q = r.message
    if (q.type !== "request" || typeof q.client !== "string" || !Number.isSafeInteger(q.timestamp)) {
      this.reject("malformed")
      return false
    }
    if (r.from !== q.client) {
      this.reject("sender")
      return false
    }
    return this.verified(r)
  }

  private onRequest(r: Signed<Request>): void {
    if (!this.validRequest(r)) return
    const q = r.message
    const seen = this.clients.get(q.client)
    if (seen && q.timestamp <= seen.timestamp) {
      // duplicate: resend the reply to the last one, drop older ones
      if (q.timestamp === seen.timestamp && seen.reply)
        this.out.push({ kind: "reply", client: q.client, message: seen.reply })
      return
    }
    const digest = digestOf(q)
    if (!this.pending.has(digest)) this.pending.set(digest, r)
    if (this.id === this.primary() && this.active) this.assignPending()
    else {
      if (this.active) this.out.push({ kind: "send", to: this.primary(), message: r })
      this.startTimer()
    }
  }

  /** primary: give every pending request not in the log a sequence number, within the window */
  private assignPending(): void {
    const inLog = new Set<string>()
    for (const [key, s] of this.slots)
      if (key.startsWith(`${this.view}:`) && s.prePrepare) inLog.add(s.prePrepare.message.digest)
    for (const [digest, r] of this.pending) {
      if (inLog.has(digest)) continue
      if (!this.inWindow(this.nextSeq + 1)) return
      this.nextSeq++
      const pp = this.sign<PrePrepare>({ type: "pre-prepare", view: this.view, seq: this.nextSeq, digest, request: r })
      this.slot(this.view, this.nextSeq).prePrepare = pp
      inLog.add(digest)
      this.out.push({ kind: "broadcast", message: pp })
    }
  }

  // --- normal case ----------------------------------------------------------------------------

  /** a pre-prepare's request matches its digest and is signed by its client (or it is the null request) */
  private validPrePrepareBody(pp: PrePrepare): boolean {
    if (pp.digest === NULL_DIGEST) return pp.request === null
    if (!pp.request || !this.validRequest(pp.request)) return false
    return digestOf(pp.request.message) === pp.digest
  }

  private onPrePrepare(m: Signed<PrePrepare>): void {
    const pp = m.message
    if (!Number.isInteger(pp.view) || !this.fromReplica(m, this.primary(pp.view))) return
    if (pp.view < this.view || pp.view > this.view + 2) {
      this.reject("view")
      return
    }
    if (!this.inWindow(pp.seq)) {
      this.defer(m)
      return
    }
    if (!this.validPrePrepareBody(pp)) {
      this.reject("malformed")
      return
    }
    if (pp.view > this.view || !this.active) {
      if (this.future.length < this.L) this.future.push(m)
      return
    }
    this.acceptPrePrepare(m)
  }

  private acceptPrePrepare(m: Signed<PrePrepare>): void {
    const pp = m.message
    const s = this.slot(pp.view, pp.seq)
    if (s.prePrepare) {
      // one pre-prepare per view and sequence number: a second, different one is equivocation
      if (s.prePrepare.message.digest !== pp.digest) this.reject("conflict")
      return
    }
    s.prePrepare = m
    if (pp.request) {
      const q = pp.request.message
      const seen = this.clients.get(q.client)
      if (!seen || q.timestamp > seen.timestamp) {
        this.pending.set(pp.digest, pp.request)
        this.startTimer()
      }
    }
    if (this.id !== this.primary(pp.view)) {
      const p = this.sign<Prepare>({
        type: "prepare",
        view: pp.view,
        seq: pp.seq,
        digest: pp.digest,
        replica: this.id,
      })
      s.prepares.set(this.id, p)
      this.out.push({ kind: "broadcast", message: p })
    }
    this.checkPrepared(pp.view, pp.seq)
  }

  private onPrepare(m: Signed<Prepare>): void {
    const p = m.message
    if (!this.fromReplica(m, p.replica)) return
    // votes for the next views are kept: they may overtake the new-view
    if (p.view < this.view || p.view > this.view + 2) {
      this.reject("view")
      return
    }
    if (p.replica === this.primary(p.view)) {
      this.reject("sender")
      return
    }
    if (!this.inWindow(p.seq)) {
      this.defer(m)
      return
    }
    const s = this.slot(p.view, p.seq)
    const had = s.prepares.get(p.replica)
    if (had) {
      if (had.message.digest !== p.digest) this.reject("conflict")
      return
    }
    s.prepares.set(p.replica, m)
    this.checkPrepared(p.view, p.seq)
  }

  private matching<M extends Prepare | Commit>(votes: Map<number, Signed<M>>, digest: string): Array<Signed<M>> {
    return [...votes.values()].filter((v) => v.message.digest === digest)
  }

  private checkPrepared(view: number, seq: number): void {
    const s = this.slot(view, seq)
    if (!s.prePrepare || s.sentCommit) return
    const digest = s.prePrepare.message.digest
    const prepares = this.matching(s.prepares, digest)
    if (prepares.length < this.q - 1) return
    s.sentCommit = true
    const had = this.preparedProofs.get(seq)
    if (!had || had.prePrepare.message.view < view)
      this.preparedProofs.set(seq, { prePrepare: s.prePrepare, prepares: prepares.slice(0, this.q - 1) })
    const c = this.sign<Commit>({ type: "commit", view, seq, digest, replica: this.id })
    s.commits.set(this.id, c)
    this.out.push({ kind: "broadcast", message: c })
    this.checkCommitted(view, seq)
  }

  private onCommit(m: Signed<Commit>): void {
    const c = m.message
    if (!this.fromReplica(m, c.replica)) return
    if (c.view < this.view || c.view > this.view + 2) {
      this.reject("view")
      return
    }
    if (!this.inWindow(c.seq)) {
      this.defer(m)
      return
    }
    const s = this.slot(c.view, c.seq)
    const had = s.commits.get(c.replica)
    if (had) {
      if (had.message.digest !== c.digest) this.reject("conflict")
      return
    }
    s.commits.set(c.replica, m)
    this.checkCommitted(c.view, c.seq)
  }

  private checkCommitted(view: number, seq: number): void {
    const s = this.slot(view, seq)
    if (!s.prePrepare || !s.sentCommit || s.committed) return
    if (this.matching(s.commits, s.prePrepare.message.digest).length < this.q) return
    s.committed = true
    const digest = s.prePrepare.message.digest
    if (!this.certificates.has(seq))
      this.certificates.set(seq, {
        prePrepare: s.prePrepare,
        commits: this.matching(s.commits, digest).slice(0, this.q),
      })
    if (seq > this.lastExecuted && !this.committed.has(seq)) this.committed.set(seq, s.prePrepare)
    this.execute()
  }

  private execute(): void {
    let progressed = false
    for (;;) {
      const pp = this.committed.get(this.lastExecuted + 1)
      if (!pp) break
      const seq = this.lastExecuted + 1
      this.committed.delete(seq)
      const { digest, request } = pp.message
      let result: string | null = null
      if (request) {
        const q = request.message
        this.pending.delete(digest)
        const seen = this.clients.get(q.client)
        if (!seen || q.timestamp > seen.timestamp) {
          result = this.apply(q.op)
          const reply = this.sign<Reply>({
            type: "reply",
            view: this.view,
            timestamp: q.timestamp,
            client: q.client,
            replica: this.id,
            result,
          })
          this.clients.set(q.client, { timestamp: q.timestamp, reply })
          this.out.push({ kind: "reply", client: q.client, message: reply })
          progressed = true
        }
      }
      this.state = chain(this.state, seq, digest, result ?? "")
      this.lastExecuted = seq
      this.out.push({ kind: "executed", seq, digest, request: request?.message ?? null, result })
      if (seq % this.K === 0) {
        this.ownCheckpoints.set(seq, this.state)
        if (this.snapshotApp) this.snapshots.set(seq, this.snapshotText())
        const c = this.sign<Checkpoint>({ type: "checkpoint", seq, state: this.state, replica: this.id })
        this.out.push({ kind: "broadcast", message: c })
        this.recordCheckpoint(c)
      }
    }
    if (progressed) {
      // the view works: the next view change starts from the base timeout again
      this.timeout = this.baseTimeout
      this.deadline = undefined
      this.startTimer()
    }
  }

  // --- checkpoints ----------------------------------------------------------------------------

  private onCheckpoint(m: Signed<Checkpoint>): void {
    const c = m.message
    if (!this.fromReplica(m, c.replica)) return
    if (!Number.isInteger(c.seq) || c.seq <= this.stable || c.seq > this.stable + 3 * this.L || c.seq % this.K !== 0) {
      this.reject("watermark")
      return
    }
    this.recordCheckpoint(m)
  }

  private recordCheckpoint(m: Signed<Checkpoint>): void {
    const c = m.message
    let at = this.checkpoints.get(c.seq)
    if (!at) {
      at = new Map()
      this.checkpoints.set(c.seq, at)
    }
    if (!at.has(c.replica)) at.set(c.replica, m)
    const same = [...at.values()].filter((x) => x.message.state === c.state)
    if (same.length < this.q || c.seq <= this.stable) return
    const own = this.ownCheckpoints.get(c.seq)
    if (own === undefined) {
      if (this.lastExecuted < c.seq) this.out.push({ kind: "needs-state-transfer", seq: c.seq })
      return
    }
    if (own !== c.state) return
    this.makeStable(c.seq, same.slice(0, this.q))
  }

  /** the checkpoint is stable: raise the low watermark and drop the log below it */
  private makeStable(seq: number, proof: ReadonlyArray<Signed<Checkpoint>>): void {
    this.stable = seq
    this.stableProof = proof
    for (const [key] of this.slots) if (Number(key.split(":")[1]) <= seq) this.slots.delete(key)
    for (const s of [...this.preparedProofs.keys()]) if (s <= seq) this.preparedProofs.delete(s)
    for (const s of [...this.committed.keys()]) if (s <= seq) this.committed.delete(s)
    for (const s of [...this.checkpoints.keys()]) if (s < seq) this.checkpoints.delete(s)
    for (const s of [...this.ownCheckpoints.keys()]) if (s < seq) this.ownCheckpoints.delete(s)
    for (const s of [...this.snapshots.keys()]) if (s < seq) this.snapshots.delete(s)
    for (const s of [...this.certificates.keys()]) if (s <= seq) this.certificates.delete(s)
    const ahead = this.ahead
    this.ahead = []
    for (const m of ahead) if (m.message.seq > seq) this.handle(m, this.now)
    if (this.id === this.primary() && this.active) this.assignPending()
  }

  // --- state transfer -------------------------------------------------------------------------

  private snapshotText(): string {
    const clients = [...this.clients.entries()]
      .map(([c, v]) => [c, v.timestamp, v.reply?.message.result ?? null] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return JSON.stringify({ app: this.snapshotApp?.() ?? "", clients })
  }

  /** The last stable checkpoint, its proof and snapshot (undefined at 0 or without a snapshot hook). */
  stableCheckpoint(): CheckpointState | undefined {
    const snapshot = this.snapshots.get(this.stable)
    return this.stable > 0 && snapshot !== undefined
      ? { seq: this.stable, proof: this.stableProof, snapshot }
      : undefined
  }

  /**
   * Installs a checkpoint fetched from other replicas (after `needs-state-transfer`). The proof
   * (2f+1 signed checkpoint messages) is checked here; that `snapshot` is the state it names is
   * the caller's to establish (the same text from f+1 replicas). Returns whether it was installed.
   */
  installState(state: CheckpointState, now: number): { installed: boolean; outputs: Array<Output> } {
    this.out = []
    this.now = now
    const { seq, proof, snapshot } = state
    if (seq <= this.lastExecuted || !this.restoreApp || !this.validCheckpointProof(seq, proof) || seq % this.K !== 0)
      return { installed: false, outputs: this.flush() }
    let parsed: { app: string; clients: Array<[string, number, string | null]> }
    try {
      parsed = JSON.parse(snapshot)
      if (typeof parsed.app !== "string" || !Array.isArray(parsed.clients)) throw new Error("shape")
    } catch {
      this.reject("malformed")
      return { installed: false, outputs: this.flush() }
    }
    this.restoreApp(parsed.app)
    this.clients.clear()
    for (const [client, timestamp, result] of parsed.clients) {
      const reply =
        result === null
          ? undefined
          : this.sign<Reply>({ type: "reply", view: this.view, timestamp, client, replica: this.id, result })
      this.clients.set(client, { timestamp, reply })
    }
    for (const [digest, r] of this.pending) {
      const seen = this.clients.get(r.message.client)
      if (seen && r.message.timestamp <= seen.timestamp) this.pending.delete(digest)
    }
    this.lastExecuted = seq
    this.state = proof[0]!.message.state
    this.ownCheckpoints.set(seq, this.state)
    this.snapshots.set(seq, snapshot)
    if (this.nextSeq < seq) this.nextSeq = seq
    if (seq > this.stable) this.makeStable(seq, proof)
    this.execute()
    return { installed: true, outputs: this.flush() }
  }

  /** The commit certificate of `seq`, if this replica committed it and it is above the stable checkpoint. */
  certificate(seq: number): CommitCertificate | undefined {
    return this.certificates.get(seq)
  }

  /**
   * Executes a request this replica missed, on its commit certificate from another replica: the
   * pre-prepare signed by its view's primary and 2f+1 commits from distinct replicas for the same
   * view, sequence number and digest (so no other request can commit there). Returns the outputs.
   */
  installCertificate(cert: CommitCertificate, now: number): Array<Output> {
    this.out = []
    this.now = now
    const pp = cert?.prePrepare?.message
    if (
      pp?.type !== "pre-prepare" ||
      !Number.isInteger(pp.view) ||
      !this.inWindow(pp.seq) ||
      pp.seq <= this.lastExecuted ||
      this.committed.has(pp.seq) ||
      !Array.isArray(cert.commits)
    )
      return this.flush()
    if (!this.fromReplica(cert.prePrepare, this.primary(pp.view)) || !this.validPrePrepareBody(pp)) {
      this.reject("proof")
      return this.flush()
    }
    const who = new Set<number>()
    for (const c of cert.commits) {
      const m = c?.message
      if (m?.type !== "commit" || m.view !== pp.view || m.seq !== pp.seq || m.digest !== pp.digest) {
        this.reject("proof")
        return this.flush()
      }
      if (!this.fromReplica(c, m.replica)) return this.flush()
      who.add(m.replica)
    }
    if (who.size < this.q) {
      this.reject("proof")
      return this.flush()
    }
    this.certificates.set(pp.seq, cert)
    this.committed.set(pp.seq, cert.prePrepare)
    this.execute()
    return this.flush()
  }

  /** The lowest sequence number this replica waits for while a later one is committed, if any. */
  get gap(): number | undefined {
    for (const seq of this.committed.keys()) if (seq > this.lastExecuted + 1) return this.lastExecuted + 1
    return undefined
  }

  // --- view change ----------------------------------------------------------------------------

  /** a backup waiting for a request runs the view-change timer (the primary does not suspect itself) */
  private startTimer(): void {
    if (this.deadline === undefined && this.active && this.pending.size > 0 && this.id !== this.primary())
      this.deadline = this.now + this.timeout
  }

  private fire(now: number): void {
    if (this.deadline !== undefined && now >= this.deadline) this.startViewChange(this.view + 1, now)
  }

  private startViewChange(view: number, now: number): void {
    this.view = view
    this.active = false
    const vc = this.sign<ViewChange>({
      type: "view-change",
      view,
      stable: this.stable,
      checkpointProof: this.stableProof,
      prepared: [...this.preparedProofs.entries()]
        .filter(([seq]) => seq > this.stable)
        .sort(([a], [b]) => a - b)
        .map(([, p]) => p),
      replica: this.id,
    })
    this.out.push({ kind: "view", view, active: false }, { kind: "broadcast", message: vc })
    // wait T for the new view, then 2T for the one after, ...
    this.deadline = now + this.timeout
    this.timeout *= 2
    this.recordViewChange(vc, now)
  }

  private validCheckpointProof(stable: number, proof: ReadonlyArray<Signed<Checkpoint>>): boolean {
    if (stable === 0) return proof.length === 0
    if (!Number.isInteger(stable) || stable < 0 || !Array.isArray(proof)) return false
    const who = new Set<number>()
    const state = proof[0]?.message.state
    for (const c of proof) {
      if (c.message.type !== "checkpoint" || c.message.seq !== stable || c.message.state !== state) return false
      if (!this.fromReplica(c, c.message.replica)) return false
      who.add(c.message.replica)
    }
    return who.size >= this.q
  }

  private validPreparedProof(p: PreparedProof, stable: number, view: number): boolean {
    const pp = p.prePrepare?.message
    if (pp?.type !== "pre-prepare" || !Number.isInteger(pp.view) || pp.view >= view) return false
    if (!this.inWindow(pp.seq, stable)) return false
    if (!this.fromReplica(p.prePrepare, this.primary(pp.view)) || !this.validPrePrepareBody(pp)) return false
    const who = new Set<number>()
    for (const q of p.prepares ?? []) {
      const m = q.message
      if (m.type !== "prepare" || m.view !== pp.view || m.seq !== pp.seq || m.digest !== pp.digest) return false
      if (m.replica === this.primary(pp.view) || !this.fromReplica(q, m.replica)) return false
      who.add(m.replica)
    }
    return who.size >= this.q - 1
  }

  private validViewChange(m: Signed<ViewChange>): boolean {
    const vc = m.message
    if (!Number.isInteger(vc.view) || vc.view < 1 || !Array.isArray(vc.prepared)) return false
    if (!this.fromReplica(m, vc.replica)) return false
    if (!this.validCheckpointProof(vc.stable, vc.checkpointProof)) return false
    const seqs = new Set<number>()
    for (const p of vc.prepared) {
      if (!this.validPreparedProof(p, vc.stable, vc.view)) return false
      if (seqs.has(p.prePrepare.message.seq)) return false
      seqs.add(p.prePrepare.message.seq)
    }
    return true
  }

  private onViewChange(m: Signed<ViewChange>, now: number): void {
    if (!this.validViewChange(m)) {
      this.reject("proof")
      return
    }
    const vc = m.message
    if (vc.view < this.view || (vc.view === this.view && this.active)) {
      this.reject("view")
      return
    }
    this.recordViewChange(m, now)
  }

  private recordViewChange(m: Signed<ViewChange>, now: number): void {
    const vc = m.message
    // one view-change per replica, its latest: a replica asking for views 1..10^6 costs one entry
    for (const [v, byReplica] of this.viewChanges) {
      if (v > vc.view && byReplica.has(vc.replica)) return
      if (v < vc.view && byReplica.delete(vc.replica) && byReplica.size === 0) this.viewChanges.delete(v)
    }
    let at = this.viewChanges.get(vc.view)
    if (!at) {
      at = new Map()
      this.viewChanges.set(vc.view, at)
    }
    if (!at.has(vc.replica)) at.set(vc.replica, m)
    // f+1 replicas want a later view: join the smallest of those views (some correct replica wants it)
    const later = new Map<number, number>()
    for (const [v, byReplica] of this.viewChanges)
      if (v > this.view) for (const r of byReplica.keys()) if (!later.has(r) || v < later.get(r)!) later.set(r, v)
    if (later.size >= this.f + 1) {
      const smallest = Math.min(...later.values())
      if (smallest > this.view) this.startViewChange(smallest, now)
    }
    if (!this.active && this.id === this.primary() && vc.view === this.view) this.tryNewView()
  }

  /** the new-view's pre-prepares: the highest-view prepared proof per sequence number, else null */
  private reproposals(view: number, vcs: ReadonlyArray<Signed<ViewChange>>): { minS: number; ops: Array<PrePrepare> } {
    const minS = Math.max(...vcs.map((v) => v.message.stable))
    const best = new Map<number, PreparedProof>()
    for (const v of vcs)
      for (const p of v.message.prepared) {
        const seq = p.prePrepare.message.seq
        if (seq <= minS) continue
        const had = best.get(seq)
        if (!had || had.prePrepare.message.view < p.prePrepare.message.view) best.set(seq, p)
      }
    const maxS = Math.max(minS, ...best.keys())
    const ops: Array<PrePrepare> = []
    for (let seq = minS + 1; seq <= maxS; seq++) {
      const p = best.get(seq)
      ops.push(
        p
          ? {
              type: "pre-prepare",
              view,
              seq,
              digest: p.prePrepare.message.digest,
              request: p.prePrepare.message.request,
            }
          : { type: "pre-prepare", view, seq, digest: NULL_DIGEST, request: null },
      )
    }
    return { minS, ops }
  }

  private tryNewView(): void {
    const at = this.viewChanges.get(this.view)
    if (!at || at.size < this.q) return
    const own = at.get(this.id)
    const vcs = [...(own ? [own] : []), ...[...at.values()].filter((v) => v !== own)].slice(0, this.q)
    const { minS, ops } = this.reproposals(this.view, vcs)
    const prePrepares = ops.map((pp) => this.sign(pp))
    const nv = this.sign<NewView>({ type: "new-view", view: this.view, viewChanges: vcs, prePrepares })
    this.out.push({ kind: "broadcast", message: nv })
    this.enterView(this.view, minS, vcs, prePrepares)
    this.nextSeq = Math.max(minS, ...ops.map((o) => o.seq))
    this.assignPending()
  }

  private onNewView(m: Signed<NewView>): void {
    const nv = m.message
    if (!Number.isInteger(nv.view) || !this.fromReplica(m, this.primary(nv.view))) return
    if (nv.view < this.view || (nv.view === this.view && this.active)) {
      this.reject("view")
      return
    }
    const vcs = Array.isArray(nv.viewChanges) ? nv.viewChanges : []
    const who = new Set<number>()
    for (const v of vcs) {
      if (v.message?.type !== "view-change" || v.message.view !== nv.view || !this.validViewChange(v)) {
        this.reject("proof")
        return
      }
      who.add(v.message.replica)
    }
    if (who.size < this.q || who.size !== vcs.length) {
      this.reject("proof")
      return
    }
    // recompute what the primary had to propose and compare
    const { minS, ops } = this.reproposals(nv.view, vcs)
    const got = Array.isArray(nv.prePrepares) ? nv.prePrepares : []
    if (got.length !== ops.length) {
      this.reject("proof")
      return
    }
    for (let i = 0; i < ops.length; i++) {
      const want = ops[i]!
      const have = got[i]!
      if (
        !this.fromReplica(have, this.primary(nv.view)) ||
        have.message.type !== "pre-prepare" ||
        have.message.view !== want.view ||
        have.message.seq !== want.seq ||
        have.message.digest !== want.digest
      ) {
        this.reject("proof")
        return
      }
    }
    this.enterView(nv.view, minS, vcs, got)
  }

  private enterView(
    view: number,
    minS: number,
    vcs: ReadonlyArray<Signed<ViewChange>>,
    prePrepares: ReadonlyArray<Signed<PrePrepare>>,
  ): void {
    this.view = view
    this.active = true
    this.out.push({ kind: "view", view, active: true })
    for (const v of [...this.viewChanges.keys()]) if (v <= view) this.viewChanges.delete(v)
    for (const [key] of this.slots) if (Number(key.split(":")[0]) < view) this.slots.delete(key)
    if (minS > this.stable) {
      const proof = vcs.find((v) => v.message.stable === minS)?.message.checkpointProof ?? []
      if (this.lastExecuted >= minS && this.ownCheckpoints.get(minS) === proof[0]?.message.state)
        this.makeStable(minS, proof)
      else if (this.lastExecuted < minS) this.out.push({ kind: "needs-state-transfer", seq: minS })
    }
    for (const pp of prePrepares) if (pp.message.seq > this.stable) this.acceptPrePrepare(pp)
    const early = this.future.filter((pp) => pp.message.view === view && this.inWindow(pp.message.seq))
    this.future = this.future.filter((pp) => pp.message.view > view)
    for (const pp of early) this.acceptPrePrepare(pp)
    this.deadline = undefined
    this.startTimer()
  }
}
