import type { HostView } from "../Plugin.js"
import type { ClusterState } from "./state.js"

/** A workload shape of the target workload, with its share of recent submissions. */
export interface ClassSpec {
  readonly cpu: number
  readonly mem: number
  readonly gpu: number
  /** Acceptable GPU model names; empty: any. */
  readonly models: ReadonlyArray<string>
}

interface Entry {
  readonly spec: ClassSpec
  weight: number
  mask: Uint8Array | null
  maskModels: number
}

/** The target workload compiled for one decision: flat arrays, `n` classes. */
export interface Compiled {
  n: number
  readonly p: Float64Array
  readonly cpu: Float64Array
  readonly mem: Float64Array
  readonly gpu: Float64Array
  /** min(gpu, 1000): a GPU with less free than this is a fragment for the class. */
  readonly need: Float64Array
  readonly whole: Float64Array
  readonly mask: Array<Uint8Array | null>
  /** Distinct `need` values and each class's index into them: fragment sums are per need. */
  nNeeds: number
  readonly needs: Float64Array
  readonly needIdx: Int32Array
}

/**
 * Online estimate of the workload mix: an exponentially decayed histogram of request shapes,
 * capped at `maxClasses` (the lightest shape is evicted). Decay is lazy: each observation weighs
 * `growth^t`, which keeps relative weights right without touching every entry.
 */
export class TargetWorkload {
  private readonly entries = new Map<string, Entry>()
  private scale = 1
  private readonly growth: number
  readonly compiled: Compiled

  constructor(
    readonly maxClasses: number,
    halfLife: number,
    private readonly weighting: "demand" | "count" = "demand",
  ) {
    this.growth = 2 ** (1 / Math.max(1, halfLife))
    this.compiled = {
      n: 0,
      p: new Float64Array(maxClasses),
      cpu: new Float64Array(maxClasses),
      mem: new Float64Array(maxClasses),
      gpu: new Float64Array(maxClasses),
      need: new Float64Array(maxClasses),
      whole: new Float64Array(maxClasses),
      mask: new Array(maxClasses).fill(null),
      nNeeds: 0,
      needs: new Float64Array(maxClasses),
      needIdx: new Int32Array(maxClasses),
    }
  }

  /**
   * A shape's weight: its decayed count, times `1 + gpu` (GPUs) under "demand" weighting, so a
   * shape counts by the capacity it asks for (the objective is allocated GPU capacity) and a
   * CPU-only shape still counts once per task.
   */
  private weigh(e: Entry): number {
    return this.weighting === "demand" ? e.weight * (1 + e.spec.gpu / 1000) : e.weight
  }

  get size(): number {
    return this.entries.size
  }

  observe(spec: ClassSpec): void {
    const key = `${spec.cpu}|${spec.mem}|${spec.gpu}|${spec.models.join(",")}`
    const e = this.entries.get(key)
    if (e !== undefined) e.weight += this.scale
    else {
      if (this.entries.size >= this.maxClasses) this.evictLightest()
      this.entries.set(key, { spec, weight: this.scale, mask: null, maskModels: -1 })
    }
    this.scale *= this.growth
    if (this.scale > 1e200) {
      for (const x of this.entries.values()) x.weight /= this.scale
      this.scale = 1
    }
  }

  private evictLightest(): void {
    let worst: string | undefined
    let w = Number.POSITIVE_INFINITY
    for (const [k, e] of this.entries) {
      if (e.weight < w) {
        w = e.weight
        worst = k
      }
    }
    if (worst !== undefined) this.entries.delete(worst)
  }

  /** Shapes and normalised weights, heaviest first. */
  classes(): Array<{ readonly spec: ClassSpec; readonly share: number }> {
    let total = 0
    for (const e of this.entries.values()) total += this.weigh(e)
    return [...this.entries.values()]
      .map((e) => ({ spec: e.spec, share: total > 0 ? this.weigh(e) / total : 0 }))
      .sort((a, b) => b.share - a.share)
  }

  compile(state: ClusterState): Compiled {
    const c = this.compiled
    let total = 0
    for (const e of this.entries.values()) total += this.weigh(e)
    let i = 0
    let nNeeds = 0
    for (const e of this.entries.values()) {
      const s = e.spec
      c.p[i] = this.weigh(e) / total
      const need = Math.min(s.gpu, 1000)
      let j = 0
      while (j < nNeeds && c.needs[j] !== need) j++
      if (j === nNeeds) c.needs[nNeeds++] = need
      c.needIdx[i] = j
      c.cpu[i] = s.cpu
      c.mem[i] = s.mem
      c.gpu[i] = s.gpu
      c.need[i] = Math.min(s.gpu, 1000)
      c.whole[i] = s.gpu >= 1000 ? s.gpu / 1000 : 0
      if (s.models.length === 0) c.mask[i] = null
      else {
        if (e.maskModels !== state.models.length) {
          const mask = new Uint8Array(state.models.length)
          for (const m of s.models) {
            const id = state.modelIds.get(m)
            if (id !== undefined) mask[id] = 1
          }
          e.mask = mask
          e.maskModels = state.models.length
        }
        c.mask[i] = e.mask
      }
      i++
    }
    c.n = i
    c.nNeeds = nNeeds
    return c
  }
}

