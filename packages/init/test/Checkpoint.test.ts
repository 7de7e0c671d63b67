import { spawnSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { tempDir } from "@novacron/testing"
import { Deferred, Effect, Exit, Fiber, Layer, Logger, Option, Scope } from "effect"
import { Boot, BootReport, Checkpoint, Component } from "../src/index.js"
import { fixture, makeJournal } from "./fixtures.js"

const deadPid = () => {
  const r = spawnSync(process.execPath, ["-e", ""])
  return r.pid!
}

describe("checkpoints", () => {
  it.scopedLive("are written durably at each phase with each component's status", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
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

  it.scopedLive("after a crash, the next boot says what happened", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
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

  it.scopedLive("a failed boot records the failure and the last valid checkpoint, after rolling back", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
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

  it.scopedLive("an unwritable checkpoint directory fails the boot with a clear error", () =>
    Effect.gen(function* () {
      const file = join(yield* tempDir, "not-a-dir")
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

/** A record as `boot` writes it, for `previousBoot`. */
const record = (over: Partial<BootReport.BootReport> = {}): BootReport.BootReport => ({
  bootId: "b-7",
  pid: 4242,
  startedAt: "2026-01-01T00:00:00.000Z",
  outcome: "starting",
  checkpoints: [],
  phases: [],
  components: [],
  ...over,
})
const dead = () => false
const live = () => true

describe("Checkpoint.previousBoot", () => {
  it("a record left by a clean shutdown says nothing, even though its process is gone", () => {
    expect(Checkpoint.previousBoot(record({ outcome: "stopped" }), dead)).toBeUndefined()
    expect(Checkpoint.previousBoot(record({ outcome: "stopped" }), live)).toBeUndefined()
  })

  it("a dead process that had reached READY crashed after READY, not during boot", () => {
    const prev = Checkpoint.previousBoot(
      record({ outcome: "running", checkpoints: [{ name: "init_complete", at: 9 }] }),
      dead,
    )
    expect(prev).toEqual({
      bootId: "b-7",
      pid: 4242,
      startedAt: "2026-01-01T00:00:00.000Z",
      outcome: "crashed",
      lastCheckpoint: "init_complete",
      summary: "previous boot b-7 (pid 4242) crashed after reaching READY",
    })
  })

  it("a crash during boot names every component that was still starting", () => {
    const starting = (name: string) =>
      ({ name, phase: "core", criticality: "CRITICAL", dependencies: [], status: "starting", attempts: 1 }) as const
    const prev = Checkpoint.previousBoot(
      record({ checkpoints: [{ name: "init_start", at: 0 }], components: [starting("db"), starting("cache")] }),
      dead,
    )
    expect(prev?.summary).toBe(
      "previous boot b-7 (pid 4242) crashed during boot, after checkpoint init_start while starting db, cache",
    )
  })

  it("a dead process that died before its first checkpoint crashed during boot, after none", () => {
    expect(Checkpoint.previousBoot(record(), dead)?.summary).toBe(
      "previous boot b-7 (pid 4242) crashed during boot, after checkpoint none",
    )
  })

  it("a record whose process is alive is still running, unless that process is this one", () => {
    expect(Checkpoint.previousBoot(record({ outcome: "running" }), live)).toMatchObject({
      outcome: "running",
      summary: "boot b-7 (pid 4242) is still running",
    })
    // In a container every boot gets the same pid: a record naming ours is a crash.
    expect(Checkpoint.previousBoot(record({ pid: process.pid }), live)).toMatchObject({ outcome: "crashed" })
  })

  it("by default asks the system whether the pid is alive", () => {
    expect(Checkpoint.previousBoot(record({ pid: process.ppid }))?.outcome).toBe("starting")
    expect(Checkpoint.previousBoot(record({ pid: deadPid() }))?.outcome).toBe("crashed")
    // Init is always alive; a process not allowed to signal it (EPERM) must still see it so.
    expect(Checkpoint.previousBoot(record({ pid: 1 }))?.outcome).toBe("starting")
  })

  it("a failed boot with no recorded cause still says it failed", () => {
    expect(Checkpoint.previousBoot(record({ outcome: "failed" }), live)).toMatchObject({
      outcome: "failed",
      summary: "previous boot b-7 failed: unknown cause; last valid checkpoint none",
    })
  })
})

describe("Checkpoint.fileStore", () => {
  it("CheckpointError names the operation, the file and the cause, whatever the cause is", () => {
    const at = (cause: unknown) =>
      new Checkpoint.CheckpointError({ path: "/d/r.json", operation: "write", cause }).message
    expect(at(new Error("EROFS: read-only file system"))).toBe(
      "cannot write boot record /d/r.json: EROFS: read-only file system",
    )
    expect(at("quota exceeded")).toBe("cannot write boot record /d/r.json: quota exceeded")
    expect(at(undefined)).toBe("cannot write boot record /d/r.json: undefined")
  })

  it.scopedLive("reads nothing where there is no record, and back what it wrote", () =>
    Effect.gen(function* () {
      const store = Checkpoint.fileStore(join(yield* tempDir, "nested"))
      expect(Option.isNone(yield* store.read)).toBe(true)
      const r = record({ outcome: "running", checkpoints: [{ name: "init_start", at: 0.5 }] })
      yield* store.write(r)
      expect(yield* store.read).toEqual(Option.some(r))
    }),
  )

  it.scopedLive("a record that is not JSON, or not a boot record, is CorruptRecord naming the file", () =>
    Effect.gen(function* () {
      const store = Checkpoint.fileStore(yield* tempDir)
      writeFileSync(store.path, '{"bootId": "b-1", "pid"')
      const e1 = yield* Effect.flip(store.read)
      expect(e1._tag).toBe("CorruptRecord")
      expect(e1.message).toMatch(new RegExp(`^boot record ${store.path} is corrupt: `))
      writeFileSync(store.path, JSON.stringify({ ...record(), outcome: "exploded" }))
      const e2 = yield* Effect.flip(store.read)
      expect(e2._tag).toBe("CorruptRecord")
      expect(e2.message).toContain("outcome")
    }),
  )

  it.scopedLive("a record that cannot be read is CheckpointError naming the file and the cause", () =>
    Effect.gen(function* () {
      const store = Checkpoint.fileStore(yield* tempDir)
      // Tests may run as root, which reads past any mode bits: a directory in its place does not.
      mkdirSync(store.path)
      const e = yield* Effect.flip(store.read)
      expect(e).toMatchObject({ _tag: "CheckpointError", operation: "read", path: store.path })
      expect(e.message).toMatch(new RegExp(`^cannot read boot record ${store.path}: EISDIR`))
    }),
  )
})

describe("booting over the previous record", () => {
  const captureWarnings = (lines: Array<string>) =>
    Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") lines.push(String(message))
      }),
    )

  it.scopedLive("after a clean shutdown, the next boot reports no previous trouble", () =>
    Effect.gen(function* () {
      const store = Checkpoint.fileStore(yield* tempDir)
      const first = yield* Effect.scoped(Boot.boot([fixture(makeJournal(), "db")], { checkpoints: store }))
      expect(first.report.outcome).toBe("stopped")
      const warnings: Array<string> = []
      const second = yield* Boot.boot([fixture(makeJournal(), "db")], { checkpoints: store }).pipe(
        Effect.provide(captureWarnings(warnings)),
      )
      expect(second.report.previous).toBeUndefined()
      expect(warnings).toEqual([])
    }).pipe(Effect.scoped),
  )

  it.scopedLive("a boot that reached READY and died is told apart from one that died starting", () =>
    Effect.gen(function* () {
      const store = Checkpoint.fileStore(yield* tempDir)
      // Left running, as a killed process leaves it; the pid is ours, as in a container.
      const first = yield* Boot.boot([fixture(makeJournal(), "db")], { checkpoints: store }).pipe(
        Scope.extend(yield* Scope.make()),
      )
      const second = yield* Boot.boot([fixture(makeJournal(), "db")], { checkpoints: store })
      expect(second.report.previous).toMatchObject({
        bootId: first.report.bootId,
        outcome: "crashed",
        lastCheckpoint: "init_complete",
        summary: `previous boot ${first.report.bootId} (pid ${process.pid}) crashed after reaching READY`,
      })
    }).pipe(Effect.scoped),
  )

  it.scopedLive("a corrupt record is logged with its path and replaced; the boot goes on", () =>
    Effect.gen(function* () {
      const store = Checkpoint.fileStore(yield* tempDir)
      writeFileSync(store.path, "\u0000\u0000\u0000")
      const warnings: Array<string> = []
      const node = yield* Boot.boot([fixture(makeJournal(), "db")], { checkpoints: store }).pipe(
        Effect.provide(captureWarnings(warnings)),
      )
      expect(node.report.previous).toBeUndefined()
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatch(new RegExp(`^boot record ${store.path} is corrupt: .*; ignoring it$`, "s"))
      expect(JSON.parse(readFileSync(store.path, "utf8")).bootId).toBe(node.report.bootId)
    }).pipe(Effect.scoped),
  )

  it.scopedLive("a record that cannot be read fails the boot before anything starts", () =>
    Effect.gen(function* () {
      const store = Checkpoint.fileStore(yield* tempDir)
      mkdirSync(store.path)
      const j = makeJournal()
      const error = yield* Effect.flip(Boot.boot([fixture(j, "db")], { checkpoints: store }))
      expect(error).toMatchObject({ _tag: "CheckpointError", operation: "read", path: store.path })
      expect(j.events).toEqual([])
    }).pipe(Effect.scoped),
  )
})

describe("the record of a boot that did not finish", () => {
  it.scopedLive(
    "interrupted mid-start (a signal): failed, 'boot interrupted' logged once at info, what was starting stopped",
    () => {
      const lines: Array<[string, string, Record<string, unknown>]> = []
      const capture = Logger.make(({ logLevel, message, annotations }) => {
        lines.push([logLevel.label, String(message), Object.fromEntries(annotations)])
      })
      return Effect.gen(function* () {
        const store = Checkpoint.fileStore(yield* tempDir)
        const starting = yield* Deferred.make<void>()
        const hangs = Component.make({
          name: "hangs",
          phase: "core",
          criticality: "CRITICAL",
          layer: Layer.effectDiscard(Effect.zipRight(Deferred.succeed(starting, undefined), Effect.never)),
        })
        const j = makeJournal()
        const fiber = yield* Effect.fork(
          Effect.scoped(Boot.boot([fixture(j, "config", { phase: "pre-init" }), hangs], { checkpoints: store })),
        )
        yield* Deferred.await(starting)
        yield* Fiber.interrupt(fiber)
        const record = JSON.parse(readFileSync(store.path, "utf8")) as BootReport.BootReport
        expect(record.outcome).toBe("failed")
        expect(record.failure).toEqual({ message: "boot interrupted" })
        // Said once, at info: an interruption is a request, not a failure.
        expect(lines.filter(([, m]) => /boot (failed|interrupted)/.test(m))).toEqual([
          [
            "INFO",
            "boot interrupted: rolling back what had started",
            { name: "boot.interrupted", checkpoint: "pre_init_complete" },
          ],
        ])
        expect(record.components.map((c) => [c.name, c.status])).toEqual([
          ["config", "stopped"],
          ["hangs", "stopped"],
        ])
        expect(j.names("down:")).toEqual(["config"])
        expect(Checkpoint.previousBoot(record)?.summary).toBe(
          `previous boot ${record.bootId} failed: boot interrupted; last valid checkpoint pre_init_complete`,
        )
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
    },
  )
})
