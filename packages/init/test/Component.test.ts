import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { Component, Graph } from "../src/index.js"

describe("Component.spec / place / placeAll", () => {
  it("place: the row gives phase, criticality and dependencies; the spec keeps layer, retry, fallback", () => {
    const fallback = Layer.empty
    const s = Component.spec({ name: "cache", layer: Layer.empty, fallback, expectedDuration: "3 millis" })
    const c = Component.place(s, { phase: "core", criticality: "DEGRADED", dependencies: ["security"] })
    expect([c.name, c.phase, c.criticality, c.dependencies]).toEqual(["cache", "core", "DEGRADED", ["security"]])
    expect(c.fallback).toBe(fallback)
    expect(c.expectedDuration).toBe("3 millis")
    expect(Component.place(s, { phase: "core", criticality: "WARNING" }).dependencies).toEqual([])
  })

  it("place: the row wins over a placement the spec still carries", () => {
    const old = Component.make({
      name: "x",
      phase: "post-init",
      criticality: "WARNING",
      dependencies: ["y"],
      layer: Layer.empty,
    })
    const c = Component.place(old, { phase: "pre-init", criticality: "CRITICAL" })
    expect([c.phase, c.criticality, c.dependencies]).toEqual(["pre-init", "CRITICAL", []])
  })

  it.effect("placeAll: every spec without a row is named at once; rows without a spec are fine", () =>
    Effect.gen(function* () {
      const table: Component.Table = {
        a: { phase: "core", criticality: "CRITICAL" },
        b: { phase: "services", criticality: "WARNING", dependencies: ["a"] },
        unused: { phase: "post-init", criticality: "WARNING" },
      }
      const spec = (name: string) => Component.spec({ name, layer: Layer.empty })
      const placed = yield* Component.placeAll([spec("a"), spec("b")], table)
      const graph = yield* Graph.validate(placed)
      expect(graph.order).toEqual(["a", "b"])
      expect(placed.map((c) => c.phase)).toEqual(["core", "services"])

      const exit = yield* Effect.exit(Component.placeAll([spec("a"), spec("c"), spec("toString")], table))
      expect(exit).toEqual(Exit.fail(new Component.UnplacedComponent({ names: ["c", "toString"] })))
      if (Exit.isFailure(exit))
        expect(String((exit.cause as { error?: Error }).error?.message)).toBe(
          'no boot table row for components "c", "toString"',
        )
    }),
  )
})
