import { describe, expect, it } from "@effect/vitest"
import { type Migration, MigrationError, Migrations } from "@novacron/migration"
import type { Tasks } from "@novacron/orchestration"
import { Effect, Layer, Option, PubSub, Ref } from "effect"
import * as ApiCommand from "../src/ApiCommand.js"
import { TaskSource } from "../src/ApiSources.js"
import * as OrchestrationSource from "../src/OrchestrationSource.js"
import { start, tokens } from "./helpers.js"

const run = (over: Partial<Migrations.Run> = {}): Migrations.Run => ({
  id: "m-1",
  vm: "web",
  source: "node-a",
  target: "node-b",
  state: "running",
  phase: "preparing",
  startedAt: 1000,
  finishedAt: null,
  progress: null,
  result: null,
  error: null,
  ...over,
})

// Orchestration's task service is not used by migrate; make() builds its list effect eagerly.
const noTasks = { list: () => Effect.succeed([]), get: () => Effect.die("unused") } as unknown as Tasks.TasksApi

/** Runs the test says, and a start that answers as `to` says. */
const fakeRuns = (hub?: PubSub.PubSub<Migrations.Run>) =>
  Effect.gen(function* () {
    const started = yield* Ref.make<Array<string>>([])
    const service: Migrations.Service = {
      start: (vm, to) =>
        to === "gone"
          ? Effect.fail(new MigrationError.MigrationPeerUnreachable({ vm, peer: to, detail: "no endpoint" }))
          : vm === "ghost"
            ? Effect.fail(new MigrationError.MigrationInvalid({ vm, detail: "vm ghost: not defined on this node" }))
            : vm === "stopped"
              ? Effect.fail(new MigrationError.MigrationInvalid({ vm, detail: "must be running and attached here" }))
              : Effect.as(
                  Ref.update(started, (s) => [...s, `${vm}->${to}`]),
                  // Each run its own id, as the real ones.
                  run({ id: vm === "web" ? "m-1" : `m-${vm}`, vm, target: to }),
                ),
      list: Effect.succeed([run({ state: "completed", phase: "completed", finishedAt: 2000 })]),
      get: () => Effect.succeed(Option.none()),
      cancel: () => Effect.succeed(false),
      changes: hub === undefined ? Effect.never : PubSub.subscribe(hub),
    }
    return { service, started }
  })

