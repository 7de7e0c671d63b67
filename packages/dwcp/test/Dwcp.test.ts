import { describe, expect, it } from "@effect/vitest"
import { EnvironmentDetector } from "@novacron/environment"
import {
  Context,
  Effect,
  Fiber,
  Layer,
  Logger,
  Metric,
  type MetricState,
  Option,
  Ref,
  Schedule,
  Stream,
  TestClock,
} from "effect"
import * as Dwcp from "../src/Dwcp.js"
import type * as Engine from "../src/Engine.js"
import * as LinkClassifier from "../src/LinkClassifier.js"
import * as Negotiation from "../src/Negotiation.js"
import * as Part from "../src/Part.js"
import * as Rollout from "../src/Rollout.js"

type Name = Part.Name

const allOn: Rollout.Flags = {
  v3_rollout_percentage: 100,
  enable_v3_transport: true,
  enable_v3_compression: true,
  enable_v3_prediction: true,
  enable_v3_state_sync: true,
  enable_v3_consensus: true,
  enable_v3_placement: true,
}

/** Fake v3 engines whose start and run can be broken per part, over an in-memory network. */
const harness = (
  flags: Rollout.Flags = allOn,
  brokenAtStart: ReadonlyArray<Name> = [],
  hangingAtStart: ReadonlyArray<Name> = [],
  transportDelay = 0,
) =>
  Effect.gen(function* () {
    const brokenStart = yield* Ref.make(new Set<Name>(brokenAtStart))
    const brokenRun = yield* Ref.make(new Set<Name>())
    const starts = yield* Ref.make<Record<string, number>>({})
    const inbox: Array<{ peer: string; carrier: string; bytes: Uint8Array }> = []
    const store = new Map<string, string>()
    const logs: Array<string> = []
    const run = (p: Name) =>
      Effect.flatMap(Ref.get(brokenRun), (s) =>
        s.has(p) ? Effect.fail(new Part.PartFailure({ part: p, reason: `${p} engine crashed` })) : Effect.void,
      )
    const start = <A>(p: Name, engine: A) =>
      Effect.gen(function* () {
        yield* Ref.update(starts, (s) => ({ ...s, [p]: (s[p] ?? 0) + 1 }))
        if ((yield* Ref.get(brokenStart)).has(p)) return yield* Effect.fail(new Error(`${p}: addon not loaded`))
        if (hangingAtStart.includes(p) && (yield* Ref.get(starts))[p] === 1) return yield* Effect.never
        return engine
      })
    const v3: Dwcp.V3Engines = {
      transport: start("transport", {
        send: (r) =>
          Effect.zipRight(
            transportDelay > 0 ? Effect.zipRight(run("transport"), Effect.sleep(transportDelay)) : run("transport"),
            Effect.sync(() => {
              inbox.push({ peer: r.peer, carrier: `multistream ${r.row.congestion.join(",")}`, bytes: r.payload })
              return { bytes: r.payload.length, streams: 4, carrier: "multistream" }
            }),
          ),
      } satisfies Engine.Transport),
      congestion: start("congestion", {
        order: (row) => Effect.as(run("congestion"), { order: row.congestion }),
      } satisfies Dwcp.Congestion),
      compression: start("compression", {
        encoding: "fake3",
        encode: (d) => Effect.as(run("compression"), d),
        decode: (d) => Effect.as(run("compression"), d),
      } satisfies Engine.Compression),
      prediction: start("prediction", {
        predict: () => Effect.as(run("prediction"), { bps: 1e8, predictor: "fake" }),
        observe: () => run("prediction"),
      } satisfies Engine.Prediction),
      state_sync: start("state_sync", {
        kind: "fake etcd",
        put: (k, v) =>
          Effect.zipRight(
            run("state_sync"),
            Effect.sync(() => void store.set(k, v)),
          ),
        get: (k) => Effect.as(run("state_sync"), Option.fromNullable(store.get(k))),
      } satisfies Engine.StateSync),
      placement: start("placement", {
        place: (_w, hosts) => Effect.as(run("placement"), hosts[hosts.length - 1]!.id),
      } satisfies Engine.Placement),
    }
    const v1Transport: Engine.Transport = {
      send: (r) =>
        Effect.sync(() => {
          inbox.push({ peer: r.peer, carrier: "tls-single", bytes: r.payload })
          return { bytes: r.payload.length, streams: 1, carrier: "tls-single" }
        }),
    }
    const detector = EnvironmentDetector.layer({ ...EnvironmentDetector.Settings.make({}), forced_mode: "internet" })
    const classifier = LinkClassifier.layer({ congestion: Effect.succeed(["cubic", "bbr"]) }).pipe(
      Layer.provide(detector),
    )
    const layer = Dwcp.layer({
      nodeId: "node-1",
      flags,
      v3,
      v1Transport,
      retry: Schedule.spaced("10 seconds"),
    }).pipe(
      Layer.provide(classifier),
      Layer.provide(
        Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ message }) => void logs.push(String(message))),
        ),
      ),
    )
    const dwcp = Context.get(yield* Layer.build(layer), Dwcp.Dwcp)
    return { dwcp, brokenStart, brokenRun, starts, inbox, store, logs }
  })

