import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Layer } from "effect"
import { Component, Graph } from "../src/index.js"

const c = (name: string, dependencies: Array<string> = [], phase: Component.Phase = "core", ms?: number) =>
  Component.make({ name, phase, criticality: "CRITICAL", dependencies, layer: Layer.empty, expectedDuration: ms })

const issues = (components: Array<Component.AnyComponent>) =>
  Effect.runSync(Effect.either(Graph.validate(components))).pipe(
    Either.match({ onLeft: (e) => e.issues.map(Graph.formatIssue), onRight: () => [] }),
  )

describe("Graph.validate", () => {
  it("orders dependencies before their dependents (Kahn, edges not inverted)", () => {
    const graph = Effect.runSync(
      Graph.validate([c("api", ["db", "net"]), c("db", ["security"]), c("net", ["security"]), c("security")]),
    )
    const pos = (n: string) => graph.order.indexOf(n)
    expect(pos("security")).toBeLessThan(pos("db"))
    expect(pos("security")).toBeLessThan(pos("net"))
    expect(pos("db")).toBeLessThan(pos("api"))
    expect(pos("net")).toBeLessThan(pos("api"))
    expect(Graph.levels(graph)).toEqual([["security"], ["db", "net"], ["api"]])
  })

  it("orders phases: a pre-init component comes before a core one declared earlier", () => {
    const graph = Effect.runSync(Graph.validate([c("db", [], "core"), c("config", [], "pre-init")]))
    expect(graph.order).toEqual(["config", "db"])
  })

  it("reports a cycle with its path", () => {
    expect(issues([c("a", ["b"]), c("b", ["c"]), c("c", ["a"]), c("d", ["a"])])).toEqual([
      "dependency cycle: a -> b -> c -> a",
    ])
  })

  it("reports a self-dependency as a cycle", () => {
    expect(issues([c("a", ["a"])])).toEqual(["dependency cycle: a -> a"])
  })

  it("reports every problem at once: duplicates, unknown dependencies, later phases, cycles", () => {
    expect(
      issues([
        c("a"),
        c("a"),
        c("b", ["ghost"]),
        c("config", ["api"], "pre-init"),
        c("api", [], "services"),
        c("x", ["y"]),
        c("y", ["x"]),
      ]),
    ).toEqual([
      'duplicate component name "a"',
      'component "b" depends on unknown component "ghost"',
      'component "config" (pre-init) depends on "api" of the later phase services',
      "dependency cycle: x -> y -> x",
    ])
  })

  it("GraphError's message lists the issues, one a line", () => {
    const result = Effect.runSync(Effect.either(Graph.validate([c("a", ["b"]), c("b", ["a"]), c("a")])))
    expect(Either.isLeft(result) && result.left._tag).toBe("GraphError")
    expect(Either.isLeft(result) && result.left.message).toBe(
      'invalid component graph:\n  - duplicate component name "a"\n  - dependency cycle: a -> b -> a',
    )
  })
})

describe("Graph.criticalPath", () => {
  it("is the longest chain by duration, phase by phase", () => {
    const graph = Effect.runSync(
      Graph.validate([
        c("config", [], "pre-init", 5),
        c("logging", ["config"], "pre-init", 2),
        c("env", ["config"], "pre-init", 20),
        c("security", [], "core", 10),
        c("db", ["security"], "core", 30),
        c("cache", ["security"], "core", 50),
        c("net", ["security"], "core", 5),
      ]),
    )
    const cp = Graph.criticalPath(graph)
    expect(cp.path).toEqual(["config", "env", "security", "cache"])
    expect(Duration.toMillis(cp.duration)).toBe(25 + 60)
    const measured = Graph.criticalPath(graph, new Map([["db", 100]]))
    expect(measured.path).toEqual(["config", "env", "security", "db"])
    expect(Duration.toMillis(measured.duration)).toBe(25 + 110)
  })
})

describe("Graph.validate, levels and cycles", () => {
  it("a component's level is one more than its deepest dependency's, whatever the listing order", () => {
    const graph = Effect.runSync(
      Graph.validate([c("root"), c("mid", ["root"]), c("deep", ["mid"]), c("top", ["deep", "root"])]),
    )
    expect(graph.level.get("top")).toBe(3)
    expect(Graph.levels(graph)).toEqual([["root"], ["mid"], ["deep"], ["top"]])
  })

  it("a cycle's path holds only its members, not the component that led into it", () => {
    expect(issues([c("d", ["a"]), c("a", ["b"]), c("b", ["a"])])).toEqual(["dependency cycle: a -> b -> a"])
  })

  it("an unknown dependency inside a cycle is reported once, beside the cycle", () => {
    expect(issues([c("x", ["ghost", "y"]), c("y", ["x"])])).toEqual([
      'component "x" depends on unknown component "ghost"',
      "dependency cycle: x -> y -> x",
    ])
  })

  it("each cycle is reported once, a self-dependency inside a larger cycle included", () => {
    expect(issues([c("a", ["b"]), c("b", ["a", "b"])])).toEqual([
      "dependency cycle: a -> b -> a",
      "dependency cycle: b -> b",
    ])
  })
})

describe("Graph.criticalPath, several dependencies", () => {
  it("follows the dependency that finishes last, not the one listed last", () => {
    const graph = Effect.runSync(
      Graph.validate([c("slow", [], "core", 50), c("quick", [], "core", 10), c("join", ["slow", "quick"], "core", 5)]),
    )
    const cp = Graph.criticalPath(graph)
    expect(cp.path).toEqual(["slow", "join"])
    expect(Duration.toMillis(cp.duration)).toBe(55)
    // Listed the other way round, the same chain.
    const flipped = Effect.runSync(
      Graph.validate([c("quick", [], "core", 10), c("slow", [], "core", 50), c("join", ["quick", "slow"], "core", 5)]),
    )
    expect(Graph.criticalPath(flipped).path).toEqual(["slow", "join"])
  })

  it("on a tie, the first dependency listed and the phase end that comes first in start order", () => {
    const graph = Effect.runSync(
      Graph.validate([
        c("p", [], "core", 20),
        c("q", [], "core", 20),
        c("r", ["p", "q"], "core", 5),
        c("s", ["q"], "core", 5),
      ]),
    )
    // p and q both end at 20, r and s both at 25; start order p, q, r, s.
    expect(graph.order).toEqual(["p", "q", "r", "s"])
    expect(Graph.criticalPath(graph).path).toEqual(["p", "r"])
  })

  it("a dependency in an earlier phase does not start a chain: phases already add up", () => {
    const graph = Effect.runSync(
      Graph.validate([
        c("config", [], "pre-init", 5),
        c("db", ["config"], "core", 30),
        c("api", ["db"], "services", 0),
      ]),
    )
    const cp = Graph.criticalPath(graph)
    expect(cp.path).toEqual(["config", "db", "api"])
    expect(Duration.toMillis(cp.duration)).toBe(35)
  })

  it("an empty phase adds nothing; no durations give a zero bound", () => {
    const graph = Effect.runSync(Graph.validate([c("a", [], "pre-init"), c("b", [], "post-init")]))
    const cp = Graph.criticalPath(graph)
    expect(cp.path).toEqual(["a", "b"])
    expect(Duration.toMillis(cp.duration)).toBe(0)
  })
})
