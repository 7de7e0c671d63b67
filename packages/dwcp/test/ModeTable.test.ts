import { describe, expect, it } from "@effect/vitest"
import { Classify } from "@novacron/environment"
import * as fc from "fast-check"
import * as ModeTable from "../src/ModeTable.js"

const m = (rttMs: number | undefined, extra: Partial<Classify.PeerMeasurement> = {}): Classify.PeerMeasurement => ({
  peer: "p",
  method: "echo",
  samples: 10,
  rttMs,
  jitterMs: 0.01,
  loss: 0,
  bandwidthBps: 25e9,
  ...extra,
})

const full: ModeTable.Capabilities = { congestion: ["reno", "cubic", "bbr", "dctcp"], rdmaDevices: ["mlx5_0"] }
const here: ModeTable.Capabilities = { congestion: ["reno", "cubic", "bbr"], rdmaDevices: [] }

describe("the design's table", () => {
  it("datacenter: RDMA + multi-stream, no compression, Raft, DCTCP", () => {
    const r = ModeTable.resolve(ModeTable.rowFor("datacenter", "datacenter"), full)
    expect(r).toMatchObject({
      transport: "rdma-multistream",
      compression: { algorithm: "none" },
      consensus: "raft",
      congestion: ["dctcp", "cubic"],
      downgrades: [],
    })
  })

  it("internet: TCP multi-stream, aggressive zstd, gossip, BBR", () => {
    const r = ModeTable.resolve(ModeTable.rowFor("internet", "internet"), full)
    expect(r).toMatchObject({
      transport: "tcp-multistream",
      compression: { algorithm: "zstd", level: 9 },
      consensus: "gossip",
      congestion: ["bbr", "cubic"],
      downgrades: [],
    })
  })

  it("hybrid: transport and compression per link, Raft + gossip, BBR with fallback", () => {
    const dc = ModeTable.rowFor("hybrid", "datacenter")
    const wan = ModeTable.rowFor("hybrid", "internet")
    const mid = ModeTable.rowFor("hybrid", "hybrid")
    expect([dc.transport, wan.transport, mid.transport]).toEqual([
      "rdma-multistream",
      "tcp-multistream",
      "tcp-multistream",
    ])
    expect([dc.compression.algorithm, wan.compression.algorithm, mid.compression.algorithm]).toEqual([
      "none",
      "zstd",
      "adaptive",
    ])
    for (const r of [dc, wan, mid]) {
      expect(r.consensus).toBe("raft+gossip")
      expect(r.congestion).toEqual(["bbr", "cubic"])
    }
  })

  it("this host (no RDMA, no DCTCP): a datacenter row says what it uses instead and why", () => {
    const r = ModeTable.resolve(ModeTable.rowFor("datacenter", "datacenter"), here)
    expect(r.transport).toBe("tcp-multistream")
    expect(r.congestion).toEqual(["cubic"])
    expect(r.downgrades).toEqual([
      {
        cell: "transport",
        wanted: "rdma-multistream",
        used: "tcp-multistream",
        reason: expect.stringContaining("RDMA"),
      },
      { cell: "congestion", wanted: "dctcp", used: "cubic", reason: expect.stringContaining("dctcp not in") },
    ])
  })

  it("no listed algorithm of the row: the kernel default", () => {
    const r = ModeTable.resolve(ModeTable.rowFor("internet", "internet"), { congestion: ["reno"], rdmaDevices: [] })
    expect(r.congestion).toEqual(["cubic"])
    expect(r.downgrades[0]).toMatchObject({ wanted: "bbr", used: "cubic" })
  })

  it("node mode from links: all alike → that mode, mixed → hybrid, RDMA → datacenter, none → hybrid", () => {
    expect(ModeTable.nodeMode(["datacenter", "datacenter"], false)).toBe("datacenter")
    expect(ModeTable.nodeMode(["internet"], false)).toBe("internet")
    expect(ModeTable.nodeMode(["datacenter", "internet"], false)).toBe("hybrid")
    expect(ModeTable.nodeMode(["internet"], true)).toBe("datacenter")
    expect(ModeTable.nodeMode([], false)).toBe("hybrid")
  })
})

