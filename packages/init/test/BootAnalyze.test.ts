import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { BootAnalyze, BootProgress, type BootReport, Checkpoint } from "../src/index.js"

const record = {
  bootId: "b-7",
  pid: 4242,
  startedAt: "2026-12-07T15:00:00.000Z",
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

  it.effect(
    "a missing, unreadable, truncated or invalid record and an unknown view are typed errors naming the file",
    () =>
      Effect.gen(function* () {
        const missing = yield* Effect.flip(BootAnalyze.analyze(dataDir(), "blame", { json: false }))
        expect(missing).toMatchObject({ _tag: "BootRecordError", reason: "missing" })
        expect(missing.message).toMatch(/^no boot record at .*boot-record\.json: start the agent once/)
        const unreadable = dataDir()
        mkdirSync(join(BootAnalyze.bootDir(unreadable), Checkpoint.recordFile), { recursive: true })
        const dir = yield* Effect.flip(BootAnalyze.analyze(unreadable, "blame", { json: false }))
        expect(dir).toMatchObject({ _tag: "BootRecordError", reason: "unreadable" })
        expect(dir.message).toMatch(/^cannot read boot record .*boot-record\.json: EISDIR/)
        const truncated = yield* Effect.flip(BootAnalyze.analyze(dataDir("{"), "blame", { json: false }))
        expect(truncated).toMatchObject({ _tag: "CorruptRecord" })
        expect(truncated.message).toMatch(/^boot record .*boot-record\.json is corrupt: /)
        // JSON, but not a boot record: a component without its criticality is named, not cast through.
        const { criticality: _, ...noCriticality } = record.components[1]!
        const wrong = JSON.stringify({ ...record, components: [record.components[0], noCriticality] })
        const invalid = yield* Effect.flip(BootAnalyze.analyze(dataDir(wrong), "critical-chain", { json: false }))
        expect(invalid).toMatchObject({ _tag: "CorruptRecord" })
        expect(invalid.message).toMatch(
          /^boot record .*boot-record\.json is corrupt: components\.1\.criticality: is missing$/,
        )
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
