import type { AffinityTerm, Selector } from "../Workload.js"

/** Level index: 0 host, 1 rack, 2 zone, 3 region. */
export const LEVEL_INDEX = { host: 0, rack: 1, zone: 2, region: 3 } as const

/** One host; fields are mutated in place so a decision allocates nothing per host. */
export interface HostRecord {
  readonly slot: number
  readonly id: string
  cpuCap: number
  memCap: number
  cpuFree: number
  memFree: number
  /** Interned model id, -1 without GPUs. */
  model: number
  modelName: string | undefined
  gpuFree: Int32Array
  gpuFreeTotal: number
  /** Domain ids by level (host = slot); -1 unknown. */
  readonly domains: Int32Array
  labels: Selector
  schedulable: boolean
  /** Seeded tie-break rank: equal scores resolve the same way for the same seed. */
  readonly tieRank: number
  readonly workloads: Set<string>
  /** State signature (model, free CPU, memory, sorted free GPUs): equal signatures score alike. */
  sig: string
}

/** Recomputes a host's signature; call after every change of its free capacity. */
export const resign = (h: HostRecord): void => {
  h.sig = `${h.model}|${h.cpuFree}|${h.memFree}|${Array.from(h.gpuFree)
    .sort((a, b) => a - b)
    .join(",")}`
}

export interface WorkloadRecord {
  readonly id: string
  readonly host: HostRecord
  readonly cpu: number
  readonly mem: number
  readonly gpuIndex: Int32Array
  readonly gpuMilli: Int32Array
  readonly labels: Selector
  readonly antiAffinity: ReadonlyArray<AffinityTerm>
}

export const matches = (labels: Selector, selector: Selector): boolean => {
  for (const k in selector) if (labels[k] !== selector[k]) return false
  return true
}

/** Mutable cluster state owned by one scheduler instance. */
export class ClusterState {
  readonly hosts: Array<HostRecord | undefined> = []
  /** Live hosts, in join order (rebuilt on join/leave, which are rare next to decisions). */
  live: Array<HostRecord> = []
  readonly byId = new Map<string, HostRecord>()
  readonly freeSlots: Array<number> = []
  readonly models: Array<string> = []
  readonly modelIds = new Map<string, number>()
  /** Live hosts by GPU model id, and all live hosts with GPUs. */
  byModel: Array<Array<HostRecord>> = []
  gpuHosts: Array<HostRecord> = []
  /** Interned domain values for rack, zone, region (index 1..3). */
  readonly domainIds: Array<Map<string, number>> = [new Map(), new Map(), new Map(), new Map()]
  readonly domainNames: Array<Array<string>> = [[], [], [], []]
  readonly workloads = new Map<string, WorkloadRecord>()
  /** `key=value` -> workload ids carrying that label. */
  readonly labelIndex = new Map<string, Set<string>>()
  /** Workloads that declared anti-affinity (checked symmetrically against newcomers). */
  readonly withAnti = new Set<string>()
  readonly distanceOverride = new Map<string, number>()
  maxGpus = 0
  totalGpuMilli = 0
  totalCpu = 0

  modelId(name: string): number {
    let id = this.modelIds.get(name)
    if (id === undefined) {
      id = this.models.length
      this.models.push(name)
      this.modelIds.set(name, id)
      this.byModel.push([])
    }
    return id
  }

  domainId(level: number, value: string | undefined): number {
    if (value === undefined || value === "") return -1
    const map = this.domainIds[level]!
    let id = map.get(value)
    if (id === undefined) {
      id = map.size
      map.set(value, id)
      this.domainNames[level]!.push(value)
    }
    return id
  }

  rebuildIndexes(): void {
    this.live = this.hosts.filter((h): h is HostRecord => h !== undefined)
    this.byModel = this.models.map(() => [])
    let maxGpus = 0
    let gpu = 0
    let cpu = 0
    for (const h of this.live) {
      if (h.model >= 0) this.byModel[h.model]!.push(h)
      maxGpus = Math.max(maxGpus, h.gpuFree.length)
      gpu += h.gpuFree.length * 1000
      cpu += h.cpuCap
    }
    this.gpuHosts = this.live.filter((h) => h.model >= 0)
    this.maxGpus = maxGpus
    this.totalGpuMilli = gpu
    this.totalCpu = cpu
  }

  /** Workload ids matching a selector, via the smallest label posting list. */
  select(selector: Selector): Array<WorkloadRecord> {
    let smallest: Set<string> | undefined
    for (const k in selector) {
      const set = this.labelIndex.get(`${k}=${selector[k]}`)
      if (set === undefined) return []
      if (smallest === undefined || set.size < smallest.size) smallest = set
    }
    const out: Array<WorkloadRecord> = []
    if (smallest === undefined) {
      for (const w of this.workloads.values()) out.push(w)
      return out
    }
    for (const id of smallest) {
      const w = this.workloads.get(id)!
      if (matches(w.labels, selector)) out.push(w)
    }
    return out
  }

  /** Network distance: a measured override, else the failure-domain hierarchy (0 same host .. 4). */
  distance(a: HostRecord, b: HostRecord): number {
    if (a === b) return 0
    const o = this.distanceOverride.get(a.id < b.id ? `${a.id}\u0000${b.id}` : `${b.id}\u0000${a.id}`)
    if (o !== undefined) return o
    for (let level = 1; level <= 3; level++) {
      const x = a.domains[level]!
      if (x >= 0 && x === b.domains[level]) return level
    }
    return 4
  }
}