/** The request part the fragmentation delta needs. */
export interface Demand {
  readonly cpu: number
  readonly mem: number
  readonly gpu: number
}

const fits = (
  c: Compiled,
  m: number,
  cpuFree: number,
  memFree: number,
  model: number,
  maxFree: number,
  full: number,
): boolean => {
  if (c.cpu[m]! > cpuFree || c.mem[m]! > memFree) return false
  const g = c.gpu[m]!
  if (g === 0) return true
  if (model < 0) return false
  const mask = c.mask[m] ?? null
  if (mask !== null && mask[model] !== 1) return false
  return g < 1000 ? maxFree >= g : full >= c.whole[m]!
}

const fragmentSum = (free: Int32Array, need: number): number => {
  let s = 0
  for (let i = 0; i < free.length; i++) {
    const v = free[i]!
    if (v < need) s += v
  }
  return s
}

/**
 * Change of a host's expected fragmentation F_n(M) = sum_m p_m F_n(m) if `demand` is placed on it
 * (Weng et al., ATC 2023). F_n(m) is the free GPU capacity task class m cannot use on host n: all
 * of it if m does not fit at all, else the free capacity of GPUs with less free than min(gpu_m, 1).
 * Computed incrementally: only the GPU touched and the fit of each class change, so a host costs
 * O(classes x GPUs) without copying its state.
 */
export class FgdEvaluator {
  /** GPU index chosen for a shared request by the last `delta` call (-1: whole GPUs or none). */
  bestGpu = -1
  private before = new Float64Array(0)
  private sums = new Float64Array(0)
  private needSums = new Float64Array(0)

  delta(h: HostView, d: Demand, c: Compiled): number {
    this.bestGpu = -1
    const free = h.gpuFree
    const T = h.gpuFreeTotal
    const n = c.n
    let max1 = -1
    let idx1 = -1
    let max2 = -1
    let full = 0
    let maxPartial = 0
    for (let i = 0; i < free.length; i++) {
      const v = free[i]!
      if (v === 1000) full++
      else if (v > maxPartial) maxPartial = v
      if (v > max1) {
        max2 = max1
        max1 = v
        idx1 = i
      } else if (v > max2) max2 = v
    }
    const cpuA = h.cpuFree - d.cpu
    const memA = h.memFree - d.mem
    if (d.gpu === 0) {
      if (T === 0) return 0
      let delta = 0
      for (let m = 0; m < n; m++) {
        const fb = fits(c, m, h.cpuFree, h.memFree, h.model, max1, full)
        const fa = fits(c, m, cpuA, memA, h.model, max1, full)
        if (fb !== fa) {
          const S = fragmentSum(free, c.need[m]!)
          delta += c.p[m]! * ((fa ? S : T) - (fb ? S : T))
        }
      }
      return delta
    }
    if (this.before.length < c.p.length) {
      this.before = new Float64Array(c.p.length)
      this.sums = new Float64Array(c.p.length)
      this.needSums = new Float64Array(c.p.length)
    }
    const before = this.before
    const sums = this.sums
    const needSums = this.needSums
    for (let j = 0; j < c.nNeeds; j++) needSums[j] = fragmentSum(free, c.needs[j]!)
    for (let m = 0; m < n; m++) {
      const S = needSums[c.needIdx[m]!]!
      sums[m] = S
      before[m] = fits(c, m, h.cpuFree, h.memFree, h.model, max1, full) ? S : T
    }
    if (d.gpu >= 1000) {
      const k = d.gpu / 1000
      const fullA = full - k
      const maxA = fullA > 0 ? 1000 : maxPartial
      const TA = T - d.gpu
      let delta = 0
      // Whole GPUs come from idle ones, which are never fragments: the sums do not change.
      for (let m = 0; m < n; m++) {
        const after = fits(c, m, cpuA, memA, h.model, maxA, fullA) ? sums[m]! : TA
        delta += c.p[m]! * (after - before[m]!)
      }
      return delta
    }
    let best = Number.POSITIVE_INFINITY
    let bestV = 0
    const TA = T - d.gpu
    for (let i = 0; i < free.length; i++) {
      const v = free[i]!
      if (v < d.gpu) continue
      let seen = false
      for (let j = 0; j < i; j++) if (free[j] === v) seen = true
      if (seen) continue
      const vA = v - d.gpu
      const fullA = v === 1000 ? full - 1 : full
      const maxA = i === idx1 ? Math.max(vA, max2) : max1
      let delta = 0
      for (let m = 0; m < n; m++) {
        const need = c.need[m]!
        const SA = sums[m]! - (v < need ? v : 0) + (vA < need ? vA : 0)
        const after = fits(c, m, cpuA, memA, h.model, maxA, fullA) ? SA : TA
        delta += c.p[m]! * (after - before[m]!)
      }
      // Equal deltas: take the fuller GPU, which keeps emptier ones whole.
      if (delta < best - 1e-9 || (Math.abs(delta - best) <= 1e-9 && v < bestV)) {
        best = delta
        bestV = v
        this.bestGpu = i
      }
    }
    return best
  }
}
