// A drain survives its coordinator: the process running it (the coordinator, on etcd) is SIGKILLed
// in the middle of moving a VM; another candidate on the same task store is elected after the
// lease TTL, resumes the drain from its durable state, and finishes it. No VM is defined, started
// or removed twice, and the VM moved before the kill is not moved again.

import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { tempDir } from "@novacron/testing"
import { Context, type Duration, Effect, Layer, Schedule } from "effect"
import * as Tasks from "../src/Tasks.js"
import { etcdMember, haveEtcd } from "./etcd.js"
import { fakeNodes } from "./fakeNodes.js"

const fixture = path.join(import.meta.dirname, "fixtures", "drainer.ts")

const candidate = (args: ReadonlyArray<string>, output: Array<string>) =>
  Effect.acquireRelease(
    Effect.async<ChildProcess, Error>((resume) => {
      const child = spawn(process.execPath, ["--conditions", "@novacron/source", "--import", "tsx", fixture, ...args], {
        stdio: ["ignore", "pipe", "inherit"],
        cwd: import.meta.dirname,
      })
      child.stdout!.on("data", (d: Buffer) => {
        output.push(
          ...d
            .toString()
            .split("\n")
            .filter((l) => l !== ""),
        )
        if (output.includes("ready")) resume(Effect.succeed(child))
      })
      child.once("exit", (code) => resume(Effect.fail(new Error(`candidate exited with ${code} before ready`))))
    }),
    (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL")),
  )

const sigkill = (child: ChildProcess) =>
  Effect.async<void>((resume) => {
    child.once("exit", () => resume(Effect.void))
    child.kill("SIGKILL")
  })

const until = <A>(what: string, f: () => A | undefined, limit: Duration.DurationInput = "30 seconds") =>
  Effect.suspend(() => {
    const v = f()
    return v === undefined || v === false ? Effect.fail(new Error(`timed out waiting for ${what}`)) : Effect.succeed(v)
  }).pipe(Effect.retry(Schedule.spaced("25 millis").pipe(Schedule.upTo(limit))))

describe.runIf(haveEtcd())("drain failover", () => {
  it.scopedLive(
    "the coordinator running a drain is SIGKILLed mid-move; the next coordinator finishes it, each VM moved once",
    () =>
      Effect.gen(function* () {
        const { url } = yield* etcdMember
        const dir = yield* tempDir
        const db = path.join(dir, "orch.db")
        const nodesFile = path.join(dir, "nodes.json")
        const running = { vcpus: 1, memory_mb: 256, state: "running" } as const
        fakeNodes({ n1: { a: running, b: running, c: running }, n2: {}, n3: {} }, { file: nodesFile })
        const calls = () =>
          fs.existsSync(`${nodesFile}.calls`)
            ? fs.readFileSync(`${nodesFile}.calls`, "utf8").split("\n").filter(Boolean)
            : []

        const outA: Array<string> = []
        const a = yield* candidate([url, db, "a", nodesFile, "submit"], outA)
        // a moved one VM and is inside the second move (stopping it on n1) when it dies
        yield* until(
          "a's second move",
          () =>
            calls().filter((c) => c.startsWith("remove")).length === 1 &&
            calls().filter((c) => c.startsWith("stop")).length === 2,
        )
        yield* sigkill(a)
        const termA = Number(outA.find((l) => l.startsWith("elected"))!.split(" ")[1])
        const before = calls()
        expect(before.filter((c) => c.startsWith("remove"))).toHaveLength(1)

        const outB: Array<string> = []
        yield* candidate([url, db, "b", nodesFile], outB)
        const elected = yield* until("b elected", () => outB.find((l) => l.startsWith("elected")))
        expect(Number(elected.split(" ")[1])).toBeGreaterThan(termA)

        // read the store without a runner of its own (a third runner would compete for the work)
        const sql = Context.get(
          yield* Layer.build(Tasks.layerSql({ _tag: "sqlite", filename: db })),
          SqlClient.SqlClient,
        )
        const task = yield* sql<{
          status: string
          last_error: string | null
        }>`SELECT status, last_error FROM orch_tasks WHERE id = 'drain-n1'`.pipe(
          Effect.map((rows) => rows[0]!),
          Effect.filterOrFail((t) => t.status !== "running" && t.status !== "queued"),
          Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("40 seconds"))),
        )
        expect(task).toEqual({ status: "succeeded", last_error: null })

        const final = JSON.parse(fs.readFileSync(nodesFile, "utf8"))
        expect(final.n1).toEqual({})
        const placed = { ...final.n2, ...final.n3 }
        expect(Object.keys(placed).sort()).toEqual(["a", "b", "c"])
        for (const id of ["a", "b", "c"]) expect(placed[id].state).toBe("running")
        const after = calls()
        // each VM defined on its target, started there and removed from n1 exactly once
        for (const id of ["a", "b", "c"])
          for (const verb of ["define", "start", "remove"])
            expect(
              after.filter((c) => c.startsWith(`${verb} ${id} `)),
              `${verb} ${id}`,
            ).toHaveLength(1)
        // the move finished by a is not run again by b: its step has one attempt, from a
        const steps = yield* sql<{
          step: string
          attempt: number
          outcome: string | null
        }>`SELECT step, attempt, outcome
          FROM orch_steps WHERE task_id = 'drain-n1' ORDER BY step, attempt`
        const moved = before.find((c) => c.startsWith("remove"))!.split(" ")[1]!
        expect(steps.filter((s) => s.step === `move ${moved}`).map((s) => s.outcome)).toEqual(["ok"])
        expect(steps.filter((s) => s.step === "mark").map((s) => s.outcome)).toEqual(["ok"])
        // the interrupted move was started by a and finished by b
        const cut = steps.filter((s) => s.step !== `move ${moved}` && s.step.startsWith("move") && s.attempt > 1)
        expect(cut.length).toBeGreaterThanOrEqual(1)
      }),
    90_000,
  )
})
