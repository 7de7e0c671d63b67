/**
 * What a boot would do, before it does it: the phases in order, each component with its
 * criticality, dependency level and dependencies, and the critical chain. A host prints it for
 * `start --dry-run`; nothing is started.
 *
 * @since 0.2.0
 */
import { Duration } from "effect"
import type { Criticality, Phase } from "./Component.js"
import { phases } from "./Component.js"
import * as Graph from "./Graph.js"

/**
 * One component in the plan.
 *
 * @since 0.2.0
 * @category models
 */
export interface PlannedComponent {
  readonly name: string
  readonly criticality: Criticality
  /** Dependency level (0: no dependencies), counted across phases. */
  readonly level: number
  readonly dependencies: ReadonlyArray<string>
  /** The component's `expectedDuration`, when it declares one. */
  readonly expectedMillis: number | null
  readonly description: string | null
}

/**
 * The plan of a validated graph.
 *
 * @since 0.2.0
 * @category models
 */
export interface BootPlan {
  readonly phases: ReadonlyArray<{ readonly phase: Phase; readonly components: ReadonlyArray<PlannedComponent> }>
  /**
   * The longest chain by expected start time, phases in order. A component without an
   * `expectedDuration` counts as a hair above zero, so among those the deepest chain wins.
   */
  readonly criticalChain: { readonly path: ReadonlyArray<string>; readonly expectedMillis: number }
}

// Enough to make depth break ties between unknown durations, too small to show in a total.
const unknownMillis = 1e-6

/**
 * The plan of a graph, in its start order.
 *
 * @example
 * ```ts
 * import { BootPlan, Component, Graph } from "@novacron/init"
 * import { Effect, Layer } from "effect"
 *
 * const graph = Effect.runSync(
 *   Graph.validate([
 *     Component.make({ name: "security", phase: "core", criticality: "CRITICAL", layer: Layer.empty }),
 *     Component.make({ name: "network", phase: "core", criticality: "CRITICAL", dependencies: ["security"], layer: Layer.empty }),
 *   ]),
 * )
 * console.log(BootPlan.render(BootPlan.make(graph)))
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (graph: Graph.Graph): BootPlan => {
  const expected = (name: string): number | null => {
    const d = graph.components.get(name)!.expectedDuration
    return d === undefined ? null : Duration.toMillis(Duration.decode(d))
  }
  const durations = new Map<string, Duration.DurationInput>()
  for (const name of graph.order) durations.set(name, Duration.millis(expected(name) ?? unknownMillis))
  const chain = Graph.criticalPath(graph, durations)
  return {
    phases: phases
      .map((phase) => ({
        phase,
        components: graph.order
          .map((name) => graph.components.get(name)!)
          .filter((c) => c.phase === phase)
          .map((c) => ({
            name: c.name,
            criticality: c.criticality,
            level: graph.level.get(c.name)!,
            dependencies: c.dependencies,
            expectedMillis: expected(c.name),
            description: c.description ?? null,
          })),
      }))
      .filter((p) => p.components.length > 0),
    criticalChain: {
      path: chain.path,
      expectedMillis: chain.path.reduce((sum, name) => sum + (expected(name) ?? 0), 0),
    },
  }
}

/**
 * The plan for people: one block per phase, one line per component, then the critical chain.
 *
 * @since 0.2.0
 * @category rendering
 */
export const render = (
  plan: BootPlan,
  options: { readonly phaseTimeouts?: Partial<Record<Phase, Duration.DurationInput>> } = {},
): string => {
  const lines: Array<string> = []
  const width = Math.max(9, ...plan.phases.flatMap((p) => p.components.map((c) => c.name.length)))
  for (const { phase, components } of plan.phases) {
    const timeout = options.phaseTimeouts?.[phase]
    lines.push(`${phase}${timeout === undefined ? "" : ` (timeout ${Duration.format(Duration.decode(timeout))})`}`)
    for (const c of components) {
      const after = c.dependencies.length > 0 ? `  after ${c.dependencies.join(", ")}` : ""
      const ms = c.expectedMillis === null ? "" : `  ~${c.expectedMillis} ms`
      lines.push(`  ${c.name.padEnd(width)}  ${c.criticality.padEnd(8)}  level ${c.level}${after}${ms}`)
    }
  }
  lines.push(
    "",
    `critical chain: ${plan.criticalChain.path.join(" -> ")} (${plan.criticalChain.expectedMillis} ms expected; components without an expected time count as 0)`,
  )
  return lines.join("\n")
}
