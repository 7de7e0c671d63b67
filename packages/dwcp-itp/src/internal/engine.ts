import { Either, Hash } from "effect"
import type { Explanation, FilterOutcome, RankedHost } from "../Explanation.js"
import type { HostSpec, HostUsage } from "../Host.js"
import {
  CapacityConflict,
  DuplicateHost,
  DuplicateWorkload,
  InvalidSpec,
  UnknownHost,
  UnknownPolicy,
  UnknownWorkload,
  Unschedulable,
} from "../PlacementError.js"
import type { ClusterView, FilterPlugin, Policy, Requirement, ScorePlugin } from "../Plugin.js"
import { policies as builtinPolicies } from "../Plugin.js"
import type { Allocation, WorkloadRequest } from "../Workload.js"
import { FgdEvaluator, TargetWorkload } from "./fgd.js"
import * as P from "./plugins.js"
import { ClusterState, type HostRecord, resign, type WorkloadRecord } from "./state.js"

export interface EngineOptions {
  readonly seed?: number | undefined
  readonly policy?: string | undefined
  readonly fragmentationClasses?: number | undefined
  readonly fragmentationHalfLife?: number | undefined
  readonly fragmentationWeighting?: "demand" | "count" | undefined
  readonly filters?: ReadonlyArray<FilterPlugin> | undefined
  readonly scorers?: ReadonlyArray<ScorePlugin> | undefined
  readonly policies?: Readonly<Record<string, Policy>> | undefined
  readonly top?: number | undefined
}

export interface DecideOptions {
  readonly policy?: string | undefined
  /** List removed host ids per filter. */
  readonly explain?: boolean | undefined
  /** How many ranked hosts to keep (default: the engine's `top`). */
  readonly top?: number | undefined
}

export interface Evaluation {
  readonly requirement: Requirement
  readonly policy: Policy
  readonly explanation: Explanation
}

const finiteNonNeg = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x) && x >= 0

const usage = (h: HostRecord): HostUsage => ({
  id: h.id,
  cpuMilli: h.cpuCap,
  cpuFree: h.cpuFree,
  memoryMib: h.memCap,
  memoryFree: h.memFree,
  gpuModel: h.modelName,
  gpuFree: Array.from(h.gpuFree),
  workloads: h.workloads.size,
  schedulable: h.schedulable,
})

const toAllocation = (w: WorkloadRecord): Allocation => ({
  workload: w.id,
  host: w.host.id,
  cpuMilli: w.cpu,
  memoryMib: w.mem,
  gpus: Array.from(w.gpuIndex, (index, i) => ({ index, milli: w.gpuMilli[i]! })),
})

export class Engine {
  readonly state = new ClusterState()
  private readonly seed: number
  private readonly defaultPolicy: string
  private readonly top: number
  private readonly target: TargetWorkload
  private readonly fgd = new FgdEvaluator()
  private readonly filters: ReadonlyArray<FilterPlugin>
  private readonly scorers = new Map<string, ScorePlugin>()
  private readonly policies: Record<string, Policy>
  private readonly view: ClusterView
  // Scratch, grown with the host count and reused by every decision.
  private feasible = new Int32Array(0)
  private totals = new Float64Array(0)
  private raw: Array<Float64Array> = []
  private active: Array<FilterPlugin> = []
  private removed = new Int32Array(0)

  constructor(options: EngineOptions = {}) {
    this.seed = options.seed ?? 0
    this.top = options.top ?? 5
    this.policies = { ...builtinPolicies, ...options.policies }
    this.defaultPolicy = options.policy ?? "fragmentation"
    this.target = new TargetWorkload(
      options.fragmentationClasses ?? 64,
      options.fragmentationHalfLife ?? 10_000,
      options.fragmentationWeighting ?? "demand",
    )
    const state = this.state
    this.filters = [
      P.Schedulable(),
      P.NodeSelector(),
      P.GpuModel(),
      P.Resources(),
      P.GpuFit(),
      P.Affinity(),
      P.AntiAffinity(() => {
        const out: Array<WorkloadRecord> = []
        for (const id of state.withAnti) out.push(state.workloads.get(id)!)
        return out
      }),
      P.Spread(),
      ...(options.filters ?? []),
    ]
    this.removed = new Int32Array(this.filters.length)
    const target = this.target
    for (const s of [
      P.MostAllocated(),
      P.LeastAllocated(),
      P.BalancedAllocation(),
      P.SelectorSpread(),
      P.NetworkProximity(),
      P.Fragmentation(this.fgd, () => target.compile(state)),
      ...(options.scorers ?? []),
    ])
      this.scorers.set(s.name, s)
    this.view = {
      get live() {
        return state.live
      },
      workloadsMatching: (sel) => state.select(sel),
      workloadHost: (id) => state.workloads.get(id)?.host,
      distance: (a, b) => state.distance(a as HostRecord, b as HostRecord),
    }
  }