const settle = Effect.repeatN(Effect.yieldNow(), 20)
const statusOf = (dwcp: Dwcp.Service, p: Name) => Effect.map(dwcp.status, (s) => s.parts.find((x) => x.part === p)!)
const failuresOf = (p: Name, phase: "start" | "run") =>
  Effect.map(
    Metric.value(Part.failures.pipe(Metric.tagged("part", p), Metric.tagged("phase", phase))),
    (s: MetricState.MetricState.Counter<number>) => s.count,
  )

const hosts: ReadonlyArray<Engine.HostSpec> = [
  { id: "h1", cpuMilli: 500, memoryMib: 512 },
  { id: "h2", cpuMilli: 8000, memoryMib: 16384 },
  { id: "h3", cpuMilli: 8000, memoryMib: 16384 },
]
const workload = { id: "vm-1", cpuMilli: 1000, memoryMib: 1024 }

/** Runs the operation that uses part `p` and says which version served `p`. */
const exercise = (dwcp: Dwcp.Service, p: Name) =>
  Effect.gen(function* () {
    switch (p) {
      case "state_sync":
        return (yield* dwcp.sync("vm/1", "running")).state_sync
      case "placement": {
        const r = yield* dwcp.place(workload, hosts)
        // v3 (the fake) takes the last host; v1 first fit takes h2.
        expect(r.host).toBe(r.served === "v3" ? "h3" : "h2")
        return r.served
      }
      default: {
        const data = Buffer.alloc(64 * 1024, 7)
        const r = yield* dwcp.send({ peer: "node-2", name: "mem.bin", data })
        return r.served[p]
      }
    }
  })

describe("observations", () => {
  it.scopedLive("a v3 send with a prediction is observed: predicted beside measured, with the predictor", () =>
    Effect.gen(function* () {
      const { dwcp } = yield* harness(allOn, [], [], 20)
      const seen = yield* Effect.fork(Stream.runCollect(Stream.take(Stream.fromQueue(yield* dwcp.observations), 1)))
      const data = Buffer.alloc(256 * 1024, 7)
      const r = yield* dwcp.send({ peer: "node-2", name: "mem.bin", data })
      const [o] = [...(yield* Fiber.join(seen))]
      expect(o).toMatchObject({ peer: "node-2", predictedBps: 1e8, predictor: "fake", wireBytes: r.wireBytes })
      // 256 KiB in at least 20 ms: at most ~13 MB/s, and more than nothing.
      expect(o!.measuredBps).toBeGreaterThan(0)
      expect(o!.measuredBps).toBeLessThanOrEqual((r.wireBytes * 1000) / 20)
    }),
  )

  it.scopedLive("no prediction, no observation: a send with prediction on v1 is not observed", () =>
    Effect.gen(function* () {
      const { dwcp } = yield* harness({ ...allOn, enable_v3_prediction: false }, [], [], 20)
      const seen = yield* Effect.fork(Stream.runCollect(Stream.take(Stream.fromQueue(yield* dwcp.observations), 1)))
      const r = yield* dwcp.send({ peer: "node-2", name: "mem.bin", data: Buffer.alloc(1024, 1) })
      expect(r.served.prediction).toBe("v1")
      yield* Effect.sleep(50)
      expect(yield* Fiber.poll(seen)).toEqual(Option.none())
    }),
  )
})

