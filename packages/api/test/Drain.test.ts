// The task and drain routes and the CLI words over orchestration's real task service (SQLite,
// its workflow engine, the stop/start mover on this node's VM manager). The coordinator and agent
// manager are stand-ins here (orchestration's own tests run the real ones on etcd): the drain's
// mark step needs only that this node is coordinator and that the mark is recorded.
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { AgentManager, Coordinator, OrchestrationSettings, Tasks, VmMover } from "@novacron/orchestration"
import { tempDir } from "@novacron/testing"
import type { Vm } from "@novacron/vm"
import { Context, Effect, Layer, Option, Schedule } from "effect"
import * as ApiCommand from "../src/ApiCommand.js"
import * as OrchestrationSource from "../src/OrchestrationSource.js"
import { call, memoryVms, start, tokens } from "./helpers.js"

const coordinator = (leading: boolean): Coordinator.CoordinatorApi => ({
  node: "node-a",
  term: Effect.succeed(leading ? Option.some(1) : Option.none()),
  elected: leading ? Effect.succeed({} as never) : Effect.never,
  put: () => Effect.succeed(1),
  remove: () => Effect.succeed(true),
  fenced: (e) => e as never,
})

const orchestration = Effect.gen(function* () {
  const dir = yield* tempDir
  const vms = new Map<string, Vm.VmRecord>()
  const manager = memoryVms(vms)
  const marked: Array<string> = []
  const ctx = yield* Layer.build(
    Tasks.layer(
      { _tag: "sqlite", filename: path.join(dir, "orch.db") },
      {
        settings: OrchestrationSettings.decode({ retry_base: "5ms", max_attempts: 2 }),
        vm: manager,
        cluster: {
          coordinator: coordinator(true),
          agents: { list: Effect.succeed([]), setDraining: (node) => Effect.sync(() => void marked.push(node)) },
        },
        mover: VmMover.stopStart(VmMover.localAccess("node-a", manager)),
      },
    ),
  )
  return { tasks: Context.get(ctx, Tasks.Tasks), manager, vms, marked }
})

