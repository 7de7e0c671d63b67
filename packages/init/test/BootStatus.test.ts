import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Layer } from "effect"
import { Boot, BootStatus, Component } from "../src/index.js"

describe("BootStatus.booted", () => {
  it.scoped("completes once every phase has finished, not while a later component still starts", () =>
    Effect.gen(function* () {
      const events: Array<string> = []
      const seen = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const early = Component.make({
        name: "early",
        phase: "services",
        criticality: "WARNING",
        layer: Layer.scopedDiscard(
          Effect.gen(function* () {
            const status = yield* BootStatus
            yield* Effect.forkScoped(
              Effect.zipRight(
                status.booted,
                Effect.sync(() => {
                  events.push("booted seen")
                  Deferred.unsafeDone(seen, Effect.void)
                }),
              ),
            )
          }),
        ),
      })
      const late = Component.make({
        name: "late",
        phase: "post-init",
        criticality: "WARNING",
        layer: Layer.effectDiscard(
          Effect.zipRight(
            Deferred.await(gate),
            Effect.sync(() => events.push("late started")),
          ),
        ),
      })
      const booting = yield* Effect.fork(Boot.boot([early, late]))
      yield* Effect.yieldNow()
      expect(events).toEqual([])
      yield* Deferred.succeed(gate, undefined)
      yield* booting.await
      yield* Deferred.await(seen)
      expect(events).toEqual(["late started", "booted seen"])
    }),
  )
})

describe("BootHandle.healthWhere", () => {
  it.scoped("runs only the selected checks; the others are reported from their boot status", () =>
    Effect.gen(function* () {
      const calls: Array<string> = []
      const component = (name: string, criticality: "CRITICAL" | "WARNING") =>
        Component.make({
          name,
          phase: "core",
          criticality,
          layer: Layer.empty,
          healthCheck: Effect.sync(() => {
            calls.push(name)
            return { status: "degraded" as const, message: `${name} says degraded` }
          }),
        })
      const node = yield* Boot.boot([component("db", "CRITICAL"), component("kvm-probe", "WARNING")])
      const report = yield* node.healthWhere((c) => c.criticality === "CRITICAL")
      expect(calls).toEqual(["db"])
      expect(report.components.map((c) => [c.name, c.health, c.message])).toEqual([
        ["db", "degraded", "db says degraded"],
        ["kvm-probe", "healthy", undefined],
      ])
      yield* node.health
      expect(calls.sort()).toEqual(["db", "db", "kvm-probe"])
    }),
  )
})
