import { mkdirSync, mkdtempSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { BackgroundJobs, Boot, Component } from "@novacron/init"
import {
  Chunk,
  Context,
  Duration,
  Effect,
  Fiber,
  Layer,
  Logger,
  Ref,
  Schedule,
  Schema,
  Stream,
  SubscriptionRef,
  TestClock,
} from "effect"
import { Classify, EnvironmentDetector, Probe } from "../src/index.js"

const m = (
  peer: string,
  rttMs: number | undefined,
  rest: Partial<Classify.PeerMeasurement> = {},
): Classify.PeerMeasurement => ({
  peer,
  method: "echo",
  samples: 10,
  rttMs,
  jitterMs: 0.01,
  loss: rttMs === undefined ? 1 : 0,
  bandwidthBps: undefined,
  ...rest,
})

describe("classification table", () => {
  const links: ReadonlyArray<readonly [Classify.PeerMeasurement, Classify.Mode, string]> = [
    [m("a", 0.2, { bandwidthBps: 25e9 }), "datacenter", "RTT 0.200 ms < 1 ms and 25.00 Gbit/s > 10.00 Gbit/s"],
    [m("a", 0.2), "hybrid", "RTT 0.200 ms but bandwidth not measured"],
    [m("a", 0.5, { bandwidthBps: 5e9 }), "hybrid", "RTT 0.500 ms but 5.00 Gbit/s <= 10.00 Gbit/s"],
    [m("a", 0.2, { bandwidthBps: 25e9, loss: 0.005 }), "hybrid", "RTT 0.200 ms between 1 and 50 ms"],
    [m("a", 1, { bandwidthBps: 25e9 }), "hybrid", "RTT 1.000 ms between 1 and 50 ms"],
    [m("a", 50, { bandwidthBps: 1e9 }), "hybrid", "RTT 50.000 ms between 1 and 50 ms"],
    [m("a", 80, { bandwidthBps: 1e9 }), "internet", "RTT 80.000 ms > 50 ms"],
    [m("a", 5, { loss: 0.05 }), "internet", "loss 5.0 % > 1 %"],
    [m("a", 5, { jitterMs: 15 }), "internet", "jitter 15.000 ms > 10 ms"],
    [m("a", undefined), "internet", "unreachable"],
  ]
  for (const [input, mode, reason] of links) {
    it(`link ${JSON.stringify({ rtt: input.rttMs, bw: input.bandwidthBps, loss: input.loss, jitter: input.jitterMs })} -> ${mode}`, () => {
      expect(Classify.classifyLink(input)).toEqual({ peer: "a", mode, reason })
    })
  }

  const dc = m("dc", 0.1, { bandwidthBps: 40e9 })
  const wan = m("wan", 120)
  const mid = m("mid", 10)
  const nodes: ReadonlyArray<
    readonly [string, boolean, ReadonlyArray<Classify.PeerMeasurement>, Classify.Mode, string]
  > = [
    ["no peers", false, [], "hybrid", "no peers to measure; default hybrid"],
    ["RDMA, no peers", true, [], "datacenter", "RDMA devices present"],
    ["RDMA beats a WAN link", true, [wan], "datacenter", "RDMA devices present"],
    ["all datacenter", false, [dc, dc], "datacenter", "all 2 links datacenter-class"],
    ["all internet", false, [wan, m("x", undefined)], "internet", "all 2 links internet-class"],
    ["mixed", false, [dc, wan, mid], "hybrid", "mixed links: 1 datacenter, 1 hybrid, 1 internet"],
    ["all hybrid", false, [mid, mid], "hybrid", "all 2 links hybrid-class"],
    ["one link", false, [wan], "internet", "1 link, internet-class: RTT 120.000 ms > 50 ms"],
  ]
  for (const [name, rdma, peers, mode, reason] of nodes) {
    it(`node: ${name} -> ${mode}`, () => {
      const c = Classify.classify({ rdma, peers })
      expect([c.mode, c.reason]).toEqual([mode, reason])
      expect(c.links).toHaveLength(peers.length)
    })
  }
})

const settings = (s: Partial<Schema.Schema.Encoded<typeof EnvironmentDetector.Settings>> = {}) =>
  Schema.decodeSync(EnvironmentDetector.Settings)({ rdma_sysfs: join(tmpdir(), "novacron-no-rdma"), ...s })

const captureLogs = () => {
  const lines: Array<string> = []
  const layer = Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ message }) => {
      lines.push(String(Array.isArray(message) ? message.join(" ") : message))
    }),
  )
  return { lines, layer }
}