describe("the v1 fallback, part by part", () => {
  for (const p of Part.names) {
    it.scoped(`${p} failing at start: v1, degraded naming it, retried on the schedule, recovered`, () =>
      Effect.gen(function* () {
        const before = yield* failuresOf(p, "start")
        const { dwcp, brokenStart: bs, starts, logs } = yield* harness(allOn, [p])
        expect(yield* statusOf(dwcp, p)).toMatchObject({
          _tag: "down",
          phase: "start",
          cause: `${p}: addon not loaded`,
        })
        const health = Dwcp.health(yield* dwcp.status)
        expect(health.status).toBe("degraded")
        expect(health.message).toContain(`${p} on v1: v3 failed at start (${p}: addon not loaded)`)
        expect((yield* failuresOf(p, "start")) - before).toBeGreaterThanOrEqual(1)
        expect(logs.some((l) => l.includes(`DWCP ${p}: v3 failed at start`))).toBe(true)
        expect(yield* exercise(dwcp, p)).toBe("v1")
        // Still broken at the first retry: still v1, one more start.
        yield* TestClock.adjust("10 seconds")
        yield* settle
        expect((yield* Ref.get(starts))[p]).toBe(2)
        expect((yield* statusOf(dwcp, p))._tag).toBe("down")
        yield* Ref.set(bs, new Set())
        yield* TestClock.adjust("10 seconds")
        yield* settle
        expect(yield* statusOf(dwcp, p)).toMatchObject({ _tag: "up", recoveries: 1 })
        expect(Dwcp.health(yield* dwcp.status).status).toBe("healthy")
        expect(yield* exercise(dwcp, p)).toBe("v3")
        expect(logs.some((l) => l.includes(`DWCP ${p}: v3 recovered`))).toBe(true)
      }),
    )

    it.scoped(`${p} failing at run time: that call on v1, degraded, retried, recovered`, () =>
      Effect.gen(function* () {
        const before = yield* failuresOf(p, "run")
        const { dwcp, brokenRun, brokenStart, starts } = yield* harness()
        expect(yield* exercise(dwcp, p)).toBe("v3")
        yield* Ref.set(brokenRun, new Set([p]))
        yield* Ref.set(brokenStart, new Set([p]))
        expect(yield* exercise(dwcp, p)).toBe("v1")
        expect(yield* statusOf(dwcp, p)).toMatchObject({ _tag: "down", phase: "run", cause: `${p} engine crashed` })
        expect(Dwcp.health(yield* dwcp.status).message).toContain(`${p} on v1: v3 failed at run (${p} engine crashed)`)
        expect((yield* failuresOf(p, "run")) - before).toBe(1)
        // Down: the next call goes straight to v1 without touching the broken engine.
        expect(yield* exercise(dwcp, p)).toBe("v1")
        yield* Ref.set(brokenRun, new Set())
        yield* Ref.set(brokenStart, new Set())
        yield* TestClock.adjust("10 seconds")
        yield* settle
        expect((yield* Ref.get(starts))[p]).toBe(2)
        expect(yield* statusOf(dwcp, p)).toMatchObject({ _tag: "up", recoveries: 1 })
        expect(yield* exercise(dwcp, p)).toBe("v3")
      }),
    )
  }
})

