import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { Boot, BootReport, Checkpoint, Component } from "../src/index.js"
import { fixture, makeJournal } from "./fixtures.js"

const tempDir = () => mkdtempSync(join(tmpdir(), "novacron-init-"))
const deadPid = () => {
  const r = spawnSync(process.execPath, ["-e", ""])
  return r.pid!
}

describe("checkpoints", () => {
  it.live("are written durably at each phase with each component's status", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const store = Checkpoint.fileStore(dir)
      let seenDuringCore: BootReport.BootReport | undefined
      const spy = Component.make({
        name: "spy",
        phase: "core",
        criticality: "CRITICAL",
        layer: Layer.effectDiscard(
          Effect.sync(() => {
            seenDuringCore = JSON.parse(readFileSync(store.path, "utf8"))
          }),
        ),
      })
      const j = makeJournal()
      const node = yield* Boot.boot([fixture(j, "config", { phase: "pre-init" }), spy], { checkpoints: store })
      // What a crash during core would have left on disk:
      expect(seenDuringCore!.outcome).toBe("starting")
      expect(seenDuringCore!.checkpoints.map((c) => c.name)).toEqual(["init_start", "pre_init_complete"])
      expect(seenDuringCore!.components.find((c) => c.name === "config")!.status).toBe("running")
      const onDisk = JSON.parse(readFileSync(store.path, "utf8")) as BootReport.BootReport
      expect(onDisk.outcome).toBe("running")
      expect(onDisk.checkpoints.map((c) => c.name)).toEqual([...BootReport.checkpointNames])
      yield* node.shutdown
      expect(JSON.parse(readFileSync(store.path, "utf8")).outcome).toBe("stopped")
    }).pipe(Effect.scoped),
  )

  it.live("after a crash, the next boot says what happened", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const store = Checkpoint.fileStore(dir)
      // A record as a process killed while starting "db" leaves it.
      const crashed: BootReport.BootReport = {
        bootId: "b-1",
        pid: deadPid(),
        startedAt: new Date().toISOString(),
        outcome: "starting",
        checkpoints: [
          { name: "init_start", at: 0 },
          { name: "pre_init_complete", at: 3 },
        ],
        phases: [],
        components: [
          {
            name: "config",
            phase: "pre-init",
            criticality: "CRITICAL",
            dependencies: [],
            status: "running",
            attempts: 1,
          },
          { name: "db", phase: "core", criticality: "CRITICAL", dependencies: [], status: "starting", attempts: 1 },
        ],
      }
      writeFileSync(store.path, JSON.stringify(crashed))
      const node = yield* Boot.boot([fixture(makeJournal(), "db")], { checkpoints: store })
      expect(node.report.previous).toMatchObject({
        bootId: "b-1",
        outcome: "crashed",
        lastCheckpoint: "pre_init_complete",
        summary: `previous boot b-1 (pid ${crashed.pid}) crashed during boot, after checkpoint pre_init_complete while starting db`,
      })
    }).pipe(Effect.scoped),
  )

  it.live("a failed boot records the failure and the last valid checkpoint, after rolling back", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const store = Checkpoint.fileStore(dir)
      const j = makeJournal()
      const scope = yield* Scope.make()
      const exit = yield* Effect.exit(
        Scope.extend(
          Boot.boot([fixture(j, "config", { phase: "pre-init" }), fixture(j, "db", { failTimes: Infinity })], {
            checkpoints: store,
          }),
          scope,
        ),
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const record = JSON.parse(readFileSync(store.path, "utf8")) as BootReport.BootReport
      expect(record.outcome).toBe("failed")
      expect(record.failure).toMatchObject({ component: "db", phase: "core" })
      expect(record.components.map((c) => [c.name, c.status])).toEqual([
        ["config", "stopped"],
        ["db", "failed"],
      ])
      const prev = Checkpoint.previousBoot(record)
      expect(prev?.summary).toBe(
        `previous boot ${record.bootId} failed in component db: CRITICAL component "db" (core) failed after 1 attempt(s): db broke (attempt 1); last valid checkpoint pre_init_complete`,
      )
    }),
  )

  it.live("an unwritable checkpoint directory fails the boot with a clear error", () =>
    Effect.gen(function* () {
      const file = join(tempDir(), "not-a-dir")
      writeFileSync(file, "")
      const error = yield* Effect.flip(
        Boot.boot([fixture(makeJournal(), "x")], { checkpoints: Checkpoint.fileStore(file) }),
      )
      expect(error._tag).toBe("CheckpointError")
      expect(error.message).toContain(`cannot write boot record ${join(file, "boot-record.json")}`)
    }).pipe(Effect.scoped),
  )
})

describe("boot report", () => {
  it.live("blame and critical chain follow the measured times", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const node = yield* Boot.boot([
        fixture(j, "config", { phase: "pre-init", takes: "5 millis" }),
        fixture(j, "security", { takes: "5 millis" }),
        fixture(j, "db", { dependencies: ["security"], takes: "150 millis" }),
        fixture(j, "cache", { dependencies: ["security"], takes: "5 millis" }),
        fixture(j, "api", { phase: "services", dependencies: ["cache"], takes: "5 millis" }),
      ])
      expect(BootReport.blame(node.report)[0]!.name).toBe("db")
      // api depends only on cache, but it had to wait for db: the core phase's end.
      expect(BootReport.criticalChain(node.report).map((l) => l.name)).toEqual(["config", "security", "db", "api"])
      expect(node.report.parallelEfficiency).toBeGreaterThan(0)
    }).pipe(Effect.scoped),
  )
})
