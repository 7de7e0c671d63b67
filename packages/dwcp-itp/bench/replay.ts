// Replays the cluster trace for each policy and for three baselines (random-fit, best-fit,
// dot-product, plugged in as score plugins so they share the filters and the timing path).
// Figures: share of the file's workloads placed in one pass; GPU and CPU allocation when the
// first workload no longer fits (the stream repeats the file until one fails, as the FGD paper
// inflates its traces); GPU allocation when the GPU demand that arrived reaches the cluster's GPU
// capacity (steadier: it does not hinge on one workload); decision latency p50/p99 over every decision, as wall-clock time and as
// process CPU time (the machine is shared: wall-clock tails include time the process was not
// running). Each policy first replays 2,000 workloads on a throwaway scheduler so the JIT is warm.
// A `+ ML optimiser` row is the policy with the optimiser the ML engine serves
// (FragmentationOptimizer: FGD re-ranking of the policy's top 5), called as the placement service
// calls it (evaluate, choose, commit), beside the policy alone in the same run.
import { loadavg } from "node:os"
import { Effect, Either, Option } from "effect"
import { PCGRandom } from "effect/Utils"
import * as FragmentationOptimizer from "../src/FragmentationOptimizer.js"
import type { HostView, Policy, ScorePlugin } from "../src/Plugin.js"
import * as Scheduler from "../src/Scheduler.js"
import { nodes, podLists, pods } from "./trace.js"

const hosts = nodes()
const maxCpu = Math.max(...hosts.map((h) => h.cpuMilli))
const maxMem = Math.max(...hosts.map((h) => h.memoryMib))
const maxGpu = Math.max(...hosts.map((h) => (h.gpu?.count ?? 0) * 1000))

const baselines = (seed: number): { scorers: Array<ScorePlugin>; policies: Record<string, Policy> } => {
  const rng = new PCGRandom(seed)
  // Best-fit: least capacity left after placement, each dimension scaled by the largest host.
  const bestFit: ScorePlugin = {
    name: "BestFit",
    score: (h: HostView, r) =>
      -((h.cpuFree - r.cpu) / maxCpu + (h.memFree - r.mem) / maxMem + (h.gpuFreeTotal - r.gpu) / maxGpu),
  }
  // Dot-product (Tetris-style alignment): the host whose free capacity aligns least with the demand.
  const dot: ScorePlugin = {
    name: "DotProduct",
    score: (h: HostView, r) => {
      const g = h.gpuFree.length * 1000
      return -(
        (r.cpu / h.cpuCap) * (h.cpuFree / h.cpuCap) +
        (r.mem / h.memCap) * (h.memFree / h.memCap) +
        (g > 0 ? (r.gpu / g) * (h.gpuFreeTotal / g) : 0)
      )
    },
  }
  const random: ScorePlugin = { name: "Random", score: () => rng.number() }
  return {
    scorers: [bestFit, dot, random],
    policies: {
      "random-fit": { name: "random-fit", scorers: [{ plugin: "Random", weight: 1 }], gpuPick: "loosest" },
      "best-fit": { name: "best-fit", scorers: [{ plugin: "BestFit", weight: 1 }], gpuPick: "tightest" },
      "dot-product": { name: "dot-product", scorers: [{ plugin: "DotProduct", weight: 1 }], gpuPick: "tightest" },
    },
  }
}

// `fragmentation-count` is the same policy with the paper's weighting of the workload mix (by count
// alone), beside ours (by count times 1 + GPUs), which was chosen after seeing these files.
const ML = " + ML optimiser"
const policyNames = [
  "fragmentation",
  `fragmentation${ML}`,
  "fragmentation-count",
  "binpack",
  `binpack${ML}`,
  "spread",
  "balanced",
  "random-fit",
  "best-fit",
  `best-fit${ML}`,
  "dot-product",
]
const options = (name: string) =>
  name === "fragmentation-count"
    ? { policy: "fragmentation", fragmentationWeighting: "count" as const }
    : { policy: name.replace(ML, "") }

// One decision as the placement service makes it with an optimiser installed.
const optimizer = FragmentationOptimizer.make()
const placeWith = (
  s: Scheduler.Scheduler,
  ml: boolean,
  req: Parameters<Scheduler.Scheduler["place"]>[0],
): ReturnType<Scheduler.Scheduler["place"]> => {
  if (!ml) return s.place(req)
  const ev = s.evaluate(req)
  if (Either.isLeft(ev)) return Either.left(ev.left)
  const pick = Effect.runSync(
    optimizer.choose(req, ev.right.explanation.ranking, {
      fragmentationDelta: (h) => s.fragmentationDelta(ev.right, h),
    }),
  )
  return Option.isSome(pick) ? s.commit(ev.right, pick.value, optimizer.name) : s.commit(ev.right)
}
const pct = (x: number) => `${(x * 100).toFixed(1)}%`
const quantile = (xs: Float64Array, q: number) => {
  const s = Float64Array.from(xs).sort()
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!
}

