/**
 * Boot kernel benchmarks (run: `pnpm --filter @novacron/init bench`).
 *
 * 1. Random DAGs of 1,000 components, init times exponential with mean 5 ms: makespan over the
 *    critical-path bound, for the eager scheduler and for level-by-level grouping, on the same DAGs.
 *    Measured twice: in virtual time (TestClock: scheduling decisions only) and in wall-clock time
 *    with real timers (adds timer granularity and framework overhead).
 * 2. 10,000 components that do nothing: kernel overhead per component, beside a baseline that
 *    builds the same 10,000 layers in a plain loop with no kernel.
 */
import { Duration, Effect, Exit, Fiber, Layer, Logger, LogLevel, Scope, TestClock, TestContext } from "effect"
import { Boot, Component, Graph } from "../src/index.js"

const seeded = (seed: number) => () => {
  // mulberry32: a fixed seed gives the same DAGs on every run.
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

// `scale` stretches time for the virtual clock, whose nanosecond reading needs whole milliseconds.
const randomDag = (n: number, seed: number, scale: number) => {
  const rand = seeded(seed)
  const phases = Component.phases
  const components: Array<Component.AnyComponent> = []
  const durations = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    const name = `c${i}`
    const phase = phases[Math.min(3, Math.floor((i / n) * 4))]!
    const deps = new Set<string>()
    const k = Math.floor(rand() * 4)
    for (let d = 0; d < k && i > 0; d++) deps.add(`c${Math.floor(rand() * i)}`)
    const raw = -Math.log(1 - rand()) * 5 * scale
    const ms = scale === 1 ? raw : Math.max(1, Math.round(raw))
    durations.set(name, ms)
    components.push(
      Component.make({
        name,
        phase,
        criticality: "CRITICAL",
        dependencies: [...deps],
        layer: Layer.effectDiscard(Effect.sleep(Duration.millis(ms))),
        expectedDuration: Duration.millis(ms),
      }),
    )
  }
  return { components, durations }
}

const quiet = Logger.minimumLogLevel(LogLevel.None)
const options = {
  phaseTimeouts: { "pre-init": "10 hours", core: "10 hours", services: "10 hours", "post-init": "10 hours" },
} as const

const virtualMakespan = (components: ReadonlyArray<Component.AnyComponent>, strategy: "eager" | "levels") =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const fiber = yield* Effect.fork(Scope.extend(Boot.boot(components, { ...options, strategy }), scope))
    yield* TestClock.adjust("100 hours")
    const exit = yield* Fiber.await(fiber)
    if (Exit.isFailure(exit)) throw new Error(`boot failed: ${String(exit.cause)}`)
    yield* Scope.close(scope, Exit.void)
    return exit.value.report.totalMillis!
  }).pipe(Effect.provide(TestContext.TestContext), Effect.provide(quiet), Effect.runPromise)

// Also returns each component's measured init time: real timers fire late, and the critical path
// of what the components actually took is the bound no scheduler can beat on this run.
const wallMakespan = (components: ReadonlyArray<Component.AnyComponent>, strategy: "eager" | "levels") =>
  Effect.gen(function* () {
    const node = yield* Boot.boot(components, { ...options, strategy })
    const measured = new Map<string, Duration.Duration>()
    for (const r of node.report.components) measured.set(r.name, Duration.millis(r.finishedAt! - r.startedAt!))
    return { makespan: node.report.totalMillis!, measured }
  }).pipe(Effect.scoped, Effect.provide(quiet), Effect.runPromise)

// Baseline: the same DAG on bare setTimeout with a dozen lines of callback scheduling and no
// kernel: what real timers alone allow on this machine.
const timersOnlyMakespan = (dag: ReturnType<typeof randomDag>) =>
  new Promise<number>((resolve) => {
    // Validated before the clock starts, as the kernel's report starts after its own validation.
    const graph = Effect.runSync(Graph.validate(dag.components))
    const t0 = performance.now()
    let p = 0
    const runPhase = () => {
      if (p === Component.phases.length) return resolve(performance.now() - t0)
      const phase = Component.phases[p++]!
      const members = graph.order.filter((n) => graph.components.get(n)!.phase === phase)
      const inPhase = new Set(members)
      const waiting = new Map(
        members.map((n) => [n, graph.components.get(n)!.dependencies.filter((d) => inPhase.has(d)).length]),
      )
      let left = members.length
      const start = (n: string) =>
        setTimeout(() => {
          for (const d of graph.dependents.get(n) ?? []) {
            const w = waiting.get(d)
            if (w === undefined) continue
            waiting.set(d, w - 1)
            if (w === 1) start(d)
          }
          if (--left === 0) runPhase()
        }, dag.durations.get(n)!)
      if (members.length === 0) runPhase()
      else for (const n of members) if (waiting.get(n) === 0) start(n)
    }
    runPhase()
  })