describe("hysteresis", () => {
  const h = { margin: 0.2, samples: 3 }
  const run = (samples: ReadonlyArray<Classify.PeerMeasurement>) => {
    let s: ModeTable.LinkState | undefined
    const classes: Array<ModeTable.Mode> = []
    for (const x of samples) {
      s = ModeTable.step(s, x, { hysteresis: h })
      classes.push(s.linkClass)
    }
    return classes
  }

  it("the first sample decides at once", () => {
    expect(run([m(0.1)])).toEqual(["datacenter"])
    expect(run([m(80)])).toEqual(["internet"])
  })

  it("a datacenter link measured around 1 ms stays datacenter", () => {
    expect(run([m(0.5), m(1.1), m(0.9), m(1.15), m(1.1), m(1.19)])).toEqual(Array(6).fill("datacenter"))
  })

  it("an internet link measured around 50 ms stays internet", () => {
    expect(run([m(60), m(45), m(49), m(41), m(42), m(44)])).toEqual(Array(6).fill("internet"))
  })

  it("a real change moves the link after three samples in a row, not before", () => {
    expect(run([m(0.2), m(5), m(5), m(5), m(5)])).toEqual([
      "datacenter",
      "datacenter",
      "datacenter",
      "hybrid",
      "hybrid",
    ])
  })

  it("a blip resets the count", () => {
    expect(run([m(0.2), m(5), m(5), m(0.2), m(5), m(5)])).toEqual(Array(6).fill("datacenter"))
  })

  const sample = fc.record({
    rttMs: fc.option(fc.double({ min: 0.01, max: 200, noNaN: true }), { nil: undefined }),
    jitterMs: fc.option(fc.double({ min: 0, max: 30, noNaN: true }), { nil: undefined }),
    loss: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.05, noNaN: true })),
    bandwidthBps: fc.option(fc.double({ min: 1e8, max: 1e11, noNaN: true }), { nil: undefined }),
  })
  const toM = (x: typeof sample extends fc.Arbitrary<infer T> ? T : never) => m(x.rttMs, x)

  it("property: with no margin and one sample, it is the design's classifier", () => {
    fc.assert(
      fc.property(fc.array(sample, { minLength: 1, maxLength: 30 }), (xs) => {
        let s: ModeTable.LinkState | undefined
        for (const x of xs) {
          s = ModeTable.step(s, toM(x), { hysteresis: { margin: 0, samples: 1 } })
          expect(s.linkClass).toBe(Classify.classifyLink(toM(x)).mode)
        }
      }),
      { seed: 21, numRuns: 300 },
    )
  })

  it("property: every change of class follows N samples in a row that point to it", () => {
    fc.assert(
      fc.property(fc.array(sample, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 4 }), (xs, n) => {
        const opts = { hysteresis: { margin: 0.2, samples: n } }
        let s: ModeTable.LinkState | undefined
        const history: Array<{ before: ModeTable.Mode | undefined; to: ModeTable.Mode }> = []
        for (const x of xs) {
          const before = s?.linkClass
          const to = ModeTable.classifySample(before, toM(x), { margin: 0.2 }).mode
          history.push({ before, to })
          s = ModeTable.step(s, toM(x), opts)
          if (before !== undefined && s.linkClass !== before) {
            const lastN = history.slice(-n)
            expect(lastN.length).toBe(n)
            for (const e of lastN) {
              expect(e.before).toBe(before)
              expect(e.to).toBe(s.linkClass)
            }
          }
        }
      }),
      { seed: 21, numRuns: 300 },
    )
  })

  it("property: a datacenter link whose samples stay inside the margin never flaps", () => {
    const inside = fc.record({
      rttMs: fc.double({ min: 0.01, max: 1.2, noNaN: true }),
      bandwidthBps: fc.double({ min: 8.01e9, max: 1e11, noNaN: true }),
    })
    fc.assert(
      fc.property(fc.array(inside, { minLength: 1, maxLength: 50 }), (xs) => {
        let s = ModeTable.step(undefined, m(0.1))
        for (const x of xs) s = ModeTable.step(s, m(x.rttMs, { bandwidthBps: x.bandwidthBps }), { hysteresis: h })
        expect(s.linkClass).toBe("datacenter")
      }),
      { seed: 21, numRuns: 300 },
    )
  })

  it("property: a resolved row asks for nothing the host lacks, and says why for every change", () => {
    const algs = ["reno", "cubic", "bbr", "dctcp", "htcp"]
    fc.assert(
      fc.property(
        fc.constantFrom<ModeTable.Mode>("datacenter", "internet", "hybrid"),
        fc.constantFrom<ModeTable.Mode>("datacenter", "internet", "hybrid"),
        fc.option(fc.subarray(algs), { nil: undefined }),
        fc.boolean(),
        (mode, link, listed, rdma) => {
          const row = ModeTable.rowFor(mode, link)
          const r = ModeTable.resolve(row, { congestion: listed, rdmaDevices: rdma ? ["mlx5_0"] : [] })
          if (!rdma) expect(r.transport).not.toBe("rdma-multistream")
          if (listed !== undefined) {
            expect(r.congestion.every((a) => listed.includes(a) || a === ModeTable.kernelDefault)).toBe(true)
          }
          expect(r.downgrades.some((d) => d.cell === "transport")).toBe(r.transport !== row.transport)
          expect(r.downgrades.some((d) => d.cell === "congestion")).toBe(r.congestion[0] !== row.congestion[0])
        },
      ),
      { seed: 21, numRuns: 300 },
    )
  })
})
