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

  it("GraphError's message lists the issues", () => {
    const result = Effect.runSync(Effect.either(Graph.validate([c("a", ["b"]), c("b", ["a"])])))
    expect(Either.isLeft(result) && result.left.message).toBe(
      "invalid component graph:\n  - dependency cycle: a -> b -> a",
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
