import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
// @ts-expect-error plain ESM helper without type declarations
import { link, udpProbe } from "../../../tooling/wan-emulator/lib.mjs"
import { CongestionControl } from "../src/index.js"
import { emulatorAvailable } from "./emulator.js"

const dctcpLoaded = readFileSync(CongestionControl.availablePath, "utf8").split(/\s+/).includes("dctcp")

const check = fileURLToPath(new URL("../../../tooling/wan-emulator/check.mjs", import.meta.url))

interface CheckResult {
  readonly check: string
  readonly measured: number
  readonly ok: boolean
}

describe.skipIf(!emulatorAvailable())("wan-emulator against ping, iperf3 and the Mathis formula", () => {
  it.live(
    "RTT, rate and single-stream loss behaviour match the configuration",
    () =>
      Effect.gen(function* () {
        const out = yield* Effect.async<string, Error>((resume) => {
          execFile(process.execPath, [check, "--json"], { timeout: 90_000 }, (err, stdout, stderr) =>
            // A failed check exits 1 but still prints its figures: assert on them below.
            stdout.trim().startsWith("[")
              ? resume(Effect.succeed(stdout))
              : resume(Effect.fail(err ?? new Error(`check.mjs printed nothing: ${stderr}`))),
          )
        })
        const results = JSON.parse(out.trim().split("\n").at(-1) as string) as ReadonlyArray<CheckResult>
        expect(results.map((r) => r.check)).toEqual([
          "rtt (ping avg, ms)",
          "rate (iperf3 1 stream, share of configured)",
          "mathis (reno, loss 1 %, measured / formula)",
          "loss (emulator counters)",
        ])
        for (const r of results) expect(r, JSON.stringify(r)).toMatchObject({ ok: true })
      }),
    { timeout: 120_000 },
  )
})

interface Probe {
  readonly received: number
  readonly reordered: number
  readonly owdMs: { readonly min: number; readonly max: number; readonly mean: number; readonly p50: number }
  readonly rateBps: number
}

/** Sets up a link, probes it with numbered UDP datagrams, tears it down. */
const probeLink = (options: Record<string, unknown>, probe: Record<string, number>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => link({ name: `prb${process.pid % 10000}`, ...options })),
    (l) => Effect.promise(async () => ({ probe: (await udpProbe(l, probe)) as Probe, stats: l.stats().ab })),
    (l) => Effect.sync(() => l.teardown()),
  )

describe.skipIf(!emulatorAvailable())("wan-emulator per-packet behaviour (UDP probe)", () => {
  it.live("jitter spreads the one-way delay but keeps order unless reordering is asked for", () =>
    Effect.gen(function* () {
      const kept = yield* probeLink({ delay: "20ms", jitter: "5ms", seed: 3 }, { count: 400, pps: 1000 })
      expect(kept.probe.received).toBe(400)
      expect(kept.probe.reordered).toBe(0)
      expect(kept.probe.owdMs.min).toBeGreaterThanOrEqual(15)
      expect(kept.probe.owdMs.p50).toBeGreaterThan(19)
      expect(kept.probe.owdMs.p50).toBeLessThan(28)
      expect(kept.probe.owdMs.max - kept.probe.owdMs.min).toBeGreaterThan(4)
      const shuffled = yield* probeLink(
        { delay: "20ms", jitter: "5ms", reorder: true, seed: 3 },
        { count: 400, pps: 1000 },
      )
      expect(shuffled.probe.received).toBe(400)
      // 1 ms apart with ±5 ms jitter: most packets overtake or are overtaken.
      expect(shuffled.probe.reordered).toBeGreaterThan(100)
      expect(shuffled.probe.owdMs.min).toBeGreaterThanOrEqual(15)
    }),
  )

  it.live(
    "a drop-tail queue at twice its rate drops, delivers at the configured rate, and delays by a full queue",
    () =>
      Effect.gen(function* () {
        const rateBps = 10e6
        const queue = 30_000
        const { probe, stats } = yield* probeLink(
          { rate: "10mbit", delay: "10ms", queue },
          { count: 2500, size: 1000, pps: 2500 },
        )
        expect(stats.qdrop).toBeGreaterThan(0)
        expect(stats.delivered + stats.qdrop + stats.lost).toBe(stats.in)
        expect(probe.received).toBe(stats.delivered)
        expect(probe.rateBps / rateBps).toBeGreaterThan(0.9)
        expect(probe.rateBps / rateBps).toBeLessThan(1.05)
        // A standing full queue: delay + queue / rate (24 ms), give or take a packet and a wake-up.
        const full = 10 + ((queue * 8) / rateBps) * 1000
        expect(probe.owdMs.p50).toBeGreaterThan(full - 5)
        expect(probe.owdMs.p50).toBeLessThan(full + 5)
      }),
  )
})

const peer = (ns: string, args: ReadonlyArray<string>) =>
  Effect.async<string, Error>((resume) => {
    execFile(
      "ip",
      ["netns", "exec", ns, process.execPath, "--import", "tsx", "bench/peer.ts", ...args],
      { cwd: fileURLToPath(new URL("..", import.meta.url)), timeout: 30_000 },
      (err, stdout) => (err ? resume(Effect.fail(err)) : resume(Effect.succeed(stdout))),
    )
  })

describe.skipIf(!emulatorAvailable())("ACP on an emulated WAN path (50 ms RTT, 0.5 % loss)", () => {
  it.live(
    "datacenter mode falls back to cubic, then adapt() reads the WAN RTT from TCP_INFO and switches to bbr",
    () =>
      Effect.acquireUseRelease(
        Effect.sync(() => link({ name: `acp${process.pid % 10000}`, rate: "100mbit", delay: "25ms", loss: 0.005 })),
        (l) =>
          Effect.gen(function* () {
            const port = "5399"
            const receiver = yield* Effect.fork(peer(l.b, ["receive", port, "--omit", "1"]))
            // The receiver prints "listening" first; retry the sender until it connects.
            const out = yield* peer(l.a, ["send", l.addrB, port, "1", "datacenter+adapt", "--omit", "2"]).pipe(
              Effect.retry({ times: 20, schedule: Schedule.spaced("100 millis") }),
            )
            yield* Fiber.join(receiver)
            const report = JSON.parse(out.trim().split("\n").at(-1) as string)
            const [initial, adapted] = report.selections
            expect(initial.requested).toBe("dctcp")
            expect(initial.obtained).toBe(dctcpLoaded ? "dctcp" : "cubic")
            expect(adapted.conditions.rttMs).toBeGreaterThan(45)
            expect(adapted.conditions.rttMs).toBeLessThan(150)
            expect(adapted).toMatchObject({ requested: "bbr", obtained: "bbr", fallback: false })
            expect(adapted.reason).toMatch(/looks like a WAN path/)
            expect(report.obtained).toBe("bbr")
          }),
        (l) => Effect.sync(() => l.teardown()),
      ),
    { timeout: 60_000 },
  )
})
