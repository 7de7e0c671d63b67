import { describe, expect, it } from "@effect/vitest"
import type { Boot, BootReport, Health } from "@novacron/init"
import { Effect, Option, Ref } from "effect"
import { HealthEndpoints } from "../src/index.js"

const report = {
  bootId: "b-1",
  outcome: "running",
  totalMillis: 12,
  checkpoints: [],
  components: [
    {
      name: "db",
      phase: "core",
      criticality: "CRITICAL",
      dependencies: [],
      status: "running",
      attempts: 1,
      startedAt: 1,
      finishedAt: 4,
    },
    {
      name: "cache",
      phase: "core",
      criticality: "DEGRADED",
      dependencies: [],
      status: "degraded",
      attempts: 4,
      error: "redis down",
    },
    // A CRITICAL component on its fallback fails readiness where a DEGRADED one passes.
    { name: "net", phase: "core", criticality: "CRITICAL", dependencies: [], status: "degraded", attempts: 1 },
  ],
} as unknown as BootReport.BootReport

const handle = {
  health: Effect.succeed({
    status: "degraded",
    components: [{ name: "cache", health: "degraded", message: "serving memory" }],
  }),
} as unknown as Boot.BootHandle

const setup = Effect.gen(function* () {
  const lifecycle = yield* Ref.make<Health.Lifecycle>("booting")
  const handler = HealthEndpoints.healthHandler({
    nodeId: "n1",
    build: { version: "1.2.3" },
    startedAt: 0,
    lifecycle: Ref.get(lifecycle),
    report: Effect.succeed(Option.some(report)),
    handle: Effect.succeed(Option.some(handle)),
    extra: (h) => Effect.succeed({ peers: Option.isSome(h) ? ["p"] : [] }),
  })
  const get = (path: string) => handler(new URL(path, "http://x"), undefined as never)
  return { lifecycle, get }
})

describe("health endpoints", () => {
  it.effect("/readyz is 503 with the lifecycle until READY, then 200; /healthz is always 200", () =>
    Effect.gen(function* () {
      const { lifecycle, get } = yield* setup
      expect(yield* get("/readyz")).toMatchObject({ status: 503, body: "booting\n" })
      expect(yield* get("/healthz")).toMatchObject({ status: 200, body: "ok\n" })
      yield* Ref.set(lifecycle, "ready")
      expect(yield* get("/readyz")).toMatchObject({ status: 200, body: "ok\n" })
      yield* Ref.set(lifecycle, "shutting-down")
      expect(yield* get("/readyz")).toMatchObject({ status: 503, body: "shutting-down\n" })
    }),
  )

  it.effect("/readyz?verbose lists each component; a degraded non-CRITICAL one still passes", () =>
    Effect.gen(function* () {
      const { lifecycle, get } = yield* setup
      yield* Ref.set(lifecycle, "ready")
      expect((yield* get("/readyz?verbose")).body).toBe(
        "[+]db running\n[+]cache degraded: redis down\n[-]net degraded\nreadyz check passed\n",
      )
    }),
  )

  it.effect("/status: health only once READY, the host's extra fields, 404 elsewhere", () =>
    Effect.gen(function* () {
      const { lifecycle, get } = yield* setup
      const booting = JSON.parse((yield* get("/status")).body)
      expect(booting).toMatchObject({
        node_id: "n1",
        version: "1.2.3",
        lifecycle: "booting",
        status: "booting",
        peers: [],
      })
      expect(booting.components[1]).toMatchObject({ name: "cache", health: null, message: "redis down" })
      yield* Ref.set(lifecycle, "ready")
      const ready = JSON.parse((yield* get("/status")).body)
      expect(ready).toMatchObject({ status: "degraded", peers: ["p"], boot: { id: "b-1", total_ms: 12 } })
      expect(ready.components[0]).toMatchObject({ name: "db", init_ms: 3 })
      expect(ready.components[1]).toMatchObject({ health: "degraded", message: "serving memory" })
      expect((yield* get("/nope")).status).toBe(404)
    }),
  )
})