describe("detection with injected measurements", () => {
  it.scoped("forced_mode overrides; no peers picks the documented default and logs why", () =>
    Effect.gen(function* () {
      const forced = yield* EnvironmentDetector.detect(settings({ forced_mode: "internet", peers: ["10.0.0.1:1"] }))
      expect([forced.mode, forced.source, forced.reason]).toEqual(["internet", "forced", "forced by dwcp.forced_mode"])
      const off = yield* EnvironmentDetector.detect(settings({ enable_auto_detection: false }))
      expect([off.mode, off.source, off.reason]).toEqual([
        "hybrid",
        "default",
        "auto-detection disabled; default hybrid",
      ])

      const { lines, layer } = captureLogs()
      const ctx = yield* Layer.build(EnvironmentDetector.layer(settings())).pipe(Effect.provide(layer))
      const d = yield* SubscriptionRef.get(Context.get(ctx, EnvironmentDetector.EnvironmentDetector).current)
      expect([d.mode, d.source]).toEqual(["hybrid", "default"])
      expect(lines).toContain("network environment: hybrid (no peers to measure; default hybrid)")
    }),
  )

  it.effect("RDMA devices listed in sysfs make it datacenter; a disabled RDMA is ignored", () =>
    Effect.gen(function* () {
      const sysfs = mkdtempSync(join(tmpdir(), "novacron-ib-"))
      mkdirSync(join(sysfs, "mlx5_0"))
      expect(yield* EnvironmentDetector.rdmaDevices(sysfs)).toEqual(["mlx5_0"])
      expect(yield* EnvironmentDetector.rdmaDevices(join(sysfs, "absent"))).toEqual([])
      const d = yield* EnvironmentDetector.detect(settings({ rdma_sysfs: sysfs }))
      expect([d.mode, d.reason, d.rdmaDevices]).toEqual(["datacenter", "RDMA devices present", ["mlx5_0"]])
      const off = yield* EnvironmentDetector.detect(settings({ rdma_sysfs: sysfs, enable_rdma: false }))
      expect(off.mode).toBe("hybrid")
    }),
  )

  it.scoped("re-detects every detection_interval and publishes mode changes", () =>
    Effect.gen(function* () {
      const link = yield* Ref.make(m("p:1", 0.1, { bandwidthBps: 40e9 }))
      const s = { ...settings({ peers: ["p:1"] }), detection_interval: Duration.seconds(30) }
      const { lines, layer } = captureLogs()
      // No real I/O under the TestClock: a sysfs read still pending when the clock moves races the test.
      const sources = { measure: () => Ref.get(link), rdmaDevices: Effect.succeed([]) }
      const ctx = yield* Layer.build(EnvironmentDetector.layer(s, sources)).pipe(Effect.provide(layer))
      const detector = Context.get(ctx, EnvironmentDetector.EnvironmentDetector)
      const seen = yield* detector.modeChanges.pipe(Stream.take(3), Stream.runCollect, Effect.fork)
      yield* TestClock.adjust("1 second")
      expect((yield* SubscriptionRef.get(detector.current)).mode).toBe("datacenter")

      yield* Ref.set(link, m("p:1", 90))
      yield* TestClock.adjust("28 seconds")
      expect((yield* SubscriptionRef.get(detector.current)).mode).toBe("datacenter")
      yield* TestClock.adjust("1 second")
      expect((yield* SubscriptionRef.get(detector.current)).mode).toBe("internet")
      // Same mode again: published in `current`, not a mode change.
      yield* TestClock.adjust("30 seconds")
      yield* Ref.set(link, m("p:1", 5))
      yield* TestClock.adjust("30 seconds")
      const modes = Chunk.toArray(yield* Fiber.join(seen)).map((d) => d.mode)
      expect(modes).toEqual(["datacenter", "internet", "hybrid"])
      expect(lines).toContain(
        "network environment changed: datacenter -> internet (1 link, internet-class: RTT 90.000 ms > 50 ms)",
      )
    }),
  )

  it.scoped("redetect: job: the layer runs no loop of its own; the node's environment-redetection job re-detects", () =>
    Effect.gen(function* () {
      const link = yield* Ref.make(m("p:1", 0.1, { bandwidthBps: 40e9 }))
      const s = { ...settings({ peers: ["p:1"] }), detection_interval: Duration.seconds(30) }
      const sources = { measure: () => Ref.get(link), rdmaDevices: Effect.succeed([]) }
      const ctx = yield* Layer.build(EnvironmentDetector.layer(s, sources, "job"))
      const detector = Context.get(ctx, EnvironmentDetector.EnvironmentDetector)
      expect((yield* SubscriptionRef.get(detector.current)).mode).toBe("datacenter")
      yield* Ref.set(link, m("p:1", 90))
      yield* TestClock.adjust("61 seconds")
      // No job yet: nothing re-detected.
      expect((yield* SubscriptionRef.get(detector.current)).mode).toBe("datacenter")

      const jobs = yield* BackgroundJobs.make
      yield* Layer.build(
        EnvironmentDetector.redetection(s).layer.pipe(
          Layer.provide(Layer.merge(Layer.succeedContext(ctx), Layer.succeed(BackgroundJobs.BackgroundJobs, jobs))),
        ),
      )
      expect((yield* jobs.status).map((j) => j.name)).toEqual(["environment-redetection"])
      yield* TestClock.adjust("29 seconds")
      expect((yield* SubscriptionRef.get(detector.current)).mode).toBe("datacenter")
      yield* TestClock.adjust("1 second")
      expect((yield* SubscriptionRef.get(detector.current)).mode).toBe("internet")
      expect((yield* jobs.status)[0]).toMatchObject({ runs: 1, failures: 0 })
    }),
  )

  it.scoped("a forced mode starts no re-detection job", () =>
    Effect.gen(function* () {
      const s = { ...settings({ peers: ["p:1"] }), forced_mode: "internet" as const }
      const ctx = yield* Layer.build(EnvironmentDetector.layer(s, {}, "job"))
      const jobs = yield* BackgroundJobs.make
      yield* Layer.build(
        EnvironmentDetector.redetection(s).layer.pipe(
          Layer.provide(Layer.merge(Layer.succeedContext(ctx), Layer.succeed(BackgroundJobs.BackgroundJobs, jobs))),
        ),
      )
      expect(yield* jobs.status).toEqual([])
    }),
  )
})

