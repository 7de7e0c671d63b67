import { describe, expect, it } from "@effect/vitest"
import { type Classify, EnvironmentDetector } from "@novacron/environment"
import { Context, Duration, Effect, Layer, Logger, Ref, TestClock } from "effect"
import * as LinkClassifier from "../src/LinkClassifier.js"

const m = (peer: string, rttMs: number, extra: Partial<Classify.PeerMeasurement> = {}): Classify.PeerMeasurement => ({
  peer,
  method: "echo",
  samples: 10,
  rttMs,
  jitterMs: 0.01,
  loss: 0,
  bandwidthBps: 25e9,
  ...extra,
})

const A = "node-a@10.0.0.2:7700"
const B = "node-b@192.0.2.9:7700"

/** A detector measuring from a script the test edits, with a log capture. */
const setup = Effect.gen(function* () {
  const script = yield* Ref.make(
    new Map<string, Classify.PeerMeasurement>([
      [A, m(A, 0.1)],
      [B, m(B, 80, { loss: 0.005, bandwidthBps: 2e8 })],
    ]),
  )
  const logs = yield* Ref.make<Array<string>>([])
  const settings = {
    ...(yield* Effect.succeed(EnvironmentDetector.Settings.make({}))),
    peers: [A, B],
    detection_interval: Duration.seconds(30),
    enable_rdma: false,
  }
  const detector = EnvironmentDetector.layer(settings, {
    measure: (peer) => Effect.map(Ref.get(script), (s) => s.get(peer)!),
  })
  const layer = LinkClassifier.layer({ congestion: Effect.succeed(["reno", "cubic", "bbr"]) }).pipe(
    Layer.provide(detector),
  )
  const logger = Logger.make(({ message }) => {
    Ref.update(logs, (l) => [...l, String(message)]).pipe(Effect.runSync)
  })
  return { script, logs, layer: layer.pipe(Layer.provide(Logger.replace(Logger.defaultLogger, logger))) }
})

/** Builds in the test's scope: the detector's loop lives as long as the test. */
const build = (layer: Layer.Layer<LinkClassifier.LinkClassifier>) =>
  Effect.map(Layer.build(layer), Context.get(LinkClassifier.LinkClassifier))

const settle = Effect.repeatN(Effect.yieldNow(), 50)
const tick = Effect.zipRight(TestClock.adjust("30 seconds"), settle)

describe("LinkClassifier", () => {
  it.scoped("hybrid per link: a 0.1 ms link and an 80 ms lossy link from one node get their own rows", () =>
    Effect.gen(function* () {
      const { layer } = yield* setup
      const c = yield* build(layer)
      const s = yield* c.current
      expect(s.mode).toBe("hybrid")
      const a = yield* c.rowFor("node-a")
      const b = yield* c.rowFor("192.0.2.9:7700")
      expect(a).toMatchObject({
        linkClass: "datacenter",
        transport: "tcp-multistream",
        compression: { algorithm: "none" },
      })
      expect(a.downgrades).toEqual([expect.objectContaining({ cell: "transport", wanted: "rdma-multistream" })])
      expect(b).toMatchObject({
        linkClass: "internet",
        transport: "tcp-multistream",
        compression: { algorithm: "zstd" },
      })
      for (const r of [a, b]) expect(r).toMatchObject({ consensus: "raft+gossip", congestion: ["bbr", "cubic"] })
      // A peer not measured yet gets the mode's (adaptive) row.
      expect((yield* c.rowFor("node-z")).compression.algorithm).toBe("adaptive")
    }),
  )

  it.scoped(
    "re-detection moves a link after three intervals past the margin; a transfer's row stays; the log says why",
    () =>
      Effect.gen(function* () {
        const { layer, script, logs } = yield* setup
        const c = yield* build(layer)
        const inFlight = yield* c.rowFor("node-a")
        yield* Ref.update(script, (s) => new Map(s).set(A, m(A, 5, { bandwidthBps: 9e8 })))
        yield* tick
        yield* tick
        expect((yield* c.rowFor("node-a")).linkClass).toBe("datacenter")
        yield* tick
        const next = yield* c.rowFor("node-a")
        expect(next).toMatchObject({ linkClass: "hybrid", compression: { algorithm: "adaptive" } })
        expect(inFlight).toMatchObject({ linkClass: "datacenter", compression: { algorithm: "none" } })
        const moved = (yield* Ref.get(logs)).filter((l) => l.includes("DWCP link"))
        expect(moved).toEqual([
          expect.stringMatching(/node-a.*datacenter -> hybrid for the next transfer \(rtt 5\.000 ms.*0\.90 Gbit\/s/),
        ])
      }),
  )

  it.scoped("a link measured around the 50 ms border does not flap", () =>
    Effect.gen(function* () {
      const { layer, script } = yield* setup
      const c = yield* build(layer)
      for (const rtt of [48, 52, 45, 49, 47, 51, 46, 44]) {
        yield* Ref.update(script, (s) => new Map(s).set(B, m(B, rtt, { bandwidthBps: 2e8 })))
        yield* tick
        expect((yield* c.rowFor("node-b")).linkClass).toBe("internet")
      }
    }),
  )

  it.scoped("a forced mode puts every link on that mode's row", () =>
    Effect.gen(function* () {
      const settings = { ...EnvironmentDetector.Settings.make({}), forced_mode: "internet" as const, peers: [A] }
      const c = yield* build(
        LinkClassifier.layer({ congestion: Effect.succeed(["cubic"]) }).pipe(
          Layer.provide(EnvironmentDetector.layer(settings)),
        ),
      )
      const r = yield* c.rowFor("node-a")
      expect(r).toMatchObject({ mode: "internet", compression: { algorithm: "zstd" }, congestion: ["cubic"] })
      expect(r.downgrades[0]).toMatchObject({ cell: "congestion", wanted: "bbr", used: "cubic" })
    }),
  )
})