describe("a part that hangs at start", () => {
  it.scoped("holds the boot only for the start timeout, then runs v1 and is retried", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(harness(allOn, [], ["compression"]))
      yield* TestClock.adjust("10 seconds")
      const { dwcp } = yield* Fiber.join(fiber)
      expect(yield* statusOf(dwcp, "compression")).toMatchObject({ _tag: "down", cause: "did not start within 10s" })
      expect((yield* statusOf(dwcp, "transport"))._tag).toBe("up")
      yield* TestClock.adjust("10 seconds")
      yield* settle
      expect((yield* statusOf(dwcp, "compression"))._tag).toBe("up")
    }),
  )
})

describe("flags and rollout", () => {
  it.scoped("a flag off runs that part on v1 without calling it a fault; the reason names the key", () =>
    Effect.gen(function* () {
      const { dwcp, starts } = yield* harness({ ...allOn, enable_v3_compression: false })
      expect(yield* statusOf(dwcp, "compression")).toEqual({
        _tag: "off",
        part: "compression",
        reason: "dwcp.enable_v3_compression is false",
      })
      expect((yield* Ref.get(starts)).compression).toBeUndefined()
      const r = yield* dwcp.send({ peer: "node-2", name: "x", data: Buffer.alloc(1000) })
      expect(r.served).toMatchObject({ compression: "v1", transport: "v3" })
      expect(r.encoding).toBe("zstd3")
      expect(Dwcp.health(yield* dwcp.status).status).toBe("healthy")
    }),
  )

  it.scoped("outside the rollout every part is v1, the reason gives the bucket", () =>
    Effect.gen(function* () {
      const bucket = Rollout.rolloutBucket("node-1")
      const { dwcp } = yield* harness({ ...allOn, v3_rollout_percentage: bucket })
      const parts = (yield* dwcp.status).parts
      expect(parts.every((p) => p._tag === "off")).toBe(true)
      expect(parts[0]).toMatchObject({
        reason: `node node-1 is outside the v3 rollout (bucket ${bucket}, dwcp.v3_rollout_percentage ${bucket})`,
      })
      const inside = yield* harness({ ...allOn, v3_rollout_percentage: bucket + 1 })
      expect((yield* inside.dwcp.status).parts.every((p) => p._tag === "up")).toBe(true)
    }),
  )

  it("the bucket is stable per node id and spreads ids over 0..99", () => {
    expect(Rollout.rolloutBucket("node-1")).toBe(Rollout.rolloutBucket("node-1"))
    const buckets = new Set(Array.from({ length: 500 }, (_, i) => Rollout.rolloutBucket(`node-${i}`)))
    expect(Math.min(...buckets)).toBeGreaterThanOrEqual(0)
    expect(Math.max(...buckets)).toBeLessThan(100)
    expect(buckets.size).toBeGreaterThan(90)
  })
})

describe("no data lost across a fallback", () => {
  it.scoped("state written on v1 while the store is down reaches the v3 store when it recovers", () =>
    Effect.gen(function* () {
      const { dwcp, brokenRun, brokenStart, store } = yield* harness()
      yield* dwcp.sync("a", "1")
      yield* Ref.set(brokenRun, new Set<Name>(["state_sync"]))
      yield* Ref.set(brokenStart, new Set<Name>(["state_sync"]))
      expect(yield* dwcp.sync("b", "2")).toEqual({ state_sync: "v1" })
      yield* dwcp.sync("a", "3")
      expect(yield* dwcp.read("a")).toEqual(Option.some("3"))
      expect(store.get("a")).toBe("1")
      yield* Ref.set(brokenRun, new Set())
      yield* Ref.set(brokenStart, new Set())
      yield* TestClock.adjust("10 seconds")
      yield* settle
      expect(Object.fromEntries(store)).toEqual({ a: "3", b: "2" })
      expect(yield* dwcp.read("b")).toEqual(Option.some("2"))
    }),
  )

  it.scoped("a send whose compression fails mid-way is still delivered whole, on zstd3, and opens", () =>
    Effect.gen(function* () {
      const { dwcp, brokenRun, inbox } = yield* harness()
      yield* Ref.set(brokenRun, new Set<Name>(["compression"]))
      const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251))
      const r = yield* dwcp.send({ peer: "node-2", name: "mem.bin", data })
      expect(r).toMatchObject({ encoding: "zstd3", served: { compression: "v1" } })
      expect(Buffer.from(yield* dwcp.open(inbox.at(-1)!.bytes, 1 << 20)).equals(data)).toBe(true)
    }),
  )
})