describe("tasks and drain through the API", () => {
  it.scopedLive("drain NODE --deadline: a task with its history and progress; tasks list and show", () =>
    Effect.gen(function* () {
      const o = yield* orchestration
      yield* o.manager.define({ id: "web-1", vcpus: 1, memory_mb: 64 })
      const fx = yield* start(
        "token",
        {},
        Layer.mergeAll(
          Layer.succeed(Tasks.Tasks, o.tasks),
          Layer.succeed(Coordinator.Coordinator, coordinator(true)),
          // the agent manager knows node-a only
          Layer.succeed(AgentManager.AgentManager, {
            list: Effect.succeed([{ node: "node-a", state: "healthy", since: 0, last_seen: 0, draining: false }]),
          } as unknown as AgentManager.AgentManagerApi),
        ) as unknown as Layer.Layer<never>,
      )
      const dir = yield* tempDir
      yield* Effect.promise(() => fs.mkdir(path.join(dir, "tls")))
      yield* Effect.promise(() => fs.writeFile(path.join(dir, "tls", "ca.crt"), fx.ca))
      const operator = { NOVACRON_TOKEN: tokens.operator }
      const reader = { NOVACRON_TOKEN: tokens.reader }

      // a reader may not drain
      const refused = yield* Effect.flip(ApiCommand.run(dir, ["drain", "node-a"], { address: fx.url }, reader))
      expect(refused.message).toMatch(/^HTTP 403: Forbidden/)
      const bad = yield* Effect.flip(
        ApiCommand.run(dir, ["drain", "node-a"], { address: fx.url, deadline: "soon" }, operator),
      )
      expect(bad).toMatchObject({ _tag: "ApiUsageError" })
      expect(bad.message).toContain('--deadline expects a duration like 90s, 10m or 2h, got "soon"')

      const unknown = yield* Effect.flip(ApiCommand.run(dir, ["drain", "node-x"], { address: fx.url }, operator))
      expect(unknown.message).toBe('HTTP 404: NotFound: {"kind":"node","id":"node-x","_tag":"NotFound"}')

      const submitted = JSON.parse(
        yield* ApiCommand.run(
          dir,
          ["drain", "node-a"],
          { address: fx.url, deadline: "2m", "max-parallel": "3", json: true },
          operator,
        ),
      )
      expect(submitted).toMatchObject({ kind: "Drain", node_id: "node-a", vm_id: null })
      const stored = yield* o.tasks.get(submitted.id)
      expect(stored.spec).toEqual({ _tag: "Drain", node: "node-a", max_parallel: 3 })
      expect(stored.deadline_at - stored.created_at).toBe(120_000)

      // the node has no placement service (as a node today): the VM cannot go anywhere
      const shown = yield* ApiCommand.run(dir, ["task", submitted.id], { address: fx.url, json: true }, reader).pipe(
        Effect.map((text) => JSON.parse(text)),
        Effect.filterOrFail((t) => t.state !== "pending" && t.state !== "running"),
        Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("10 seconds"))),
      )
      expect(shown.state).toBe("failed")
      expect(shown.error).toContain("moves failed: 0 of 1 VMs moved off node-a; left: web-1")
      expect(shown.error).toContain("no placement service")
      expect(shown.progress).toEqual({ node: "node-a", total: 1, moved: [], left: ["web-1"] })
      expect(shown.history.map((h: any) => [h.step, h.outcome])).toEqual([
        ["mark", "ok"],
        ["inventory", "ok"],
        ["move web-1", "failed"],
      ])
      expect(o.marked).toEqual(["node-a"])
      expect(o.vms.has("web-1")).toBe(true)

      const table = yield* ApiCommand.run(dir, ["task", submitted.id], { address: fx.url }, reader)
      expect(table).toContain("progress: 0 of 1 VMs moved off node-a; left: web-1")
      expect(table).toMatch(/\ninventory\s+1\s+ok\s+\d+ms\s+1 VM\(s\): web-1\n/)

      // with the node empty the next drain succeeds
      yield* o.manager.remove("web-1")
      const second = JSON.parse(
        yield* ApiCommand.run(dir, ["drain", "node-a"], { address: fx.url, json: true }, operator),
      )
      expect(second.id).not.toBe(submitted.id)
      const done = yield* o.tasks.await(second.id)
      expect(done.status).toBe("succeeded")
      const list = yield* ApiCommand.run(dir, ["tasks"], { address: fx.url }, reader)
      expect(list.split("\n")[0]).toMatch(/^ID\s+KIND\s+STATE\s+NODE\s+VM\s+UPDATED\s+ERROR$/)
      expect(list).toMatch(new RegExp(`\\n${submitted.id}\\s+Drain\\s+failed\\s+node-a`))
      expect(list).toMatch(new RegExp(`\\n${second.id}\\s+Drain\\s+succeeded\\s+node-a`))

      // force is refused, not ignored
      const force = yield* Effect.promise(() =>
        call(fx, "POST", "/v1/nodes/node-a/drain", { token: tokens.operator, body: { force: true } }),
      )
      expect(force.status).toBe(422)
      expect(force.json).toMatchObject({ _tag: "Unprocessable", reason: expect.stringContaining("force is not built") })
    }),
  )

  it.scopedLive("a drain asked of a node that is not coordinator is a 409; one already running is returned", () =>
    Effect.gen(function* () {
      const o = yield* orchestration
      const follower = OrchestrationSource.make(o.tasks, "node-a", Option.some(coordinator(false)))
      const e = yield* Effect.flip(follower.drain("node-b", {}))
      expect(e).toMatchObject({ _tag: "Conflict", kind: "node", id: "node-b" })
      expect(e._tag === "Conflict" && e.reason).toContain("node-a is not the orchestration coordinator")

      // a drain whose inventory never answers is still running when asked again
      const ctx = yield* Layer.build(
        Tasks.layer(
          { _tag: "sqlite", filename: path.join(yield* tempDir, "o.db") },
          {
            settings: OrchestrationSettings.defaults,
            cluster: {
              coordinator: coordinator(true),
              agents: { list: Effect.succeed([]), setDraining: () => Effect.void },
            },
            mover: { method: "test", vmsOn: () => Effect.never, move: () => Effect.never },
          },
        ),
      )
      const leader = OrchestrationSource.make(Context.get(ctx, Tasks.Tasks), "node-a", Option.some(coordinator(true)))
      const first = yield* leader.drain("node-b", {})
      const again = yield* leader.drain("node-b", {})
      expect(again.id).toBe(first.id)
    }),
  )
})
