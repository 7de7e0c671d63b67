// A simulated network of PBFT replicas: messages delivered in a seeded random order with a
// simulated clock, Byzantine behaviour by intercepting a replica's outputs. Deterministic per seed.
import { generateKeyPairSync, type KeyObject } from "node:crypto"
import { Pbft } from "../../src/index.js"

export const rng = (seed: number) => {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 0x1_0000_0000
  }
}

interface InFlight {
  readonly from: number
  readonly to: number
  readonly message: Pbft.Signed
}

export interface NetOptions {
  readonly n?: number
  readonly seed?: number
  readonly checkpointInterval?: number
  readonly viewChangeTimeout?: number
  /** replicas whose outputs `byzantine` rewrites (default: they behave correctly) */
  readonly byzantine?: (from: number, out: Pbft.Output, net: Net) => ReadonlyArray<InFlight> | undefined
  /** drop a message in flight */
  readonly drop?: (m: InFlight, net: Net) => boolean
}

export class Net {
  readonly n: number
  readonly f: number
  readonly keys: Array<{ publicKey: KeyObject; privateKey: KeyObject }>
  readonly clientKeys = new Map<string, { publicKey: KeyObject; privateKey: KeyObject }>()
  readonly principals = new Map<string, KeyObject>()
  readonly replicas: Array<Pbft.Replica>
  readonly applied: Array<Array<string>>
  /** per replica: seq -> digest, as executed */
  readonly executed: Array<Map<number, string>>
  readonly replies: Array<Pbft.Signed<Pbft.Reply>> = []
  /** every message ever sent, for replay attacks */
  readonly sent: Array<InFlight> = []
  readonly queue: Array<InFlight> = []
  readonly random: () => number
  now = 0
  delivered = 0

  constructor(readonly options: NetOptions = {}) {
    this.n = options.n ?? 4
    this.f = Math.floor((this.n - 1) / 3)
    this.random = rng(options.seed ?? 1)
    this.keys = Array.from({ length: this.n }, () => generateKeyPairSync("ed25519"))
    for (const [i, k] of this.keys.entries()) this.principals.set(String(i), k.publicKey)
    this.applied = Array.from({ length: this.n }, () => [])
    this.executed = Array.from({ length: this.n }, () => new Map())
    this.replicas = this.keys.map(
      (k, id) =>
        new Pbft.Replica({
          id,
          n: this.n,
          ...Pbft.ed25519(k.privateKey, this.principals),
          checkpointInterval: options.checkpointInterval ?? 4,
          viewChangeTimeout: options.viewChangeTimeout ?? 500,
          apply: (op) => {
            this.applied[id]!.push(op)
            return `ok:${op}`
          },
        }),
    )
  }

  signerOf(replica: number): Pbft.Signer {
    return Pbft.ed25519(this.keys[replica]!.privateKey, this.principals).signer
  }

  get verifier(): Pbft.Verifier {
    return Pbft.ed25519(this.keys[0]!.privateKey, this.principals).verifier
  }

  client(name: string): Pbft.Signer {
    let k = this.clientKeys.get(name)
    if (!k) {
      k = generateKeyPairSync("ed25519")
      this.clientKeys.set(name, k)
      this.principals.set(name, k.publicKey)
    }
    return Pbft.ed25519(k.privateKey, this.principals).signer
  }

  request(client: string, timestamp: number, op: string): Pbft.Signed<Pbft.Request> {
    return Pbft.signRequest({ client, timestamp, op }, this.client(client))
  }

  /** a client sends to `to` (default: every replica, as a retransmitting client does) */
  submit(r: Pbft.Signed<Pbft.Request>, to: ReadonlyArray<number> = [...this.replicas.keys()]): void {
    for (const t of to) this.enqueue({ from: -1, to: t, message: r })
  }

  enqueue(m: InFlight): void {
    this.sent.push(m)
    if (this.options.drop?.(m, this)) return
    this.queue.push(m)
  }

  private emit(from: number, outs: ReadonlyArray<Pbft.Output>): void {
    for (const o of outs) {
      const rewritten = this.options.byzantine?.(from, o, this)
      if (rewritten) {
        for (const m of rewritten) this.enqueue(m)
        continue
      }
      switch (o.kind) {
        case "broadcast":
          for (let to = 0; to < this.n; to++) if (to !== from) this.enqueue({ from, to, message: o.message })
          break
        case "send":
          this.enqueue({ from, to: o.to, message: o.message })
          break
        case "reply":
          this.replies.push(o.message)
          break
        case "executed": {
          const had = this.executed[from]!.get(o.seq)
          if (had !== undefined && had !== o.digest) throw new Error(`replica ${from} re-executed ${o.seq} differently`)
          this.executed[from]!.set(o.seq, o.digest)
          break
        }
      }
    }
  }

  /** deliver one message (random order), advancing the clock 1 ms; false when none is in flight */
  step(): boolean {
    this.now += 1
    for (let i = 0; i < this.n; i++) this.emit(i, this.replicas[i]!.tick(this.now))
    if (this.queue.length === 0) return false
    const i = Math.floor(this.random() * this.queue.length)
    const m = this.queue.splice(i, 1)[0]!
    this.delivered++
    this.emit(m.to, this.replicas[m.to]!.receive(m.message, this.now))
    return true
  }

  /** run until `done`, letting time pass when nothing is in flight; throws after `max` steps */
  run(done: () => boolean, max = 200_000, invariant?: () => void): void {
    for (let i = 0; i < max; i++) {
      if (done()) return
      if (!this.step()) this.now += 50
      invariant?.()
    }
    throw new Error(`not done after ${max} steps (views ${this.replicas.map((r) => r.view)})`)
  }

  /** replies from distinct replicas agreeing on the result: the client's f+1 rule */
  result(client: string, timestamp: number, from?: ReadonlyArray<number>): string | undefined {
    const c = new Pbft.ReplyCollector(this.f, client, timestamp, this.verifier)
    let out: string | undefined
    for (const r of this.replies) if (!from || from.includes(r.message.replica)) out = c.add(r) ?? out
    return out
  }

  /** safety: correct replicas executed the same request at every sequence number both executed */
  assertAgreement(correct: ReadonlyArray<number>): void {
    for (const a of correct)
      for (const b of correct) {
        for (const [seq, d] of this.executed[a]!) {
          const other = this.executed[b]!.get(seq)
          if (other !== undefined && other !== d)
            throw new Error(`divergence at seq ${seq}: replica ${a} ${d}, replica ${b} ${other}`)
        }
        // same prefix of applied operations
        const x = this.applied[a]!
        const y = this.applied[b]!
        const k = Math.min(x.length, y.length)
        if (x.slice(0, k).join("\n") !== y.slice(0, k).join("\n"))
          throw new Error(`replicas ${a} and ${b} applied different orders`)
      }
  }
}
