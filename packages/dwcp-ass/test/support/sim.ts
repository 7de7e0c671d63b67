// A deterministic network for in-process tests: a virtual clock, per-message latency, random loss,
// partitions and killed nodes. Seeded, so a failing run replays exactly.
export interface SimNode<M> {
  tick(now: number): void
  receive(now: number, from: string, msg: M): void
}

/** mulberry32: small, fast, good enough for test schedules. */
export const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface InFlight<M> {
  readonly at: number
  readonly from: string
  readonly to: string
  readonly msg: M
}

export class Sim<M> {
  now = 0
  loss = 0
  sent = 0
  dropped = 0
  private readonly nodes = new Map<string, SimNode<M>>()
  private readonly down = new Set<string>()
  private readonly groups = new Map<string, number>()
  private queue: Array<InFlight<M>> = []
  readonly random: () => number

  constructor(
    seed: number,
    readonly step = 10,
    readonly latency: readonly [number, number] = [1, 5],
  ) {
    this.random = prng(seed)
  }

  add(id: string, node: SimNode<M>): void {
    this.nodes.set(id, node)
    this.down.delete(id)
  }

  kill(id: string): void {
    this.down.add(id)
    this.nodes.delete(id)
  }

  isUp(id: string): boolean {
    return this.nodes.has(id) && !this.down.has(id)
  }

  /** Nodes in different groups cannot reach each other; nodes not named are in group 0. */
  partition(groups: ReadonlyArray<ReadonlyArray<string>>): void {
    this.groups.clear()
    groups.forEach((g, i) => {
      for (const id of g) this.groups.set(id, i + 1)
    })
  }

  heal(): void {
    this.groups.clear()
  }

  send(from: string, to: string, msg: M): void {
    this.sent++
    if ((this.groups.get(from) ?? 0) !== (this.groups.get(to) ?? 0) || this.random() < this.loss) {
      this.dropped++
      return
    }
    const [lo, hi] = this.latency
    this.queue.push({ at: this.now + lo + Math.floor(this.random() * (hi - lo + 1)), from, to, msg })
  }

  /** Advances the clock by `ms`, delivering messages and ticking every live node each step. */
  run(ms: number): void {
    const end = this.now + ms
    while (this.now < end) {
      this.now += this.step
      const due = this.queue.filter((m) => m.at <= this.now)
      this.queue = this.queue.filter((m) => m.at > this.now)
      for (const m of due) {
        const n = this.nodes.get(m.to)
        if (n !== undefined && !this.down.has(m.to)) n.receive(this.now, m.from, m.msg)
      }
      for (const [id, n] of this.nodes) if (!this.down.has(id)) n.tick(this.now)
    }
  }

  /** Runs until `done()` holds (checked each step); the time it took, or undefined at `limit`. */
  until(done: () => boolean, limit: number): number | undefined {
    const start = this.now
    while (this.now - start < limit) {
      if (done()) return this.now - start
      this.run(this.step)
    }
    return done() ? this.now - start : undefined
  }
}
