import type { ClusterView, FilterPlugin, HostView, Requirement, ScorePlugin } from "../Plugin.js"
import type { Compiled, FgdEvaluator } from "./fgd.js"
import { LEVEL_INDEX, matches } from "./state.js"

export const Schedulable = (): FilterPlugin => ({ name: "Schedulable", filter: (h) => h.schedulable })

export const NodeSelector = (): FilterPlugin => ({
  name: "NodeSelector",
  prepare: (req) => req.nodeSelector !== undefined && Object.keys(req.nodeSelector).length > 0,
  filter: (h, req) => matches(h.labels, req.nodeSelector!),
})

/** Hosts with no GPU of an acceptable model (the scheduler skips most of them via its model index). */
export const GpuModel = (): FilterPlugin => ({
  name: "GpuModel",
  prepare: (req) => req.gpu > 0,
  filter: (h, req) => h.model >= 0 && (req.modelMask === null || req.modelMask[h.model] === 1),
})

export const Resources = (): FilterPlugin => ({
  name: "Resources",
  filter: (h, req) => h.cpuFree >= req.cpu && h.memFree >= req.mem,
})

export const GpuFit = (): FilterPlugin => ({
  name: "GpuFit",
  prepare: (req) => req.gpu > 0,
  filter: (h, req) => {
    const free = h.gpuFree
    if (req.share > 0) {
      for (let i = 0; i < free.length; i++) if (free[i]! >= req.share) return true
      return false
    }
    let idle = 0
    for (let i = 0; i < free.length; i++) if (free[i] === 1000) idle++
    return idle >= req.whole
  },
})

export const Affinity = (): FilterPlugin => {
  let terms: Array<{ level: number; domains: Set<number> }> = []
  return {
    name: "Affinity",
    prepare: (req, cluster) => {
      terms = req.affinity.map((t) => {
        const level = LEVEL_INDEX[t.level]
        const domains = new Set<number>()
        for (const w of cluster.workloadsMatching(t.selector)) domains.add(w.host.domains[level]!)
        return { level, domains }
      })
      return terms.length > 0
    },
    filter: (h) => {
      for (const t of terms) {
        const d = h.domains[t.level]!
        if (d < 0 || !t.domains.has(d)) return false
      }
      return true
    },
  }
}

/**
 * The request's anti-affinity terms, and symmetrically the terms of running workloads that
 * match the request's labels (as Kubernetes does): both forbid domains.
 */
export const AntiAffinity = (
  withAnti: () => Iterable<{ host: HostView; antiAffinity: Requirement["antiAffinity"] }>,
) => {
  const forbidden: Array<Set<number>> = [new Set(), new Set(), new Set(), new Set()]
  // Levels the request's own terms name: a host must have a domain there for them to mean anything.
  const required = new Uint8Array(4)
  const plugin: FilterPlugin = {
    name: "AntiAffinity",
    prepare: (req, cluster) => {
      for (const s of forbidden) s.clear()
      required.fill(0)
      let any = false
      for (const t of req.antiAffinity) {
        any = true
        const level = LEVEL_INDEX[t.level]
        required[level] = 1
        for (const w of cluster.workloadsMatching(t.selector)) forbidden[level]!.add(w.host.domains[level]!)
      }
      for (const w of withAnti()) {
        for (const t of w.antiAffinity) {
          if (!matches(req.labels, t.selector)) continue
          any = true
          const level = LEVEL_INDEX[t.level]
          forbidden[level]!.add(w.host.domains[level]!)
        }
      }
      return any
    },
    filter: (h, req) => {
      for (let level = 0; level < 4; level++) {
        const f = forbidden[level]!
        if (f.size === 0 && required[level] === 0) continue
        const d = h.domains[level]!
        // Unknown domain: separation cannot be shown.
        if (d < 0 || f.has(d)) return false
      }
      void req
      return true
    },
  }
  return plugin
}