const maxPasses = 4
const files = process.argv.slice(2).length > 0 ? process.argv.slice(2) : podLists
for (const file of files) {
  const list = pods(file)
  console.log(
    `\n${file}: ${list.length} workloads, ${hosts.length} hosts, load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}`,
  )
  const results: Array<Record<string, string | number>> = []
  for (const policy of policyNames) {
    const ml = policy.endsWith(ML)
    const warm = Scheduler.make({ seed: 7, ...options(policy), ...baselines(7) })
    for (const h of hosts) warm.join(h)
    for (const p of list.slice(0, 2000)) placeWith(warm, ml, p)
    const s = Scheduler.make({ seed: 42, ...options(policy), ...baselines(42) })
    for (const h of hosts) s.join(h)
    const lat = new Float64Array(list.length * maxPasses)
    const cpu = new Float64Array(list.length * maxPasses)
    let n = 0
    let placedFirstPass = 0
    let failAt: { gpu: number; cpu: number; arrivals: number } | undefined
    let arrivedGpu = 0
    let gpuAtFull: number | undefined
    const gpuCapacity = hosts.reduce((a, h) => a + (h.gpu?.count ?? 0) * 1000, 0)
    for (let pass = 0; pass < maxPasses && (failAt === undefined || gpuAtFull === undefined); pass++) {
      for (const p of list) {
        arrivedGpu += p.gpuMilli ?? 0
        const req = pass === 0 ? p : { ...p, id: `${p.id}#${pass}` }
        const c0 = process.cpuUsage()
        const t0 = performance.now()
        const r = placeWith(s, ml, req)
        lat[n] = performance.now() - t0
        const c = process.cpuUsage(c0)
        cpu[n++] = (c.user + c.system) / 1000
        if (Either.isRight(r)) {
          if (pass === 0) placedFirstPass++
        } else if (failAt === undefined) {
          const u = s.utilisation()
          failAt = { gpu: u.gpu, cpu: u.cpu, arrivals: n }
        }
        if (gpuAtFull === undefined && arrivedGpu >= gpuCapacity) gpuAtFull = s.utilisation().gpu
      }
    }
    const l = lat.subarray(0, n)
    const cl = cpu.subarray(0, n)
    results.push({
      policy,
      placed: placedFirstPass / list.length,
      gpuAtFail: failAt?.gpu ?? Number.NaN,
      cpuAtFail: failAt?.cpu ?? Number.NaN,
      arrivals: failAt?.arrivals ?? Number.NaN,
      gpuAtFull: gpuAtFull ?? Number.NaN,
      p50: quantile(l, 0.5),
      p99: quantile(l, 0.99),
      cpu50: quantile(cl, 0.5),
      cpu99: quantile(cl, 0.99),
      decisions: n,
    })
  }
  const base = (name: string) => results.find((r) => r.policy === name)!
  console.log(
    "policy                         placed  GPU@fail  CPU@fail  1st-fail  GPU@100%  wall p50/p99 ms  cpu p50/p99 ms  GPU@fail vs best-fit  vs dot-product  GPU@100% vs best-fit  vs dot-product  cpu p99 vs best-fit  (+ML rows: vs the policy alone)",
  )
  for (const r of results) {
    console.log(
      [
        String(r.policy).padEnd(29),
        pct(r.placed as number).padStart(6),
        pct(r.gpuAtFail as number).padStart(9),
        pct(r.cpuAtFail as number).padStart(9),
        String(r.arrivals).padStart(9),
        pct(r.gpuAtFull as number).padStart(9),
        `${(r.p50 as number).toFixed(3)}/${(r.p99 as number).toFixed(3)}`.padStart(16),
        `${(r.cpu50 as number).toFixed(3)}/${(r.cpu99 as number).toFixed(3)}`.padStart(15),
        `x${((r.gpuAtFail as number) / (base("best-fit").gpuAtFail as number)).toFixed(3)}`.padStart(21),
        `x${((r.gpuAtFail as number) / (base("dot-product").gpuAtFail as number)).toFixed(3)}`.padStart(15),
        `x${((r.gpuAtFull as number) / (base("best-fit").gpuAtFull as number)).toFixed(3)}`.padStart(21),
        `x${((r.gpuAtFull as number) / (base("dot-product").gpuAtFull as number)).toFixed(3)}`.padStart(15),
        `x${((r.cpu99 as number) / (base("best-fit").cpu99 as number)).toFixed(2)}`.padStart(20),
        ...(String(r.policy).endsWith(ML)
          ? [
              `alone: GPU@fail x${((r.gpuAtFail as number) / (base(String(r.policy).replace(ML, "")).gpuAtFail as number)).toFixed(3)}`,
              `GPU@100% x${((r.gpuAtFull as number) / (base(String(r.policy).replace(ML, "")).gpuAtFull as number)).toFixed(3)}`,
              `placed x${((r.placed as number) / (base(String(r.policy).replace(ML, "")).placed as number)).toFixed(3)}`,
              `cpu p99 x${((r.cpu99 as number) / (base(String(r.policy).replace(ML, "")).cpu99 as number)).toFixed(2)}`,
            ]
          : []),
      ].join(" "),
    )
  }
}
