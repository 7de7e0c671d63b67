/**
 * The component graph, validated before anything starts: names unique, dependencies known and in
 * the same or an earlier phase, no cycles. Kahn's algorithm gives a start order in which every
 * component comes after all of its dependencies, and the dependency levels.
 *
 * @since 0.1.0
 */
import { Data, Duration, Effect } from "effect"
import type { AnyComponent, Phase } from "./Component.js"
import { phases } from "./Component.js"

/**
 * One problem found in the graph.
 *
 * @since 0.1.0
 */
export type GraphIssue =
  | { readonly _tag: "DuplicateName"; readonly name: string }
  | { readonly _tag: "UnknownDependency"; readonly component: string; readonly dependency: string }
  | {
      readonly _tag: "LaterPhaseDependency"
      readonly component: string
      readonly phase: Phase
      readonly dependency: string
      readonly dependencyPhase: Phase
    }
  | { readonly _tag: "Cycle"; readonly path: ReadonlyArray<string> }

/**
 * Renders one issue as a sentence.
 *
 * @since 0.1.0
 */
export const formatIssue = (issue: GraphIssue): string => {
  switch (issue._tag) {
    case "DuplicateName":
      return `duplicate component name "${issue.name}"`
    case "UnknownDependency":
      return `component "${issue.component}" depends on unknown component "${issue.dependency}"`
    case "LaterPhaseDependency":
      return `component "${issue.component}" (${issue.phase}) depends on "${issue.dependency}" of the later phase ${issue.dependencyPhase}`
    case "Cycle":
      return `dependency cycle: ${issue.path.join(" -> ")}`
  }
}

/**
 * Every problem in the graph, found at once.
 *
 * @since 0.1.0
 */
export class GraphError extends Data.TaggedError("GraphError")<{ readonly issues: ReadonlyArray<GraphIssue> }> {
  override get message(): string {
    return `invalid component graph:\n${this.issues.map((i) => `  - ${formatIssue(i)}`).join("\n")}`
  }
}

/**
 * A validated graph.
 *
 * @since 0.1.0
 */
export interface Graph {
  readonly components: ReadonlyMap<string, AnyComponent>
  /** Kahn order: every component after all of its dependencies, phases in order. */
  readonly order: ReadonlyArray<string>
  /** Dependency level of each component (0: no dependencies), counted across phases. */
  readonly level: ReadonlyMap<string, number>
  /** Components that depend directly on each component. */
  readonly dependents: ReadonlyMap<string, ReadonlyArray<string>>
}

const phaseIndex = (p: Phase): number => phases.indexOf(p)

/**
 * Checks names, dependencies and phases, then sorts with Kahn's algorithm; a cycle is reported
 * with its path (`a -> b -> c -> a`).
 *
 * @since 0.1.0
 */
export const validate = (components: Iterable<AnyComponent>): Effect.Effect<Graph, GraphError> =>
  Effect.suspend(() => {
    const issues: Array<GraphIssue> = []
    const byName = new Map<string, AnyComponent>()
    const list: Array<AnyComponent> = []
    for (const c of components) {
      if (byName.has(c.name)) {
        issues.push({ _tag: "DuplicateName", name: c.name })
        continue
      }
      byName.set(c.name, c)
      list.push(c)
    }
    for (const c of list) {
      for (const d of c.dependencies) {
        const dep = byName.get(d)
        if (dep === undefined) issues.push({ _tag: "UnknownDependency", component: c.name, dependency: d })
        else if (phaseIndex(dep.phase) > phaseIndex(c.phase))
          issues.push({
            _tag: "LaterPhaseDependency",
            component: c.name,
            phase: c.phase,
            dependency: d,
            dependencyPhase: dep.phase,
          })
      }
    }
    // Kahn: an edge runs from a dependency to its dependent, so dependencies come out first.
    const indegree = new Map<string, number>()
    const dependents = new Map<string, Array<string>>()
    for (const c of list) {
      dependents.set(c.name, [])
      indegree.set(c.name, 0)
    }
    for (const c of list) {
      for (const d of new Set(c.dependencies)) {
        if (!byName.has(d)) continue
        dependents.get(d)!.push(c.name)
        indegree.set(c.name, indegree.get(c.name)! + 1)
      }
    }
    // Ready components are taken phase by phase, then in declaration order, so the order is stable.
    const ready: Array<Array<string>> = phases.map(() => [])
    for (const c of list) if (indegree.get(c.name) === 0) ready[phaseIndex(c.phase)]!.push(c.name)
    const order: Array<string> = []
    const level = new Map<string, number>()
    for (let p = 0; p < phases.length; p++) {
      const queue = ready[p]!
      for (let i = 0; i < queue.length; i++) {
        const name = queue[i]!
        order.push(name)
        const c = byName.get(name)!
        let lv = 0
        for (const d of c.dependencies) {
          const dl = level.get(d)
          if (dl !== undefined && dl + 1 > lv) lv = dl + 1
        }
        level.set(name, lv)
        for (const dependent of dependents.get(name)!) {
          const left = indegree.get(dependent)! - 1
          indegree.set(dependent, left)
          if (left === 0) ready[phaseIndex(byName.get(dependent)!.phase)]!.push(dependent)
        }
      }
    }
    if (order.length < list.length) {
      for (const path of findCycles(list, byName, new Set(order))) issues.push({ _tag: "Cycle", path })
    }
    if (issues.length > 0) return Effect.fail(new GraphError({ issues }))
    return Effect.succeed<Graph>({ components: byName, order, level, dependents })
  })

