import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { BackgroundJobs } from "@novacron/init"
import { Context, Effect, Exit, Layer, Ref, Schedule, Scope } from "effect"
import { LocalStore, ServiceRegistry, StateStore } from "../src/index.js"

const local = () => LocalStore.layer().pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" })))

const urls = (endpoints: ReadonlyArray<ServiceRegistry.Endpoint>) =>
  endpoints.map((e) => `${e.node}/${e.name} ${e.url}`)

/** Polls `check` (live clock) until it holds; the test's own timeout bounds it. */
const eventually = (check: Effect.Effect<boolean, unknown, StateStore.StateStore>) =>
  Effect.repeat(check, { until: (ok) => ok, schedule: Schedule.spaced("20 millis") })

describe("ServiceRegistry (local store)", () => {
  it.live("the node's endpoints are in the state while it runs and gone once its scope closes", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const registry = yield* ServiceRegistry.make({
        node: "node-a",
        ttl: "10 seconds",
        endpoints: [
          { name: "peer", url: "tls://10.0.0.1:7700" },
          { name: "health", url: "http://127.0.0.1:7780" },
        ],
      }).pipe(Scope.extend(scope))
      yield* registry.register("metrics", "http://127.0.0.1:7781/metrics")
      expect(urls(yield* ServiceRegistry.list())).toEqual([
        "node-a/health http://127.0.0.1:7780",
        "node-a/metrics http://127.0.0.1:7781/metrics",
        "node-a/peer tls://10.0.0.1:7700",
      ])
      const store = yield* StateStore.StateStore
      const entry = yield* store.get("services/node-a/peer")
      expect(entry._tag === "Some" && entry.value.lease).toBeDefined()
      yield* Scope.close(scope, Exit.void)
      expect(yield* ServiceRegistry.list()).toEqual([])
    }).pipe(Effect.provide(local())),
  )

  it.live("list filters by node", () =>
    Effect.gen(function* () {
      yield* ServiceRegistry.make({ node: "a", ttl: "10 seconds", endpoints: [{ name: "peer", url: "tls://a:1" }] })
      yield* ServiceRegistry.make({ node: "b", ttl: "10 seconds", endpoints: [{ name: "peer", url: "tls://b:1" }] })
      expect(urls(yield* ServiceRegistry.list("b"))).toEqual(["b/peer tls://b:1"])
      expect((yield* ServiceRegistry.list()).length).toBe(2)
    }).pipe(Effect.scoped, Effect.provide(local())),
  )

  it.live("refresh writes again an endpoint the store lost", () =>
    Effect.gen(function* () {
      const registry = yield* ServiceRegistry.make({
        node: "node-a",
        ttl: "10 seconds",
        endpoints: [{ name: "peer", url: "tls://10.0.0.1:7700" }],
      })
      expect(yield* registry.refresh).toEqual({ renewedLease: false, restored: [] })
      const store = yield* StateStore.StateStore
      yield* store.delete("services/node-a/peer")
      expect(yield* registry.refresh).toEqual({ renewedLease: false, restored: ["peer"] })
      expect(urls(yield* ServiceRegistry.list())).toEqual(["node-a/peer tls://10.0.0.1:7700"])
    }).pipe(Effect.scoped, Effect.provide(local())),
  )

  it.live("a stalled node's registration lapses with its lease; refresh registers it again under a new lease", () =>
    Effect.gen(function* () {
      const sending = yield* Ref.make(false)
      const registry = yield* ServiceRegistry.make({
        node: "node-a",
        ttl: "1 second",
        endpoints: [{ name: "peer", url: "tls://10.0.0.1:7700" }],
        keepAlive: Ref.get(sending),
      })
      // No keepalive: the store drops the lease and its keys, as it would for a dead node.
      yield* eventually(Effect.map(ServiceRegistry.list(), (l) => l.length === 0))
      expect(yield* registry.healthy).toBe(false)
      yield* Ref.set(sending, true)
      expect(yield* registry.refresh).toEqual({ renewedLease: true, restored: ["peer"] })
      expect(urls(yield* ServiceRegistry.list())).toEqual(["node-a/peer tls://10.0.0.1:7700"])
      expect(yield* registry.healthy).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(local())),
  )

  it.live("the component registers what its endpoints effect yields and refreshes on a background job", () =>
    Effect.gen(function* () {
      const spec = ServiceRegistry.component({
        node: "node-a",
        ttl: "1 second",
        endpoints: Effect.succeed([{ name: "peer", url: "tls://10.0.0.1:7700" }]),
      })
      const store = yield* StateStore.StateStore
      const jobs = yield* BackgroundJobs.make
      const context = yield* Layer.build(spec.layer).pipe(
        Effect.provideService(StateStore.StateStore, store),
        Effect.provideService(BackgroundJobs.BackgroundJobs, jobs),
      )
      expect((yield* jobs.status).map((j) => j.name)).toEqual(["service-registration"])
      expect(yield* spec.healthCheck!.pipe(Effect.provide(context))).toMatchObject({
        status: "healthy",
        details: { endpoints: ["peer"] },
      })
      // Deleted behind its back: the job (every half TTL) puts it back.
      yield* store.delete("services/node-a/peer")
      yield* eventually(Effect.map(ServiceRegistry.list(), (l) => l.length === 1))
      const job = (yield* jobs.status)[0]!
      expect(job.runs).toBeGreaterThan(0)
      expect(Context.get(context, ServiceRegistry.ServiceRegistry).node).toBe("node-a")
    }).pipe(Effect.scoped, Effect.provide(local())),
  )
})
