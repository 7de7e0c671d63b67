import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { BootAnalyze, BootProgress, type BootReport, Checkpoint } from "../src/index.js"

const record = {
  bootId: "b-7",
  outcome: "stopped",
  totalMillis: 30,
  checkpoints: [],
  phases: [],
  components: [
    {
      name: "config",
      phase: "pre-init",
      criticality: "CRITICAL",
      dependencies: [],
      status: "stopped",
      attempts: 1,
      startedAt: 0,
      finishedAt: 5,
    },
    {
      name: "db",
      phase: "core",
      criticality: "CRITICAL",
      dependencies: ["config"],
      status: "stopped",
      attempts: 1,
      startedAt: 5,
      finishedAt: 30,
    },
  ],
} as unknown as BootReport.BootReport

const dataDir = (contents?: string) => {
  const dir = mkdtempSync(join(tmpdir(), "init-analyze-"))
  if (contents !== undefined) {
    mkdirSync(BootAnalyze.bootDir(dir), { recursive: true })
    writeFileSync(join(BootAnalyze.bootDir(dir), Checkpoint.recordFile), contents)
  }
  return dir
}

describe("BootAnalyze", () => {
  it.effect("blame (slowest first), critical-chain and plot from the record", () =>
    Effect.gen(function* () {
      const dir = dataDir(JSON.stringify(record))
      expect(yield* BootAnalyze.analyze(dir, "blame", { json: false })).toBe("     25.0 ms db\n      5.0 ms config")
      expect(yield* BootAnalyze.analyze(dir, "critical-chain", { json: false })).toBe(
        "boot b-7: stopped, 30.0 ms\n└─ config @0.0 ms +5.0 ms\n  └─ db @5.0 ms +25.0 ms",
      )
      const out = join(dir, "chart.svg")
      expect(yield* BootAnalyze.analyze(dir, "plot", { json: true, output: out })).toBe(
        JSON.stringify({ written: out }),
      )
      expect(readFileSync(out, "utf8")).toMatch(/<g class="component" data-name="db"/)
    }),
  )

  it.effect("a missing record, a corrupt one and an unknown view are typed errors that say so", () =>
    Effect.gen(function* () {
      const missing = yield* Effect.flip(BootAnalyze.analyze(dataDir(), "blame", { json: false }))
      expect(missing).toMatchObject({ _tag: "BootRecordError", reason: "missing" })
      expect(missing.message).toMatch(/^no boot record at .*boot-record\.json: start the agent once/)
      const corrupt = yield* Effect.flip(BootAnalyze.analyze(dataDir("{"), "blame", { json: false }))
      expect(corrupt).toMatchObject({ _tag: "BootRecordError", reason: "unreadable" })
      const view = yield* Effect.flip(BootAnalyze.analyze(dataDir(JSON.stringify(record)), "pie", { json: false }))
      expect(view.message).toBe('unknown analyze view "pie" (expected blame, critical-chain, plot)')
    }),
  )
})

describe("BootProgress.readySummary", () => {
  it("one line per component with phase, criticality, status and init time, then the endpoints", () => {
    const text = BootProgress.readySummary(record, [["health", "http://127.0.0.1:1/healthz"]], "n1")
    expect(text).toContain("NovaCron node n1 READY in 30.0 ms")
    expect(text).toMatch(/^ {2}db +core +CRITICAL +stopped +25\.0$/m)
    expect(text).toMatch(/^ {2}health +http:\/\/127\.0\.0\.1:1\/healthz$/m)
  })
})
