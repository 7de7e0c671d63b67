import { randomBytes } from "node:crypto"
import type * as net from "node:net"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Stream, TestClock } from "effect"
import { Pacer } from "../src/index.js"
import { loopbackPair } from "./helpers.js"

describe("Pacer (TestClock)", () => {
  it.effect("holds take() to the rate, after the initial burst", () =>
    Effect.gen(function* () {
      const pacer = yield* Pacer.make({ rate: 100_000, burst: 20_000 })
      // 1 MB at 100 kB/s with 20 kB of burst up front: done at 9.8 s, not before.
      const fiber = yield* Effect.fork(pacer.take(1_000_000))
      yield* TestClock.adjust("9700 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("100 millis")
      yield* Fiber.join(fiber)
      expect((yield* pacer.stats).bytes).toBe(1_000_000)
    }),
  )

  it.effect("a rate change applies to the rest of a transfer", () =>
    Effect.gen(function* () {
      const pacer = yield* Pacer.make({ rate: 100_000, burst: 10_000 })
      const fiber = yield* Effect.fork(pacer.take(1_010_000))
      // After 5 s at 100 kB/s, 510 kB are through; the other 500 kB at 250 kB/s take 2 s more.
      yield* TestClock.adjust("5 seconds")
      yield* pacer.setRate(250_000)
      yield* TestClock.adjust("1900 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("200 millis")
      yield* Fiber.join(fiber)
    }),
  )

  it.effect("follow() tracks a stream of allocations; unlimited passes at once", () =>
    Effect.gen(function* () {
      const pacer = yield* Pacer.make({ rate: 1000 })
      yield* Pacer.follow(pacer, Stream.make(5000, Pacer.shareOf(80_000, 0.5)))
      expect((yield* pacer.stats).rate).toBe(5000)
      yield* pacer.setRate(Number.POSITIVE_INFINITY)
      const fiber = yield* Effect.fork(pacer.take(1e9))
      yield* Fiber.join(fiber)
    }),
  )
})

/** Sends `payload` through a paced transform into `client`; returns per-byte arrival times at `server`. */
const timedTransfer = (
  pair: { client: net.Socket; server: net.Socket },
  pacer: Pacer.Pacer,
  payload: Buffer,
  onProgress: (received: number) => void = () => {},
) =>
  Effect.gen(function* () {
    const paced = yield* Pacer.transform(pacer)
    const marks: Array<[number, number]> = []
    const done = Effect.async<void>((resume) => {
      let received = 0
      pair.server.on("data", (d: Buffer) => {
        received += d.length
        marks.push([performance.now(), received])
        onProgress(received)
        if (received === payload.length) resume(Effect.void)
      })
    })
    const start = performance.now()
    const send = Effect.promise(() => pipeline(Readable.from([payload]), paced, pair.client, { end: false }))
    yield* Effect.all([send, done], { concurrency: 2 })
    return { start, marks }
  })

/** Time at which `bytes` had arrived. */
const at = (marks: ReadonlyArray<[number, number]>, bytes: number): number =>
  (marks.find(([, r]) => r >= bytes) as [number, number])[0]

describe("Pacer on real loopback sockets", () => {
  it.live("a Transform holds a TCP stream to the rate (±10 %)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const pair = yield* loopbackPair
        const rate = 8 * 1024 * 1024 // 8 MiB/s
        const burst = 256 * 1024 // absorbs ~30 ms of scheduling delay on a busy machine
        const pacer = yield* Pacer.make({ rate, burst })
        const payload = randomBytes(6 * 1024 * 1024)
        const { start, marks } = yield* timedTransfer(pair, pacer, payload)
        // The burst goes at once; the rest at the rate.
        const seconds = (at(marks, payload.length) - start) / 1000
        const achieved = (payload.length - burst) / seconds
        expect(achieved / rate).toBeGreaterThan(0.9)
        expect(achieved / rate).toBeLessThan(1.1)
      }),
    ),
  )

  it.live("a rate change mid-transfer changes the achieved rate (±15 %)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const pair = yield* loopbackPair
        const slow = 4 * 1024 * 1024
        const fast = 16 * 1024 * 1024
        const pacer = yield* Pacer.make({ rate: slow })
        const payload = randomBytes(10 * 1024 * 1024)
        const switchAt = 2 * 1024 * 1024
        let switched = false
        const { marks } = yield* timedTransfer(pair, pacer, payload, (received) => {
          if (!switched && received >= switchAt) {
            switched = true
            Effect.runSync(pacer.setRate(fast))
          }
        })
        // Measure away from the switch (one piece of slack on each side).
        const slowRate =
          (1.5 * 1024 * 1024 - 512 * 1024) / ((at(marks, 1.5 * 1024 * 1024) - at(marks, 512 * 1024)) / 1000)
        const fastRate = (6 * 1024 * 1024) / ((at(marks, 9.5 * 1024 * 1024) - at(marks, 3.5 * 1024 * 1024)) / 1000)
        expect(slowRate / slow).toBeGreaterThan(0.85)
        expect(slowRate / slow).toBeLessThan(1.15)
        expect(fastRate / fast).toBeGreaterThan(0.85)
        expect(fastRate / fast).toBeLessThan(1.15)
      }),
    ),
  )
})
