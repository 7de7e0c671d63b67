import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Boot, Component } from "@novacron/init"
import { Context, Effect, Layer, Schema } from "effect"
import { Logging } from "../src/index.js"

const settings = (s: Partial<Logging.Settings> = {}) =>
  Schema.decodeSync(Logging.Settings)({ data_dir: mkdtempSync(join(tmpdir(), "novacron-log-")), format: "json", ...s })

const capture = (isTTY = false) => {
  const lines: Array<string> = []
  return { lines, output: { write: (s: string) => lines.push(...s.split("\n").filter((l) => l !== "")), isTTY } }
}

describe("JSON lines", () => {
  it.effect("fields, level filtering and annotations", () =>
    Effect.gen(function* () {
      const { lines, output } = capture()
      yield* Effect.gen(function* () {
        yield* Effect.logDebug("dropped at info")
        yield* Effect.logInfo("started", "now").pipe(
          Effect.annotateLogs({
            component: "cache",
            duration: 12.5,
            dependencies: "security",
            name: "component.started",
          }),
        )
        yield* Effect.logWarning("careful").pipe(Effect.annotateLogs({ attempt: 2 }))
        yield* Effect.logError("boom")
      }).pipe(Effect.provide(Logging.layer(settings({ log_level: "info" }), output)))
      const records = lines.map((l) => JSON.parse(l))
      expect(records.map((r) => [r.level, r.message])).toEqual([
        ["info", "started now"],
        ["warn", "careful"],
        ["error", "boom"],
      ])
      expect(Object.keys(records[0])).toEqual([
        "timestamp",
        "level",
        "component",
        "message",
        "name",
        "duration",
        "dependencies",
      ])
      expect(records[0]).toMatchObject({
        component: "cache",
        duration: 12.5,
        dependencies: "security",
        name: "component.started",
      })
      expect(Date.parse(records[0].timestamp)).not.toBeNaN()
      expect(records[1].attempt).toBe(2)
    }),
  )

  it.effect("debug passes at log_level debug; error only at error", () =>
    Effect.gen(function* () {
      const count = (level: Logging.Settings["log_level"]) =>
        Effect.gen(function* () {
          const { lines, output } = capture()
          yield* Effect.all([
            Effect.logDebug("d"),
            Effect.logInfo("i"),
            Effect.logWarning("w"),
            Effect.logError("e"),
          ]).pipe(Effect.provide(Logging.layer(settings({ log_level: level }), output)))
          return lines.map((l) => JSON.parse(l).message).join("")
        })
      expect(yield* count("debug")).toBe("diwe")
      expect(yield* count("warn")).toBe("we")
      expect(yield* count("error")).toBe("e")
    }),
  )

  it.effect("readable on a terminal (auto), JSON when not", () =>
    Effect.gen(function* () {
      const tty = capture(true)
      yield* Effect.logInfo("hello").pipe(
        Effect.annotateLogs({ component: "config", duration: 3 }),
        Effect.provide(Logging.layer(settings({ format: "auto" }), tty.output)),
      )
      const esc = String.fromCharCode(27)
      expect(tty.lines[0]!.slice(0, 12)).toMatch(/^\d\d:\d\d:\d\d\.\d{3}$/)
      expect(tty.lines[0]!.slice(12)).toBe(` ${esc}[36mINFO ${esc}[0m [config] hello  ${esc}[2mduration=3${esc}[0m`)
      const pipe = capture(false)
      yield* Effect.logInfo("hello").pipe(Effect.provide(Logging.layer(settings({ format: "auto" }), pipe.output)))
      expect(JSON.parse(pipe.lines[0]!).message).toBe("hello")
    }),
  )
})

describe("file with size-based rotation", () => {
  it.effect("keeps max_files rotated files of about max_size bytes, newest lines last", () =>
    Effect.gen(function* () {
      const s = settings({ file: "logs/novacron.log", max_size: 4096, max_files: 2 })
      const { output } = capture()
      const total = 300
      yield* Effect.forEach(
        Array.from({ length: total }, (_, i) => i),
        (i) => Effect.logInfo(`line ${i} ${"x".repeat(40)}`),
        {
          discard: true,
        },
      ).pipe(Effect.provide(Logging.layer(s, output)))
      const dir = join(s.data_dir, "logs")
      const files = readdirSync(dir).sort()
      expect(files).toEqual(["novacron.log", "novacron.log.1", "novacron.log.2"])
      // Rotated on reaching max_size (checked after each write batch, so a little over).
      for (const f of files.slice(1)) {
        expect(statSync(join(dir, f)).size).toBeGreaterThanOrEqual(4096)
        expect(statSync(join(dir, f)).size).toBeLessThan(4096 + 1024)
      }
      const kept = ["novacron.log.2", "novacron.log.1", "novacron.log"].flatMap((f) =>
        readFileSync(join(dir, f), "utf8")
          .split("\n")
          .filter((l) => l !== ""),
      )
      const numbers = kept.map((l) => Number(JSON.parse(l).message.split(" ")[1]))
      // Contiguous and ending with the last line written: nothing lost inside the retained window.
      expect(numbers.at(-1)).toBe(total - 1)
      expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => total - numbers.length + i))
      expect(numbers.length).toBeLessThan(total)
    }),
  )

  it.effect("an unwritable log location fails the layer with the path", () =>
    Effect.gen(function* () {
      // A data_dir that is a regular file: the log directory cannot be created under it.
      const notADir = join(settings().data_dir, "plain-file")
      writeFileSync(notADir, "")
      const s = settings({ file: "x/novacron.log", data_dir: notADir })
      const error = yield* Effect.flip(Effect.scoped(Layer.build(Logging.layer(s, capture().output))))
      expect(error._tag).toBe("LogFileError")
      expect(error.message).toMatch(new RegExp(`^cannot open log file ${notADir}/x/novacron.log: Error: ENOTDIR`))
    }),
  )
})

describe("as an @novacron/init component with the router", () => {
  it.live("the kernel's own logs go through the configured logger once logging is up, with its annotations", () =>
    Effect.gen(function* () {
      const { lines, output } = capture()
      const s = settings({ log_level: "debug", file: "novacron.log" })
      const after = Component.make({
        name: "worker",
        phase: "core",
        criticality: "CRITICAL",
        dependencies: ["logging"],
        layer: Layer.effectDiscard(Effect.logDebug("worker debug line")),
      })
      yield* Effect.scoped(
        Effect.gen(function* () {
          const router = yield* Logging.LogRouter
          const node = yield* Boot.boot(
            [Component.place(Logging.component(s, { output }), { phase: "pre-init", criticality: "CRITICAL" }), after],
            {
              context: Context.make(Logging.LogRouter, router) as Context.Context<never>,
            },
          )
          expect(
            Context.get(node.context as Context.Context<Logging.LoggingService>, Logging.LoggingService).file,
          ).toBe(join(s.data_dir, "novacron.log"))
        }),
      ).pipe(Effect.provide(Logging.routerLayer({ log_level: "info" }, output)))
      const records = lines.map((l) => JSON.parse(l))
      const debug = records.find((r) => r.message === "worker debug line")
      expect(debug).toMatchObject({ level: "debug", component: "worker", dependencies: "logging" })
      const started = records.find((r) => r.message === "worker started")
      expect(started).toMatchObject({ component: "worker", dependencies: "logging" })
      expect(typeof started.duration).toBe("number")
      const file = readFileSync(join(s.data_dir, "novacron.log"), "utf8")
      expect(file).toContain('"message":"worker debug line"')
      expect(existsSync(join(s.data_dir, "novacron.log"))).toBe(true)
    }),
  )
})