describe("migration through the API", () => {
  it.effect("POST migrate starts a run on the node's Migrations; refusals are typed 404/409/422, never 500", () =>
    Effect.gen(function* () {
      const { service, started } = yield* fakeRuns()
      const source = OrchestrationSource.make(noTasks, "node-a", Option.none(), Option.none(), Option.some(service))
      expect(yield* source.migrate("web", { target_node: "node-b" })).toEqual({
        id: "m-1",
        vm_id: "web",
        source: "node-a",
        target: "node-b",
        state: "running",
        started_at: 1000,
        finished_at: null,
      })
      expect(yield* Ref.get(started)).toEqual(["web->node-b"])
      expect(yield* Effect.flip(source.migrate("web", {}))).toMatchObject({ _tag: "Unprocessable", kind: "migration" })
      expect(yield* Effect.flip(source.migrate("ghost", { target_node: "node-b" }))).toMatchObject({
        _tag: "NotFound",
        kind: "vm",
        id: "ghost",
      })
      expect(yield* Effect.flip(source.migrate("stopped", { target_node: "node-b" }))).toMatchObject({
        _tag: "Conflict",
        kind: "vm",
      })
      expect(yield* Effect.flip(source.migrate("web", { target_node: "gone" }))).toMatchObject({
        _tag: "Conflict",
        kind: "node",
        id: "gone",
      })
      expect(yield* source.migrations).toMatchObject([{ id: "m-1", state: "completed", finished_at: 2000 }])
      // A node without live migration says so.
      const none = OrchestrationSource.make(noTasks, "node-a")
      expect(yield* Effect.flip(none.migrate("web", { target_node: "node-b" }))).toMatchObject({
        _tag: "ServiceUnavailable",
        service: "migration",
      })
    }),
  )

  it.scopedLive("each change of a run is an event on the Migration topic, replayable from an index", () =>
    Effect.gen(function* () {
      const hub = yield* PubSub.unbounded<Migrations.Run>()
      const { service } = yield* fakeRuns(hub)
      const fx = yield* start("token", {}, Layer.succeed(Migrations.Migrations, service) as never)
      yield* PubSub.publish(hub, run())
      yield* PubSub.publish(hub, run({ phase: "precopy", progress: { transferred: 10 } as Migration.Progress }))
      yield* PubSub.publish(hub, run({ state: "completed", phase: "completed", finishedAt: 3000 }))
      yield* Effect.sleep("50 millis")
      const text = yield* Effect.promise(async () => {
        const { request } = await import("node:https")
        return new Promise<string>((resolve, reject) => {
          const req = request(
            `${fx.url}/v1/event/stream?topic=Migration&index=0&heartbeat=30`,
            { ca: fx.ca, headers: { authorization: `Bearer ${tokens.reader}` } },
            (res) => {
              let got = ""
              res.setEncoding("utf8").on("data", (c) => {
                got += c
                if (got.includes("MigrationCompleted")) {
                  req.destroy()
                  resolve(got)
                }
              })
            },
          )
          req.on("error", (e) => (e.message.includes("socket hang up") ? undefined : reject(e)))
          req.end()
        })
      })
      const events = text
        .split("\n")
        .filter((l) => l.includes('"Migration'))
        .map((l) => JSON.parse(l))
      expect(events.map((e) => e.type)).toEqual(["MigrationStarted", "MigrationProgress", "MigrationCompleted"])
      expect(events[1]).toMatchObject({ topic: "Migration", key: "m-1", payload: { phase: "precopy" } })
      expect(events[2].payload).toMatchObject({ state: "completed", finished_at: 3000 })
    }),
  )

  it.scopedLive(
    "the CLI's migrate starts the run and follows its events to the end; a failure is an error naming why",
    () =>
      Effect.gen(function* () {
        const hub = yield* PubSub.unbounded<Migrations.Run>()
        const { service } = yield* fakeRuns(hub)
        // The run goes on by itself once started: progress, then the outcome (failed for vm "bad").
        const runs: Migrations.Service = {
          ...service,
          start: (vm, to) =>
            Effect.tap(service.start(vm, to), (r) =>
              Effect.forkDaemon(
                Effect.gen(function* () {
                  yield* Effect.sleep("100 millis")
                  const p = {
                    transferred: 64 << 20,
                    remaining: 0,
                    total: 128 << 20,
                    dirtyRate: 0,
                    expectedDowntimeMs: 20,
                  }
                  yield* PubSub.publish(hub, { ...r, phase: "precopy", progress: p as Migration.Progress })
                  yield* PubSub.publish(
                    hub,
                    vm === "bad"
                      ? { ...r, state: "failed", error: "migration of bad failed during precopy: QEMU said no" }
                      : {
                          ...r,
                          state: "completed",
                          phase: "completed",
                          finishedAt: 2,
                          result: {
                            totalMs: 900,
                            downtimeMs: 12,
                            transferred: 128 << 20,
                            wireBytes: 129 << 20,
                            term: 7,
                            mode: "precopy",
                          } as Migration.Result,
                        },
                  )
                }),
              ),
            ),
        }
        const source = OrchestrationSource.make(noTasks, "node-a", Option.none(), Option.none(), Option.some(runs))
        const fx = yield* start(
          "token",
          {},
          Layer.mergeAll(Layer.succeed(Migrations.Migrations, runs), Layer.succeed(TaskSource, source)) as never,
        )
        const printed: Array<string> = []
        const flags = { address: fx.url, token: tokens.operator, to: "node-b" }
        const env = {}
        const out = yield* ApiCommand.run("/nonexistent", ["migrate", "web"], { ...flags, ca: undefined }, env, (t) =>
          printed.push(t),
        ).pipe(Effect.provideService(TaskSource, source), Effect.either)
        expect(out._tag).toBe("Left") // the CA: the fixture's is not in /nonexistent
        const ca = yield* Effect.promise(async () => {
          const { writeFile, mkdtemp } = await import("node:fs/promises")
          const dir = await mkdtemp("/tmp/nc-ca-")
          await writeFile(`${dir}/ca.crt`, fx.ca)
          return `${dir}/ca.crt`
        })
        const done = yield* ApiCommand.run("/nonexistent", ["migrate", "web"], { ...flags, ca }, env, (t) =>
          printed.push(t),
        )
        expect(printed.join("")).toMatch(/^migrating web to node-b \(migration m-1\)\n(preparing\n)?precopy\n$/)
        expect(done).toMatch(/^VM\s+TO\s+MODE\s+TOTAL\s+DOWNTIME\s+SENT\s+ON THE WIRE\s+TERM\n/)
        expect(done).toMatch(/web\s+node-b\s+precopy\s+900ms\s+12ms\s+128\.0 MiB\s+129\.0 MiB\s+7/)
        const failed = yield* Effect.flip(
          ApiCommand.run("/nonexistent", ["migrate", "bad"], { ...flags, ca }, env, () => undefined),
        )
        expect(failed.message).toBe("migration m-bad: migration of bad failed during precopy: QEMU said no")
        const usage = yield* Effect.flip(
          ApiCommand.run("/nonexistent", ["migrate", "web"], { ...flags, ca, to: undefined }),
        )
        expect(usage._tag).toBe("ApiUsageError")
      }),
  )
})
