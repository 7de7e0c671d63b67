import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import * as StorageSettings from "@novacron/database/StorageSettings"
import { ClusterState, LocalStore, StateStore } from "@novacron/dwcp-ass"
import { Placement } from "@novacron/dwcp-itp"
import { tempDir } from "@novacron/testing"
import { VmManager } from "@novacron/vm"
import { Effect, Layer, Schedule, Schema } from "effect"
import * as OrchestrationComponent from "../src/OrchestrationComponent.js"
import * as OrchestrationSettings from "../src/OrchestrationSettings.js"
import * as Tasks from "../src/Tasks.js"

const noVms = Layer.succeed(VmManager.VmManager, {} as VmManager.Manager)
const placement = Placement.layer(Schema.decodeUnknownSync(Placement.PlacementSettings)({}))

describe("OrchestrationComponent", () => {
  it.scopedLive("on SQLite storage: the task store in the data dir, this node coordinator, agents kept", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const settings = OrchestrationSettings.decode({ suspect_after: "3s" })
      const spec = OrchestrationComponent.component(settings, StorageSettings.decode({}), {
        data_dir: dir,
        node_id: "n1",
      })
      expect(spec.name).toBe("orchestration")
      const state = LocalStore.layer().pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" })))
      const ctx = yield* Layer.build(Layer.provideMerge(spec.layer, Layer.mergeAll(state, noVms, placement)))
      expect(fs.existsSync(path.join(dir, "orchestration.db"))).toBe(true)
      const store = ctx.unsafeMap.get(StateStore.StateStore.key) as StateStore.StateStoreApi
      const health = yield* OrchestrationComponent.healthCheck.pipe(
        Effect.provide(Layer.succeedContext(ctx)),
        Effect.filterOrFail((h) => h.details?.coordinator === true),
        Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("5 seconds"))),
      )
      expect(health.status).toBe("healthy")
      const tasks = ctx.unsafeMap.get(Tasks.Tasks.key) as Tasks.TasksApi
      const t = yield* tasks.submit({ _tag: "Noop" })
      expect((yield* tasks.await(t.id)).status).toBe("succeeded")
      // the agent manager runs on the coordinator: a capacity record becomes an agent record
      const cap: ClusterState.NodeCapacity = {
        node: "n1",
        cpus: 1,
        vcpus_total: 4,
        vcpus_used: 0,
        memory_mb_total: 1024,
        memory_mb_reserved: 0,
        memory_mb_used: 0,
        disk_mb_free: 1,
        running: 0,
        accel: null,
        updated_at: Date.now(),
      }
      yield* store.put(ClusterState.capacity.key("n1"), JSON.stringify(cap))
      const agent = yield* store
        .get("agents/n1")
        .pipe(Effect.flatten, Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("5 seconds"))))
      expect(JSON.parse(agent.value).state).toBe("joined")
    }),
  )

  it("keeps the tasks of a node on Redis storage in its own SQLite file (Redis cannot hold them)", () => {
    const store = OrchestrationComponent.storeFor(
      StorageSettings.decode({ backend: "redis", redis_url: "redis://127.0.0.1:6379" }),
      { data_dir: "/var/lib/n1", node_id: "n1" },
    )
    expect(store).toEqual({ ok: true, store: { _tag: "sqlite", filename: "/var/lib/n1/orchestration.db" } })
  })
})