// Depth-first search over what Kahn could not order; each cycle is reported once, starting at
// its first component in declaration order.
const findCycles = (
  list: ReadonlyArray<AnyComponent>,
  byName: ReadonlyMap<string, AnyComponent>,
  ordered: ReadonlySet<string>,
): Array<Array<string>> => {
  const cycles: Array<Array<string>> = []
  const state = new Map<string, "open" | "done">()
  const stack: Array<string> = []
  const visit = (name: string): void => {
    state.set(name, "open")
    stack.push(name)
    for (const d of byName.get(name)!.dependencies) {
      if (!byName.has(d) || ordered.has(d)) continue
      const s = state.get(d)
      if (s === "open") cycles.push([...stack.slice(stack.indexOf(d)), d])
      else if (s === undefined) visit(d)
    }
    stack.pop()
    state.set(name, "done")
  }
  for (const c of list) if (!ordered.has(c.name) && !state.has(c.name)) visit(c.name)
  return cycles
}

/**
 * The components of each dependency level, in order: what level-by-level scheduling starts together.
 *
 * @since 0.1.0
 */
export const levels = (graph: Graph): ReadonlyArray<ReadonlyArray<string>> => {
  const out: Array<Array<string>> = []
  for (const name of graph.order) {
    const lv = graph.level.get(name)!
    while (out.length <= lv) out.push([])
    out[lv]!.push(name)
  }
  return out
}

/**
 * The longest chain of dependencies by duration: no scheduler can finish sooner than its length.
 *
 * @since 0.1.0
 */
export interface CriticalPath {
  readonly path: ReadonlyArray<string>
  readonly duration: Duration.Duration
}

/**
 * Critical path from durations (measured, else each component's `expectedDuration`, else zero).
 * Phases run in order, so a component also waits for every component of earlier phases: the
 * bound is the sum over phases of each phase's longest chain.
 *
 * @since 0.1.0
 */
export const criticalPath = (graph: Graph, durations?: ReadonlyMap<string, Duration.DurationInput>): CriticalPath => {
  const millis = (name: string): number => {
    const d = durations?.get(name) ?? graph.components.get(name)!.expectedDuration
    return d === undefined ? 0 : Duration.toMillis(Duration.decode(d))
  }
  const path: Array<string> = []
  let total = 0
  for (const phase of phases) {
    const finish = new Map<string, number>()
    const via = new Map<string, string | undefined>()
    let last: string | undefined
    for (const name of graph.order) {
      const c = graph.components.get(name)!
      if (c.phase !== phase) continue
      let start = 0
      let from: string | undefined
      for (const d of c.dependencies) {
        const f = finish.get(d)
        if (f !== undefined && f > start) {
          start = f
          from = d
        }
      }
      const end = start + millis(name)
      finish.set(name, end)
      via.set(name, from)
      if (last === undefined || end > finish.get(last)!) last = name
    }
    if (last === undefined) continue
    total += finish.get(last)!
    const chain: Array<string> = []
    for (let n: string | undefined = last; n !== undefined; n = via.get(n)) chain.push(n)
    path.push(...chain.reverse())
  }
  return { path, duration: Duration.millis(total) }
}