  // ---- topology -------------------------------------------------------------------------------

  private validateHost(spec: HostSpec): InvalidSpec | undefined {
    if (typeof spec.id !== "string" || spec.id === "")
      return new InvalidSpec({ id: String(spec.id), reason: "empty id" })
    if (!finiteNonNeg(spec.cpuMilli) || !finiteNonNeg(spec.memoryMib))
      return new InvalidSpec({ id: spec.id, reason: "cpu and memory must be finite and >= 0" })
    const n = spec.gpu?.count ?? 0
    if (!Number.isInteger(n) || n < 0 || n > 64)
      return new InvalidSpec({ id: spec.id, reason: "gpu count must be 0..64" })
    if (n > 0 && !spec.gpu?.model) return new InvalidSpec({ id: spec.id, reason: "gpus need a model" })
    return undefined
  }

  private grow(): void {
    const cap = this.state.hosts.length
    if (this.feasible.length >= cap) return
    const size = Math.max(64, cap * 2)
    this.feasible = new Int32Array(size)
    this.totals = new Float64Array(size)
    this.raw = this.raw.map(() => new Float64Array(size))
  }

  join(spec: HostSpec): Either.Either<HostUsage, InvalidSpec | DuplicateHost> {
    const invalid = this.validateHost(spec)
    if (invalid) return Either.left(invalid)
    const s = this.state
    if (s.byId.has(spec.id)) return Either.left(new DuplicateHost({ host: spec.id }))
    const slot = s.freeSlots.pop() ?? s.hosts.length
    const n = spec.gpu?.count ?? 0
    const domains = new Int32Array(4)
    domains[0] = slot
    domains[1] = s.domainId(1, spec.domains?.rack)
    domains[2] = s.domainId(2, spec.domains?.zone)
    domains[3] = s.domainId(3, spec.domains?.region)
    const h: HostRecord = {
      slot,
      id: spec.id,
      cpuCap: spec.cpuMilli,
      memCap: spec.memoryMib,
      cpuFree: spec.cpuMilli,
      memFree: spec.memoryMib,
      model: n > 0 ? s.modelId(spec.gpu!.model) : -1,
      modelName: n > 0 ? spec.gpu!.model : undefined,
      gpuFree: new Int32Array(n).fill(1000),
      gpuFreeTotal: n * 1000,
      domains,
      labels: { ...spec.labels },
      schedulable: spec.schedulable ?? true,
      tieRank: Hash.string(`${this.seed}:${spec.id}`),
      workloads: new Set(),
      sig: "",
    }
    resign(h)
    s.hosts[slot] = h
    s.byId.set(h.id, h)
    s.rebuildIndexes()
    this.grow()
    return Either.right(usage(h))
  }

