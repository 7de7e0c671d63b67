// Issue 16: the public API is Effect: sources live in a Scope, hooks are Effects, reconnecting
// follows a Schedule.
import { readdir, readlink, writeFile } from "node:fs/promises"
import * as net from "node:net"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Schedule, Scope } from "effect"
import { Sender, Source } from "../src/index.js"
import { payload, settings, tmp } from "./helpers.js"

const fdsOn = async (path: string) => {
  let n = 0
  for (const fd of await readdir("/proc/self/fd"))
    if ((await readlink(`/proc/self/fd/${fd}`).catch(() => "")) === path) n++
  return n
}

/** A port nothing listens on. */
const freePort = Effect.promise(
  () =>
    new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = s.address() as net.AddressInfo
        s.close(() => resolve(port))
      })
    }),
)

describe("Effect API", () => {
  it.live("Source.fromFile reads in its Scope and closes the file with it", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const path = join(dir, "src.img")
      const data = payload(100_000, 61)
      yield* Effect.promise(() => writeFile(path, data))
      const scope = yield* Scope.make()
      const source = yield* Source.fromFile(path).pipe(Scope.extend(scope))
      expect(source.size).toBe(data.length)
      expect((yield* source.read(1000, 5000)).equals(data.subarray(1000, 6000))).toBe(true)
      expect(yield* Effect.promise(() => fdsOn(path))).toBe(1)
      const short = yield* Effect.either(source.read(data.length - 10, 100))
      expect(Either.isLeft(short) && short.left._tag === "SourceError" && /short read/.test(short.left.message)).toBe(
        true,
      )
      yield* Scope.close(scope, Exit.void)
      expect(yield* Effect.promise(() => fdsOn(path))).toBe(0)
      const missing = yield* Effect.either(Effect.scoped(Source.fromFile(join(dir, "nope"))))
      expect(Either.isLeft(missing) && missing.left.path === join(dir, "nope")).toBe(true)
    }).pipe(Effect.scoped),
  )

  it.live("reconnects on the given Schedule, then fails naming the attempts", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const events: Array<Sender.SenderEvent> = []
      const r = yield* Effect.either(
        Sender.send({
          host: "127.0.0.1",
          port,
          source: Source.fromBuffer(payload(1000, 62), "none.bin"),
          settings: settings(),
          reconnect: Schedule.spaced(10).pipe(Schedule.intersect(Schedule.recurs(3))),
          onEvent: (e) => events.push(e),
        }),
      )
      expect(Either.isLeft(r) && r.left.reason === "connect").toBe(true)
      expect(Either.isLeft(r) && r.left.message).toMatch(/gave up after 3 reconnects/)
      expect(
        events.filter((e) => e._tag === "Reconnecting").map((e) => e._tag === "Reconnecting" && e.attempt),
      ).toEqual([1, 2, 3])
    }),
  )
})
