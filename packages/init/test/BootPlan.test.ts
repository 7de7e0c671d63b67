import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { BootPlan, Component, Graph } from "../src/index.js"

const c = (name: string, phase: Component.Phase, dependencies: Array<string> = [], ms?: number) =>
  Component.make({ name, phase, criticality: "CRITICAL", dependencies, layer: Layer.empty, expectedDuration: ms })

describe("BootPlan", () => {
  it.effect("phases in order, components in start order with levels; the chain follows expected times", () =>
    Effect.gen(function* () {
      const graph = yield* Graph.validate([
        c("api", "services", ["db"]),
        c("db", "core", ["security"], 200),
        c("net", "core", ["security"], 10),
        c("security", "core", [], 50),
        c("config", "pre-init"),
      ])
      const plan = BootPlan.make(graph)
      expect(plan.phases.map((p) => [p.phase, p.components.map((x) => `${x.name}@${x.level}`)])).toEqual([
        ["pre-init", ["config@0"]],
        ["core", ["security@0", "db@1", "net@1"]],
        ["services", ["api@2"]],
      ])
      // db (200 ms) beats net (10 ms) although net is declared first in the same level.
      expect(plan.criticalChain).toEqual({ path: ["config", "security", "db", "api"], expectedMillis: 250 })
    }),
  )

  it.effect("without expected times the deepest chain is the critical one", () =>
    Effect.gen(function* () {
      const graph = yield* Graph.validate([
        c("a", "core"),
        c("b", "core"),
        c("c", "core", ["b"]),
        c("d", "core", ["c"]),
      ])
      expect(BootPlan.make(graph).criticalChain.path).toEqual(["b", "c", "d"])
    }),
  )

  it.effect("render: one line per component with criticality, level, dependencies; phase timeouts", () =>
    Effect.gen(function* () {
      const graph = yield* Graph.validate([c("security", "core", [], 50), c("network", "core", ["security"])])
      const text = BootPlan.render(BootPlan.make(graph), { phaseTimeouts: { core: "20 seconds" } })
      expect(text.split("\n")).toEqual([
        "core (timeout 20s)",
        "  security   CRITICAL  level 0  ~50 ms",
        "  network    CRITICAL  level 1  after security",
        "",
        "critical chain: security -> network (50 ms expected; components without an expected time count as 0)",
      ])
    }),
  )
})