describe("open: what a peer sent", () => {
  it.scoped(
    "v3 and v1 payloads open; an encoding this node lacks, a version it does not speak, and garbage are named",
    () =>
      Effect.gen(function* () {
        const { dwcp, inbox } = yield* harness()
        const data = Buffer.alloc(10_000, 3)
        yield* dwcp.send({ peer: "node-2", name: "x", data })
        expect(Buffer.from(yield* dwcp.open(inbox.at(-1)!.bytes, 1 << 20)).equals(data)).toBe(true)
        const v1only = yield* harness({ ...allOn, enable_v3_compression: false })
        const e = yield* Effect.flip(v1only.dwcp.open(inbox.at(-1)!.bytes, 1 << 20))
        expect(e).toMatchObject({ _tag: "EncodingUnavailable", encoding: "fake3", available: ["zstd3"] })
        const v9 = Buffer.from(inbox.at(-1)!.bytes)
        v9[4] = 9
        expect(yield* Effect.flip(dwcp.open(v9, 1 << 20))).toMatchObject({
          _tag: "UnsupportedVersion",
          version: 9,
          supported: [3, 1],
        })
        expect(yield* Effect.flip(dwcp.open(Buffer.from("GET / HTTP/1.1"), 1 << 20))).toMatchObject({
          _tag: "EnvelopeError",
          offset: 0,
        })
      }),
  )
})

describe("version negotiation", () => {
  it.scoped("a peer offering no common version is refused, naming both sides; nothing is sent", () =>
    Effect.gen(function* () {
      const { dwcp, inbox } = yield* harness()
      expect(yield* dwcp.offer).toEqual({ versions: [3, 1], encodings: ["fake3", "zstd3"] })
      const e = yield* Effect.flip(
        dwcp.send({
          peer: "node-4",
          name: "x",
          data: Buffer.alloc(10),
          peerOffer: { versions: [4], encodings: ["zstd3"] },
        }),
      )
      expect(e).toMatchObject({ _tag: "NoCommonVersion", local: [3, 1], remote: [4] })
      expect(e.message).toBe("no common DWCP version with node-4: this node speaks 3, 1, the peer 4")
      expect(inbox).toEqual([])
    }),
  )

  it.scoped("a v3 peer gets the v3 encoding; a v1 peer gets zstd3 in a version-1 envelope", () =>
    Effect.gen(function* () {
      const { dwcp, inbox } = yield* harness()
      const data = Buffer.alloc(5000, 9)
      const a = yield* dwcp.send({
        peer: "p3",
        name: "x",
        data,
        peerOffer: { versions: [3, 1], encodings: ["fake3", "zstd3"] },
      })
      expect([a.encoding, inbox.at(-1)!.bytes[4]]).toEqual(["fake3", 3])
      const b = yield* dwcp.send({ peer: "p1", name: "x", data, peerOffer: { versions: [1], encodings: ["zstd3"] } })
      expect([b.encoding, inbox.at(-1)!.bytes[4]]).toEqual(["zstd3", 1])
      // Negotiated down, not a failure: compression stays up.
      expect((yield* statusOf(dwcp, "compression"))._tag).toBe("up")
    }),
  )

  it("a malformed offer is refused with the path of the bad field", () => {
    const r = Negotiation.decodeOffer({ versions: [3, "1"], encodings: ["zstd3"] })
    expect(r._tag).toBe("Left")
    expect(String(r._tag === "Left" && r.left.message)).toContain("[1]")
  })
})