describe("against real loopback peers", () => {
  const closedPort = () =>
    Effect.promise(
      () =>
        new Promise<number>((ok) => {
          const s = createServer()
          s.listen(0, "127.0.0.1", () => {
            const { port } = s.address() as { port: number }
            s.close(() => ok(port))
          })
        }),
    )
  const plainListener = Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<ReturnType<typeof createServer>>((ok) => {
          // A listener that reads and discards: not a probe responder.
          const s = createServer((socket) => socket.on("error", () => undefined).resume())
          s.listen(0, "127.0.0.1", () => ok(s))
        }),
    ),
    (s) => Effect.promise(() => new Promise<void>((ok) => s.close(() => ok()))),
  )

  it.scopedLive("measures RTT, jitter, loss and bandwidth and classifies each link from them", () =>
    Effect.gen(function* () {
      const fast = yield* Probe.serve()
      const slow = yield* Probe.serve({ delayMs: 60 })
      const plain = yield* plainListener
      const plainPeer = `127.0.0.1:${(plain.address() as { port: number }).port}`
      const dead = `127.0.0.1:${yield* closedPort()}`
      const s = settings({
        peers: [fast.address, slow.address, plainPeer, dead],
        probe_count: 5,
        bandwidth_bytes: 4 * 1024 * 1024,
      })
      const d = yield* EnvironmentDetector.detect(s)
      const [f, sl, pl, dd] = d.peers
      expect(f).toMatchObject({ peer: fast.address, method: "echo", samples: 5, loss: 0 })
      expect(f!.rttMs!).toBeGreaterThan(0)
      expect(f!.rttMs!).toBeLessThan(20)
      expect(f!.bandwidthBps!).toBeGreaterThan(1e6)

      expect(sl).toMatchObject({ method: "echo", loss: 0 })
      expect(sl!.rttMs!).toBeGreaterThanOrEqual(60)
      expect(d.links[1]).toMatchObject({ mode: "internet" })

      expect(pl).toMatchObject({ peer: plainPeer, method: "connect", loss: 0, bandwidthBps: undefined })
      expect(pl!.rttMs!).toBeLessThan(20)

      expect(dd).toMatchObject({ peer: dead, rttMs: undefined, loss: 1 })
      expect(d.links[3]).toEqual({ peer: dead, mode: "internet", reason: "unreachable" })

      // The node's mode is the pure classification of exactly these measurements.
      expect(d.links).toEqual(d.peers.map((p) => Classify.classifyLink(p)))
      expect(d.mode).toBe(Classify.classify({ rdma: false, peers: d.peers }).mode)
      expect(d.mode).toBe("hybrid")
    }),
  )

  it.scopedLive("a listener that is not a responder is sent no byte: connect-and-close only", () =>
    Effect.gen(function* () {
      // A listener (like a node's TLS cluster port) that records what each connection sent.
      const received: Array<number> = []
      const server = yield* Effect.acquireRelease(
        Effect.promise(
          () =>
            new Promise<ReturnType<typeof createServer>>((ok) => {
              const s = createServer((socket) => {
                let bytes = 0
                socket.on("error", () => undefined)
                socket.on("data", (d) => {
                  bytes += d.length
                })
                socket.on("close", () => received.push(bytes))
              })
              s.listen(0, "127.0.0.1", () => ok(s))
            }),
        ),
        (s) => Effect.promise(() => new Promise<void>((ok) => s.close(() => ok()))),
      )
      const port = (server.address() as { port: number }).port
      const p = yield* Probe.measure(`node-b@127.0.0.1:${port}`, { count: 4, timeoutMs: 300, bandwidthBytes: 0 })
      expect(p).toMatchObject({ peer: `node-b@127.0.0.1:${port}`, method: "connect", samples: 4, loss: 0 })
      yield* Effect.repeat(
        Effect.sync(() => received.length),
        {
          until: (n) => n === 4,
          schedule: Schedule.spaced("10 millis"),
        },
      ).pipe(Effect.timeout("10 seconds"))
      expect(received).toEqual([0, 0, 0, 0])
    }),
  )

  it.scopedLive("a lost echo counts as loss, not as a late sample", () =>
    Effect.gen(function* () {
      const slow = yield* Probe.serve({ delayMs: 150 })
      const p = yield* Probe.measure(slow.address, { count: 3, timeoutMs: 100, bandwidthBytes: 0 })
      // The first ping times out, so the peer is treated as not speaking the protocol.
      expect(p.method).toBe("connect")
      const q = yield* Probe.measure(slow.address, { count: 3, timeoutMs: 400, bandwidthBytes: 0 })
      expect(q).toMatchObject({ method: "echo", loss: 0, samples: 3 })
      expect(q.rttMs!).toBeGreaterThanOrEqual(150)
    }),
  )

  it.live("boots as a component under the kernel and reports its mode in health", () =>
    Effect.gen(function* () {
      const fast = yield* Probe.serve()
      const node = yield* Boot.boot([
        Component.place(
          EnvironmentDetector.component(settings({ peers: [fast.address], probe_count: 3, bandwidth_bytes: 1 << 20 })),
          { phase: "pre-init", criticality: "CRITICAL" },
        ),
      ])
      const detector = Context.get(
        node.context as Context.Context<EnvironmentDetector.EnvironmentDetector>,
        EnvironmentDetector.EnvironmentDetector,
      )
      const d = yield* SubscriptionRef.get(detector.current)
      expect(d.peers[0]!.loss).toBe(0)
      const health = yield* node.health
      expect(JSON.stringify(health)).toContain(`"mode":"${d.mode}"`)
    }).pipe(Effect.scoped),
  )
})
