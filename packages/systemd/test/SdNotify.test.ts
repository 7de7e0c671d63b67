import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { tempDir } from "@novacron/testing"
import { Deferred, Duration, Effect, Either, Fiber, Logger, Queue } from "effect"
import { SdNotify } from "../src/index.js"
import { listenDatagram } from "../src/internal/datagram.js"

/** A systemd stand-in: a bound unix datagram socket whose datagrams land in a queue. */
const receiver = Effect.gen(function* () {
  const dir = yield* tempDir
  const socket = path.join(dir, "notify")
  const received = yield* Queue.unbounded<string>()
  yield* Effect.acquireRelease(
    Effect.sync(() => listenDatagram(socket, (data) => Queue.unsafeOffer(received, data.toString("utf8")))),
    (l) => Effect.sync(() => l.close()),
  )
  return { socket, received }
})

describe("SdNotify", () => {
  it.scoped("READY=1 and STOPPING=1 (with STATUS) arrive as one datagram each", () =>
    Effect.gen(function* () {
      const { socket, received } = yield* receiver
      const n = yield* SdNotify.fromEnvironment({ NOTIFY_SOCKET: socket })
      expect(n.socket).toBe(socket)
      yield* n.ready("node a ready")
      yield* n.stopping()
      expect(yield* Queue.take(received)).toBe("READY=1\nSTATUS=node a ready")
      expect(yield* Queue.take(received)).toBe("STOPPING=1")
    }),
  )

  it.scoped("a newline in a value cannot add a line of its own", () =>
    Effect.gen(function* () {
      const { socket, received } = yield* receiver
      const n = yield* SdNotify.fromEnvironment({ NOTIFY_SOCKET: socket })
      yield* n.ready("x\nMAINPID=1")
      expect(yield* Queue.take(received)).toBe("READY=1\nSTATUS=x MAINPID=1")
    }),
  )

  it.effect("without NOTIFY_SOCKET every call is a no-op", () =>
    Effect.gen(function* () {
      for (const env of [{}, { NOTIFY_SOCKET: "" }, { WATCHDOG_USEC: "1000000" }]) {
        const n = yield* SdNotify.fromEnvironment(env)
        expect(n.socket).toBeUndefined()
        expect(n.watchdogInterval).toBeUndefined()
        yield* n.ready()
        yield* SdNotify.keepWatchdog(n) // returns at once
      }
    }),
  )

  it.effect("a socket it cannot use is refused, naming the variable", () =>
    Effect.gen(function* () {
      const cases = [
        [{ NOTIFY_SOCKET: "@/org/freedesktop/systemd1/notify" }, "NOTIFY_SOCKET", /abstract/],
        [{ NOTIFY_SOCKET: "run/notify" }, "NOTIFY_SOCKET", /absolute/],
        [{ NOTIFY_SOCKET: "/run/n", WATCHDOG_USEC: "10s" }, "WATCHDOG_USEC", /microseconds/],
        [{ NOTIFY_SOCKET: "/run/n", WATCHDOG_USEC: "1000", WATCHDOG_PID: "me" }, "WATCHDOG_PID", /process id/],
      ] as const
      for (const [env, variable, reason] of cases) {
        const error = yield* Effect.flip(SdNotify.fromEnvironment(env))
        expect(error._tag).toBe("NotifySocketInvalid")
        expect(error.variable).toBe(variable)
        expect(error.message).toMatch(reason)
      }
    }),
  )

  it.effect("the watchdog is half WATCHDOG_USEC, and only for the process WATCHDOG_PID names", () =>
    Effect.gen(function* () {
      const mine = yield* SdNotify.fromEnvironment({ NOTIFY_SOCKET: "/run/n", WATCHDOG_USEC: "30000000" }, 42)
      expect(Duration.toMillis(mine.watchdogInterval ?? Duration.zero)).toBe(15_000)
      const named = yield* SdNotify.fromEnvironment(
        { NOTIFY_SOCKET: "/run/n", WATCHDOG_USEC: "30000000", WATCHDOG_PID: "42" },
        42,
      )
      expect(named.watchdogInterval).toBeDefined()
      const other = yield* SdNotify.fromEnvironment(
        { NOTIFY_SOCKET: "/run/n", WATCHDOG_USEC: "30000000", WATCHDOG_PID: "43" },
        42,
      )
      expect(other.watchdogInterval).toBeUndefined()
    }),
  )

  it.scopedLive("keepWatchdog pings WATCHDOG=1 again and again until interrupted", () =>
    Effect.gen(function* () {
      const { socket, received } = yield* receiver
      const n = yield* SdNotify.fromEnvironment({ NOTIFY_SOCKET: socket, WATCHDOG_USEC: "40000" })
      const fiber = yield* Effect.fork(SdNotify.keepWatchdog(n))
      for (let i = 0; i < 3; i++) expect(yield* Queue.take(received)).toBe("WATCHDOG=1")
      yield* Fiber.interrupt(fiber)
    }),
  )

  it.scopedLive("a socket nobody listens on fails with NotifyFailed naming it; the watchdog logs and goes on", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const socket = path.join(dir, "nobody")
      const n = yield* SdNotify.fromEnvironment({ NOTIFY_SOCKET: socket, WATCHDOG_USEC: "20000" })
      const error = yield* Effect.either(n.ready())
      expect(Either.isLeft(error) && error.left._tag).toBe("NotifyFailed")
      expect(Either.isLeft(error) && error.left.message).toContain(socket)
      // Two failed pings logged, and the loop still running.
      const logged = yield* Deferred.make<void>()
      let count = 0
      const fiber = yield* Effect.fork(
        SdNotify.keepWatchdog(n).pipe(
          Effect.provide(
            Logger.replace(
              Logger.defaultLogger,
              Logger.make(() => {
                if (++count === 2) Deferred.unsafeDone(logged, Effect.void)
              }),
            ),
          ),
        ),
      )
      yield* Deferred.await(logged)
      expect(fiber.unsafePoll()).toBeNull()
      yield* Fiber.interrupt(fiber)
    }),
  )
})