  update(spec: HostSpec): Either.Either<HostUsage, InvalidSpec | UnknownHost | CapacityConflict> {
    const invalid = this.validateHost(spec)
    if (invalid) return Either.left(invalid)
    const s = this.state
    const h = s.byId.get(spec.id)
    if (h === undefined) return Either.left(new UnknownHost({ host: spec.id }))
    const cpuUsed = h.cpuCap - h.cpuFree
    const memUsed = h.memCap - h.memFree
    if (spec.cpuMilli < cpuUsed || spec.memoryMib < memUsed)
      return Either.left(new CapacityConflict({ host: h.id, reason: "less cpu or memory than its workloads hold" }))
    const n = spec.gpu?.count ?? 0
    const model = n > 0 ? spec.gpu!.model : undefined
    const busy = Array.from(h.gpuFree, (v, i) => (v < 1000 ? i : -1)).filter((i) => i >= 0)
    if (busy.length > 0 && (model !== h.modelName || busy.some((i) => i >= n)))
      return Either.left(new CapacityConflict({ host: h.id, reason: "a GPU in use would change model or go away" }))
    h.cpuCap = spec.cpuMilli
    h.cpuFree = spec.cpuMilli - cpuUsed
    h.memCap = spec.memoryMib
    h.memFree = spec.memoryMib - memUsed
    if (n !== h.gpuFree.length || model !== h.modelName) {
      const free = new Int32Array(n).fill(1000)
      free.set(h.gpuFree.subarray(0, Math.min(n, h.gpuFree.length)))
      h.gpuFree = free
      h.gpuFreeTotal = free.reduce((a, b) => a + b, 0)
      h.model = model === undefined ? -1 : s.modelId(model)
      h.modelName = model
    }
    h.domains[1] = s.domainId(1, spec.domains?.rack)
    h.domains[2] = s.domainId(2, spec.domains?.zone)
    h.domains[3] = s.domainId(3, spec.domains?.region)
    h.labels = { ...spec.labels }
    h.schedulable = spec.schedulable ?? true
    resign(h)
    s.rebuildIndexes()
    return Either.right(usage(h))
  }

  leave(id: string): Either.Either<ReadonlyArray<Allocation>, UnknownHost> {
    const s = this.state
    const h = s.byId.get(id)
    if (h === undefined) return Either.left(new UnknownHost({ host: id }))
    const evicted: Array<Allocation> = []
    for (const w of [...h.workloads]) {
      evicted.push(toAllocation(s.workloads.get(w)!))
      this.forget(s.workloads.get(w)!)
    }
    s.hosts[h.slot] = undefined
    s.freeSlots.push(h.slot)
    s.byId.delete(id)
    for (const k of [...s.distanceOverride.keys()]) if (k.split("\u0000").includes(id)) s.distanceOverride.delete(k)
    s.rebuildIndexes()
    return Either.right(evicted)
  }