const median = (xs: Array<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

const dagBench = async () => {
  console.log("## 1. Random DAGs of 1,000 components, exponential init times (mean 5 ms), 4 phases")
  console.log(
    "seed | bound ms | eager/bound (virtual) | levels/bound (virtual) | eager/bound (wall) | levels/bound (wall) | bare timers/bound (wall) | eager/measured bound (wall) | levels/measured bound (wall)",
  )
  const rows: Array<Array<number>> = []
  for (const seed of [1, 2, 3, 4, 5]) {
    const virtual = randomDag(1000, seed, 1000)
    const wall = randomDag(1000, seed, 1)
    const boundOf = (
      d: ReturnType<typeof randomDag>,
      durations: ReadonlyMap<string, Duration.DurationInput> = d.durations,
    ) => Duration.toMillis(Graph.criticalPath(Effect.runSync(Graph.validate(d.components)), durations).duration)
    const vb = boundOf(virtual)
    const bound = boundOf(wall)
    const ev = (await virtualMakespan(virtual.components, "eager")) / vb
    const lv = (await virtualMakespan(virtual.components, "levels")) / vb
    const eager = await wallMakespan(wall.components, "eager")
    const levels = await wallMakespan(wall.components, "levels")
    const tw = (await timersOnlyMakespan(wall)) / bound
    const ew = eager.makespan / bound
    const lw = levels.makespan / bound
    const em = eager.makespan / boundOf(wall, eager.measured)
    const lm = levels.makespan / boundOf(wall, levels.measured)
    rows.push([ev, lv, ew, lw, tw, em, lm])
    console.log(
      `${seed} | ${bound.toFixed(1)} | ${ev.toFixed(3)} | ${lv.toFixed(3)} | ${ew.toFixed(3)} | ${lw.toFixed(3)} | ${tw.toFixed(3)} | ${em.toFixed(3)} | ${lm.toFixed(3)}`,
    )
  }
  const col = (i: number) => median(rows.map((r) => r[i]!))
  console.log(
    `median | | ${col(0).toFixed(3)} | ${col(1).toFixed(3)} | ${col(2).toFixed(3)} | ${col(3).toFixed(3)} | ${col(4).toFixed(3)} | ${col(5).toFixed(3)} | ${col(6).toFixed(3)}  (target: eager <= 1.02)`,
  )
  console.log(
    `eager on real timers takes ${(col(2) / col(4)).toFixed(2)}x the bare-timer baseline's makespan; against measured durations ${col(5).toFixed(3)}`,
  )
  console.log(
    `levels takes ${(col(1) / col(0)).toFixed(2)}x the eager makespan (virtual), ${(col(3) / col(2)).toFixed(2)}x (wall)`,
  )
}

const overheadBench = async () => {
  const n = 10_000
  const noop = Array.from({ length: n }, (_, i) =>
    Component.make({ name: `n${i}`, phase: "core", criticality: "CRITICAL", layer: Layer.empty }),
  )
  const layers = noop.map((c) => c.layer as Layer.Layer<never>)
  const kernel = () =>
    Effect.gen(function* () {
      const t0 = performance.now()
      const node = yield* Boot.boot(noop)
      const t1 = performance.now()
      yield* node.shutdown
      return t1 - t0
    }).pipe(Effect.scoped, Effect.provide(quiet), Effect.runPromise)
  const baseline = () =>
    Effect.gen(function* () {
      const t0 = performance.now()
      const scope = yield* Scope.make()
      for (const l of layers) yield* Layer.buildWithScope(l, scope)
      const t1 = performance.now()
      yield* Scope.close(scope, Exit.void)
      return t1 - t0
    }).pipe(Effect.provide(quiet), Effect.runPromise)
  for (let i = 0; i < 2; i++) await kernel() // warm-up
  const k: Array<number> = []
  const b: Array<number> = []
  for (let i = 0; i < 7; i++) {
    b.push(await baseline())
    k.push(await kernel())
  }
  const km = median(k)
  const bm = median(b)
  console.log("\n## 2. 10,000 no-op components: overhead per component (median of 7)")
  console.log(
    `kernel boot: ${km.toFixed(1)} ms total, ${((km / n) * 1000).toFixed(2)} µs per component (target <= 10 µs)`,
  )
  console.log(`baseline (plain Layer.buildWithScope loop): ${((bm / n) * 1000).toFixed(2)} µs per component`)
  console.log(`kernel / baseline: ${(km / bm).toFixed(2)}x`)
}

await dagBench()
await overheadBench()
