// The QMP client against a real QEMU (an empty machine, no guest: it answers at once).
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { tempDir } from "@novacron/testing"
import { Chunk, Effect, Fiber, Schedule, Stream } from "effect"
import { Qmp } from "../src/index.js"
import { haveQemu } from "./guest.js"

const enabled = await haveQemu()

const qemu = Effect.gen(function* () {
  const dir = yield* tempDir
  const sock = path.join(dir, "qmp.sock")
  const child = yield* Effect.acquireRelease(
    Effect.sync(() =>
      spawn(
        "qemu-system-x86_64",
        [
          "-machine",
          "none",
          "-nodefaults",
          "-display",
          "none",
          "-S",
          "-name",
          "probe",
          "-qmp",
          `unix:${sock},server=on,wait=off`,
        ],
        { stdio: "ignore" },
      ),
    ),
    (c) => Effect.sync(() => c.kill("SIGKILL")),
  )
  // QEMU binds the socket file before it listens: retry a refused connect for a while.
  for (let i = 0; i < 100 && !fs.existsSync(sock); i++) yield* Effect.sleep("50 millis")
  const qmp = yield* Qmp.connect(sock).pipe(
    Effect.retry({ while: (e) => e._tag === "QmpConnectFailed", schedule: Schedule.spaced("50 millis"), times: 100 }),
  )
  return { sock, child, qmp }
})

describe.skipIf(!enabled)("Qmp on real QEMU", () => {
  it.scopedLive("greeting, typed queries, a real error reply, events, and the close on quit", () =>
    Effect.gen(function* () {
      const { qmp } = yield* qemu
      expect(qmp.greeting.QMP.version.qemu.major).toBeGreaterThanOrEqual(7)
      expect(yield* Qmp.queryStatus(qmp)).toMatchObject({ status: "prelaunch", running: false })
      expect(yield* Qmp.queryName(qmp)).toEqual({ name: "probe" })
      const err = yield* Effect.flip(qmp.execute("no-such-command"))
      expect(err).toMatchObject({ _tag: "QmpCommandFailed", class: "CommandNotFound" })
      const events = yield* qmp.events.pipe(Stream.take(2), Stream.runCollect, Effect.fork)
      yield* Effect.sleep("20 millis")
      yield* qmp.execute("cont")
      yield* qmp.execute("quit")
      const seen = Chunk.toArray(yield* Fiber.join(events)).map((e) => e.event)
      expect(seen).toEqual(["RESUME", "SHUTDOWN"])
      expect((yield* qmp.closed)._tag).toBe("QmpClosed")
      expect((yield* Effect.flip(qmp.execute("query-status")))._tag).toBe("QmpClosed")
    }),
  )
})