  setDistance(a: string, b: string, distance: number): Either.Either<void, UnknownHost | InvalidSpec> {
    const s = this.state
    for (const id of [a, b]) if (!s.byId.has(id)) return Either.left(new UnknownHost({ host: id }))
    if (!finiteNonNeg(distance))
      return Either.left(new InvalidSpec({ id: `${a}-${b}`, reason: "distance must be >= 0" }))
    s.distanceOverride.set(a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`, distance)
    return Either.right(undefined)
  }

  distance(a: string, b: string): Either.Either<number, UnknownHost> {
    const ha = this.state.byId.get(a)
    const hb = this.state.byId.get(b)
    if (ha === undefined) return Either.left(new UnknownHost({ host: a }))
    if (hb === undefined) return Either.left(new UnknownHost({ host: b }))
    return Either.right(this.state.distance(ha, hb))
  }

  hosts(): ReadonlyArray<HostUsage> {
    return this.state.live.map(usage)
  }

  host(id: string): HostUsage | undefined {
    const h = this.state.byId.get(id)
    return h === undefined ? undefined : usage(h)
  }

  allocation(id: string): Allocation | undefined {
    const w = this.state.workloads.get(id)
    return w === undefined ? undefined : toAllocation(w)
  }

  allocations(): ReadonlyArray<Allocation> {
    return Array.from(this.state.workloads.values(), toAllocation)
  }

  /** Shares of cluster capacity held by workloads. */
  utilisation(): { readonly cpu: number; readonly memory: number; readonly gpu: number } {
    let cpu = 0
    let cpuCap = 0
    let mem = 0
    let memCap = 0
    let gpu = 0
    let gpuCap = 0
    for (const h of this.state.live) {
      cpu += h.cpuCap - h.cpuFree
      cpuCap += h.cpuCap
      mem += h.memCap - h.memFree
      memCap += h.memCap
      gpu += h.gpuFree.length * 1000 - h.gpuFreeTotal
      gpuCap += h.gpuFree.length * 1000
    }
    return { cpu: cpuCap ? cpu / cpuCap : 0, memory: memCap ? mem / memCap : 0, gpu: gpuCap ? gpu / gpuCap : 0 }
  }

  targetWorkload() {
    return this.target.classes()
  }

  // ---- placement ------------------------------------------------------------------------------

  private requirement(req: WorkloadRequest): Either.Either<Requirement, InvalidSpec | DuplicateWorkload> {
    const id = req.id
    if (typeof id !== "string" || id === "") return Either.left(new InvalidSpec({ id: String(id), reason: "empty id" }))
    if (this.state.workloads.has(id)) return Either.left(new DuplicateWorkload({ workload: id }))
    if (!finiteNonNeg(req.cpuMilli) || !finiteNonNeg(req.memoryMib))
      return Either.left(new InvalidSpec({ id, reason: "cpu and memory must be finite and >= 0" }))
    const gpu = req.gpuMilli ?? 0
    if (!Number.isInteger(gpu) || gpu < 0 || (gpu >= 1000 && gpu % 1000 !== 0))
      return Either.left(new InvalidSpec({ id, reason: "gpuMilli must be 0, a share 1..999, or whole GPUs (k*1000)" }))
    for (const t of req.spread ?? [])
      if (!Number.isInteger(t.maxSkew) || t.maxSkew < 1)
        return Either.left(new InvalidSpec({ id, reason: "maxSkew must be an integer >= 1" }))
    let modelMask: Uint8Array | null = null
    if (gpu > 0 && req.gpuModels !== undefined && req.gpuModels.length > 0) {
      modelMask = new Uint8Array(this.state.models.length)
      for (const m of req.gpuModels) {
        const mid = this.state.modelIds.get(m)
        if (mid !== undefined) modelMask[mid] = 1
      }
    }
    return Either.right({
      request: req,
      id,
      cpu: req.cpuMilli,
      mem: req.memoryMib,
      gpu,
      whole: gpu >= 1000 ? gpu / 1000 : 0,
      share: gpu > 0 && gpu < 1000 ? gpu : 0,
      modelMask,
      labels: req.labels ?? {},
      nodeSelector: req.nodeSelector,
      affinity: req.affinity ?? [],
      antiAffinity: req.antiAffinity ?? [],
      spread: req.spread ?? [],
      near: req.near ?? [],
    })
  }

  /** Filters and scores every host; commits nothing. */
  evaluate(
    request: WorkloadRequest,
    options: DecideOptions = {},
  ): Either.Either<Evaluation, InvalidSpec | DuplicateWorkload | UnknownPolicy | Unschedulable> {
    const policyName = options.policy ?? this.defaultPolicy
    const policy = this.policies[policyName]
    if (policy === undefined) return Either.left(new UnknownPolicy({ policy: policyName }))
    const r = this.requirement(request)
    if (Either.isLeft(r)) return Either.left(r.left)
    const req = r.right
    const s = this.state
    this.target.observe({ cpu: req.cpu, mem: req.mem, gpu: req.gpu, models: req.request.gpuModels ?? [] })

    // Filters.
    const filters = this.filters
    const active = this.active
    active.length = 0
    const activeIdx: Array<number> = []
    for (let i = 0; i < filters.length; i++) {
      const f = filters[i]!
      if (f.prepare === undefined || f.prepare(req, this.view)) {
        active.push(f)
        activeIdx.push(i)
      }
    }
    const removed = this.removed
    removed.fill(0)
    const explain = options.explain === true
    const removedHosts: Array<Array<string>> | undefined = explain ? filters.map(() => []) : undefined
    const gpuModelIdx = 2
    // The model index replaces the GpuModel filter for GPU requests: only hosts of an accepted
    // model are visited.
    let candidates: ReadonlyArray<HostRecord> = s.live
    if (req.gpu > 0) {
      let lists = s.gpuHosts
      if (req.modelMask !== null) {
        lists = []
        for (let m = 0; m < s.models.length; m++)
          if (req.modelMask[m] === 1) for (const h of s.byModel[m]!) lists.push(h)
      }
      candidates = lists
      removed[gpuModelIdx] = s.live.length - lists.length
      if (removedHosts !== undefined)
        for (const h of s.live)
          if (!(h.model >= 0 && (req.modelMask === null || req.modelMask[h.model] === 1)))
            removedHosts[gpuModelIdx]!.push(h.id)
    }
    const feasible = this.feasible
    let nf = 0
    outer: for (let c = 0; c < candidates.length; c++) {
      const h = candidates[c]!
      for (let k = 0; k < active.length; k++) {
        if (!active[k]!.filter(h, req)) {
          const fi = activeIdx[k]!
          removed[fi]!++
          if (removedHosts !== undefined) removedHosts[fi]!.push(h.id)
          continue outer
        }
      }
      feasible[nf++] = h.slot
    }
    const filterOutcomes: Array<FilterOutcome> = filters.map((f, i) => ({
      name: f.name,
      removed: removed[i]!,
      ...(removedHosts !== undefined ? { hosts: removedHosts[i] } : {}),
    }))

    // Scores: raw per plugin, min-max normalised to 0..100, weighted.
    const totals = this.totals
    totals.fill(0, 0, nf)
    const used: Array<{ name: string; raw: Float64Array; min: number; max: number }> = []
    for (const { plugin, weight } of policy.scorers) {
      const sp = this.scorers.get(plugin)
      if (sp === undefined || nf === 0) continue
      if (sp.prepare !== undefined && !sp.prepare(req, this.view)) continue
      while (this.raw.length <= used.length) this.raw.push(new Float64Array(this.feasible.length))
      const raw = this.raw[used.length]!
      let min = Number.POSITIVE_INFINITY
      let max = Number.NEGATIVE_INFINITY
      for (let i = 0; i < nf; i++) {
        const v = sp.score(s.hosts[feasible[i]!]!, req)
        raw[i] = v
        if (v < min) min = v
        if (v > max) max = v
      }
      const range = max - min
      for (let i = 0; i < nf; i++) totals[i]! += weight * (range > 1e-12 ? ((raw[i]! - min) / range) * 100 : 100)
      used.push({ name: plugin, raw, min, max })
    }

    // Top hosts, best first; equal totals resolve by the seeded rank.
    const topN = Math.max(1, options.top ?? this.top)
    const best: Array<number> = []
    const better = (i: number, j: number) =>
      totals[i]! > totals[j]! ||
      (totals[i] === totals[j] && s.hosts[feasible[i]!]!.tieRank < s.hosts[feasible[j]!]!.tieRank)
    for (let i = 0; i < nf; i++) {
      if (best.length === topN && !better(i, best[topN - 1]!)) continue
      let at = best.length
      while (at > 0 && better(i, best[at - 1]!)) at--
      best.splice(at, 0, i)
      if (best.length > topN) best.pop()
    }
    const ranking: Array<RankedHost> = best.map((i) => {
      const scores: Record<string, number> = {}
      for (const u of used) {
        const range = u.max - u.min
        scores[u.name] = range > 1e-12 ? ((u.raw[i]! - u.min) / range) * 100 : 100
      }
      return { host: s.hosts[feasible[i]!]!.id, total: totals[i]!, scores }
    })
    const explanation: Explanation = {
      workload: req.id,
      policy: policy.name,
      hosts: s.live.length,
      filters: filterOutcomes,
      feasible: nf,
      ranking,
      chosen: ranking[0]?.host,
    }
    if (nf === 0) return Either.left(new Unschedulable({ workload: req.id, explanation }))
    return Either.right({ requirement: req, policy, explanation })
  }

  /** Places an evaluated request on `hostId` (default: the best ranked host). */
  commit(
    evaluation: Evaluation,
    hostId?: string,
    optimizer?: string,
  ): Either.Either<
    { readonly allocation: Allocation; readonly explanation: Explanation },
    UnknownHost | Unschedulable
  > {
    const s = this.state
    const req = evaluation.requirement
    const target = hostId ?? evaluation.explanation.chosen!
    const h = s.byId.get(target)
    if (h === undefined) return Either.left(new UnknownHost({ host: target }))
    if (s.workloads.has(req.id))
      return Either.left(new Unschedulable({ workload: req.id, explanation: evaluation.explanation }))
    // A host picked outside the ranking must still pass every filter.
    if (!evaluation.explanation.ranking.some((r) => r.host === target)) {
      const ok =
        (req.gpu === 0 || (h.model >= 0 && (req.modelMask === null || req.modelMask[h.model] === 1))) &&
        this.filters.every((f) => (f.prepare === undefined || f.prepare(req, this.view) ? f.filter(h, req) : true))
      if (!ok) return Either.left(new Unschedulable({ workload: req.id, explanation: evaluation.explanation }))
    }
    const gpus = this.pickGpus(h, req, evaluation.policy)
    h.cpuFree -= req.cpu
    h.memFree -= req.mem
    const gpuIndex = new Int32Array(gpus.length)
    const gpuMilli = new Int32Array(gpus.length)
    const each = req.share > 0 ? req.share : 1000
    for (let i = 0; i < gpus.length; i++) {
      gpuIndex[i] = gpus[i]!
      gpuMilli[i] = each
      h.gpuFree[gpus[i]!]! -= each
    }
    h.gpuFreeTotal -= req.gpu
    resign(h)
    const w: WorkloadRecord = {
      id: req.id,
      host: h,
      cpu: req.cpu,
      mem: req.mem,
      gpuIndex,
      gpuMilli,
      labels: { ...req.labels },
      antiAffinity: req.antiAffinity,
    }
    s.workloads.set(w.id, w)
    h.workloads.add(w.id)
    for (const k in w.labels) {
      const key = `${k}=${w.labels[k]}`
      let set = s.labelIndex.get(key)
      if (set === undefined) {
        set = new Set()
        s.labelIndex.set(key, set)
      }
      set.add(w.id)
    }
    if (w.antiAffinity.length > 0) s.withAnti.add(w.id)
    const explanation: Explanation =
      optimizer !== undefined || target !== evaluation.explanation.chosen
        ? { ...evaluation.explanation, chosen: target, optimizer: { name: optimizer ?? "manual", chose: target } }
        : evaluation.explanation
    return Either.right({ allocation: toAllocation(w), explanation })
  }

  /**
   * Growth of `hostId`'s expected GPU fragmentation (milli-GPUs, FGD) if the evaluated request
   * went there, for the workload mix as it stands; undefined for an unknown host.
   */
  fragmentationDelta(evaluation: Evaluation, hostId: string): number | undefined {
    const h = this.state.byId.get(hostId)
    if (h === undefined) return undefined
    const req = evaluation.requirement
    if (req.gpu === 0 && h.gpuFreeTotal === 0) return 0
    return this.fgd.delta(h, req, this.target.compile(this.state))
  }

  place(request: WorkloadRequest, options: DecideOptions = {}) {
    return Either.flatMap(this.evaluate(request, options), (e) => this.commit(e))
  }

  private pickGpus(h: HostRecord, req: Requirement, policy: Policy): Array<number> {
    const free = h.gpuFree
    if (req.gpu === 0) return []
    if (req.whole > 0) {
      const out: Array<number> = []
      for (let i = 0; i < free.length && out.length < req.whole; i++) if (free[i] === 1000) out.push(i)
      return out
    }
    if (policy.gpuPick === "fragmentation") {
      this.fgd.delta(h, req, this.target.compile(this.state))
      if (this.fgd.bestGpu >= 0) return [this.fgd.bestGpu]
    }
    let pick = -1
    for (let i = 0; i < free.length; i++) {
      const v = free[i]!
      if (v < req.share) continue
      if (pick < 0) pick = i
      else if (policy.gpuPick === "loosest" ? v > free[pick]! : v < free[pick]!) pick = i
    }
    return [pick]
  }

  private forget(w: WorkloadRecord): void {
    const s = this.state
    const h = w.host
    h.cpuFree += w.cpu
    h.memFree += w.mem
    for (let i = 0; i < w.gpuIndex.length; i++) {
      h.gpuFree[w.gpuIndex[i]!]! += w.gpuMilli[i]!
      h.gpuFreeTotal += w.gpuMilli[i]!
    }
    resign(h)
    h.workloads.delete(w.id)
    s.workloads.delete(w.id)
    s.withAnti.delete(w.id)
    for (const k in w.labels) {
      const key = `${k}=${w.labels[k]}`
      const set = s.labelIndex.get(key)
      set?.delete(w.id)
      if (set?.size === 0) s.labelIndex.delete(key)
    }
  }

  release(id: string): Either.Either<Allocation, UnknownWorkload> {
    const w = this.state.workloads.get(id)
    if (w === undefined) return Either.left(new UnknownWorkload({ workload: id }))
    const a = toAllocation(w)
    this.forget(w)
    return Either.right(a)
  }
}
