import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
// @ts-expect-error plain ESM helper without type declarations
import { link } from "../../../tooling/wan-emulator/lib.mjs"
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
