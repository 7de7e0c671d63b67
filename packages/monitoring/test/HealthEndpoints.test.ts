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

  it.effect("/readyz?verbose lists every check like Kubernetes; a degraded component still passes", () =>
    Effect.gen(function* () {
      const { lifecycle, get } = yield* setup
      const booting = yield* get("/readyz?verbose")
      expect(booting.status).toBe(503)
      expect(booting.body).toBe(
        "[-]lifecycle failed: booting\n[+]db ok\n[+]cache degraded: redis down\n[+]net degraded\nreadyz check failed\n",
      )
      yield* Ref.set(lifecycle, "ready")
      // Once READY the live health checks speak (the cache's message is its check's).
      expect(yield* get("/readyz?verbose")).toMatchObject({
        status: 200,
        body: "[+]lifecycle ok\n[+]db ok\n[+]cache degraded: serving memory\n[+]net degraded\nreadyz check passed\n",
      })
    }),
  )

  it.effect(
    "a CRITICAL component down or unhealthy fails /readyz (503) and /healthz (500); a WARNING one does not",
    () =>
      Effect.gen(function* () {
        const components = [
          { name: "db", phase: "core", criticality: "CRITICAL", dependencies: [], status: "running", attempts: 1 },
          {
            name: "vm",
            phase: "services",
            criticality: "WARNING",
            dependencies: [],
            status: "failed",
            attempts: 1,
            error: "qemu missing",
          },
          { name: "api", phase: "services", criticality: "CRITICAL", dependencies: [], status: "running", attempts: 1 },
        ]
        const health = Ref.unsafeMake([
          {
            name: "db",
            criticality: "CRITICAL",
            status: "running",
            health: "unhealthy",
            message: "connection refused",
          },
          { name: "vm", criticality: "WARNING", status: "failed", health: "unknown" },
          { name: "api", criticality: "CRITICAL", status: "running", health: "healthy" },
        ])
        const handler = HealthEndpoints.healthHandler({
          nodeId: "n1",
          build: {},
          startedAt: 0,
          lifecycle: Effect.succeed("ready"),
          report: Effect.succeed(Option.some({ components } as unknown as BootReport.BootReport)),
          handle: Effect.succeed(
            Option.some({
              health: Effect.map(Ref.get(health), (components) => ({ components })),
            } as unknown as Boot.BootHandle),
          ),
        })
        const get = (path: string) => handler(new URL(path, "http://x"), undefined as never)
        const checks =
          "[+]ping ok\n[-]db failed: unhealthy: connection refused\n[+]vm failed (not critical: WARNING): qemu missing\n[+]api ok\n"
        expect(yield* get("/healthz?verbose")).toMatchObject({ status: 500, body: `${checks}healthz check failed\n` })
        expect(yield* get("/healthz")).toMatchObject({ status: 500, body: "failed: db\n" })
        expect(yield* get("/readyz")).toMatchObject({ status: 503, body: "failed: db\n" })
        expect((yield* get("/readyz?verbose")).body).toContain("[-]db failed: unhealthy: connection refused\n")
        expect(yield* get("/livez")).toMatchObject({ status: 200, body: "ok\n" })
        expect(yield* get("/livez?verbose")).toMatchObject({ status: 200, body: "[+]ping ok\nlivez check passed\n" })
        // The check recovers: both pass again, on the next request (no caching).
        yield* Ref.update(health, (cs) => cs.map((c) => (c.name === "db" ? { ...c, health: "healthy" } : c)))
        expect(yield* get("/healthz")).toMatchObject({ status: 200, body: "ok\n" })
        expect(yield* get("/readyz")).toMatchObject({ status: 200, body: "ok\n" })
      }),
  )

  it.effect("/healthz?verbose before READY is the process answering: [+]ping ok", () =>
    Effect.gen(function* () {
      const { get } = yield* setup
      expect(yield* get("/healthz?verbose")).toMatchObject({ status: 200, body: "[+]ping ok\nhealthz check passed\n" })
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