export const Spread = (): FilterPlugin => {
  let terms: Array<{ level: number; maxSkew: number; counts: Map<number, number>; min: number }> = []
  return {
    name: "Spread",
    prepare: (req, cluster) => {
      terms = req.spread.map((t) => {
        const level = LEVEL_INDEX[t.level]
        const counts = new Map<number, number>()
        for (const w of cluster.workloadsMatching(t.selector ?? req.labels)) {
          const d = w.host.domains[level]!
          if (d >= 0) counts.set(d, (counts.get(d) ?? 0) + 1)
        }
        // The minimum runs over every domain that has a schedulable host.
        let min = Number.POSITIVE_INFINITY
        for (const h of cluster.live) {
          if (!h.schedulable) continue
          const d = h.domains[level]!
          if (d >= 0) min = Math.min(min, counts.get(d) ?? 0)
        }
        return { level, maxSkew: t.maxSkew, counts, min: Number.isFinite(min) ? min : 0 }
      })
      return terms.length > 0
    },
    filter: (h) => {
      for (const t of terms) {
        const d = h.domains[t.level]!
        if (d < 0) return false
        if ((t.counts.get(d) ?? 0) + 1 - t.min > t.maxSkew) return false
      }
      return true
    },
  }
}

/** Mean utilisation over CPU, memory and (on GPU hosts) GPU after placing the request. */
const utilisation = (h: HostView, req: Requirement): number => {
  let u = 0
  let n = 0
  if (h.cpuCap > 0) {
    u += (h.cpuCap - h.cpuFree + req.cpu) / h.cpuCap
    n++
  }
  if (h.memCap > 0) {
    u += (h.memCap - h.memFree + req.mem) / h.memCap
    n++
  }
  const gpus = h.gpuFree.length
  if (gpus > 0) {
    u += (gpus * 1000 - h.gpuFreeTotal + req.gpu) / (gpus * 1000)
    n++
  }
  return n === 0 ? 0 : u / n
}

export const MostAllocated = (): ScorePlugin => ({ name: "MostAllocated", score: utilisation })

export const LeastAllocated = (): ScorePlugin => ({ name: "LeastAllocated", score: (h, r) => -utilisation(h, r) })

export const BalancedAllocation = (): ScorePlugin => ({
  name: "BalancedAllocation",
  score: (h, req) => {
    const c = h.cpuCap > 0 ? (h.cpuCap - h.cpuFree + req.cpu) / h.cpuCap : 0
    const m = h.memCap > 0 ? (h.memCap - h.memFree + req.mem) / h.memCap : 0
    const gpus = h.gpuFree.length
    if (gpus === 0) return -Math.abs(c - m) / 2
    const g = (gpus * 1000 - h.gpuFreeTotal + req.gpu) / (gpus * 1000)
    const mean = (c + m + g) / 3
    return -Math.sqrt(((c - mean) ** 2 + (m - mean) ** 2 + (g - mean) ** 2) / 3)
  },
})

export const SelectorSpread = (): ScorePlugin => {
  const perHost = new Map<number, number>()
  return {
    name: "SelectorSpread",
    prepare: (req, cluster) => {
      perHost.clear()
      if (Object.keys(req.labels).length === 0) return false
      for (const w of cluster.workloadsMatching(req.labels))
        perHost.set(w.host.slot, (perHost.get(w.host.slot) ?? 0) + 1)
      return perHost.size > 0
    },
    score: (h) => -(perHost.get(h.slot) ?? 0),
  }
}

export const NetworkProximity = (): ScorePlugin => {
  let peers: Array<HostView> = []
  let cluster: ClusterView | undefined
  return {
    name: "NetworkProximity",
    prepare: (req, c) => {
      cluster = c
      peers = []
      for (const id of req.near) {
        const h = c.workloadHost(id)
        if (h !== undefined) peers.push(h)
      }
      return peers.length > 0
    },
    score: (h) => {
      let d = 0
      for (const p of peers) d += cluster!.distance(h, p)
      return -d / peers.length
    },
  }
}

/** Hosts in the same state score alike, so each distinct state is evaluated once per decision. */
export const Fragmentation = (fgd: FgdEvaluator, compiled: () => Compiled): ScorePlugin => {
  let c: Compiled | undefined
  const memo = new Map<string, number>()
  return {
    name: "Fragmentation",
    prepare: () => {
      c = compiled()
      memo.clear()
      return true
    },
    score: (h, req) => {
      // No free GPU and no GPU asked for: nothing to fragment, skip the memo lookup.
      if (req.gpu === 0 && h.gpuFreeTotal === 0) return 0
      let v = memo.get(h.sig)
      if (v === undefined) {
        v = -fgd.delta(h, req, c!)
        memo.set(h.sig, v)
      }
      return v
    },
  }
}
