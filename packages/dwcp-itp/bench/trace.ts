// Reads the Alibaba "openb" cluster trace (../shared/data/cluster-trace relative to the repo root).
import { readFileSync } from "node:fs"
import { join } from "node:path"
import type { HostSpec } from "../src/Host.js"
import type { WorkloadRequest } from "../src/Workload.js"

export const traceDir = join(import.meta.dirname, "../../../../shared/data/cluster-trace")

const rows = (file: string): Array<Record<string, string>> => {
  const [head, ...lines] = readFileSync(join(traceDir, file), "utf8").trim().split("\n")
  const cols = head!.split(",")
  return lines.map((l) => {
    const cells = l.split(",")
    return Object.fromEntries(cols.map((c, i) => [c, cells[i] ?? ""]))
  })
}

export const nodes = (): Array<HostSpec> =>
  rows("openb_node_list_all_node.csv").map((r) => ({
    id: r.sn!,
    cpuMilli: Number(r.cpu_milli),
    memoryMib: Number(r.memory_mib),
    gpu: Number(r.gpu) > 0 ? { model: r.model!, count: Number(r.gpu) } : undefined,
  }))

/** Workloads in creation order (ties keep file order). */
export const pods = (file: string): Array<WorkloadRequest & { readonly created: number; readonly deleted: number }> =>
  rows(file)
    .map((r, i) => {
      const n = Number(r.num_gpu)
      const milli = Number(r.gpu_milli)
      return {
        id: r.name!,
        cpuMilli: Number(r.cpu_milli),
        memoryMib: Number(r.memory_mib),
        gpuMilli: n === 0 ? 0 : n === 1 && milli < 1000 ? milli : n * 1000,
        gpuModels: r.gpu_spec ? r.gpu_spec.split("|") : [],
        created: Number(r.creation_time),
        deleted: Number(r.deletion_time),
        i,
      }
    })
    .sort((a, b) => a.created - b.created || a.i - b.i)
    .map(({ i: _, ...p }) => p)

export const podLists = ["openb_pod_list_default.csv", "openb_pod_list_cpu050.csv", "openb_pod_list_gpushare40.csv"]
