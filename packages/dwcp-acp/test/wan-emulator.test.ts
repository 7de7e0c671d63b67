import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { emulatorAvailable } from "./emulator.js"

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
