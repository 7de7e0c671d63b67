// The PBFT model (model/pbft.pml) checked by Debian's spin: generate the verifier, compile it with
// gcc, search every state. The correct model has no assertion violation and no invalid end state;
// each broken variant must give a counterexample, which shows the check can fail.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { requireService } from "@novacron/testing"
import { afterAll, describe, expect, it } from "vitest"

const model = fileURLToPath(new URL("../model/pbft.pml", import.meta.url))

const haveSpin = await requireService(
  "spin",
  () => {
    execFileSync("spin", ["-V"], { stdio: "ignore" })
    execFileSync("gcc", ["--version"], { stdio: "ignore" })
    return true
  },
  "the PBFT model check needs Debian's spin and gcc (tooling/ci/system-deps.sh spin gcc)",
)

const dirs: Array<string> = []
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
})

interface Result {
  readonly errors: number
  readonly states: number
  readonly output: string
}

/** spin -a, gcc, ./pan: exhaustive safety search (assertions and invalid end states). */
const check = (defines: ReadonlyArray<string>): Result => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-pbft-"))
  dirs.push(dir)
  fs.copyFileSync(model, path.join(dir, "pbft.pml"))
  execFileSync("spin", ["-a", ...defines, "pbft.pml"], { cwd: dir, stdio: "pipe" })
  // COLLAPSE: the correct model has ~2M states; compressed they fit in ~450 MB.
  execFileSync("gcc", ["-O2", "-DSAFETY", "-DNOFAIR", "-DCOLLAPSE", "-w", "-o", "pan", "pan.c"], {
    cwd: dir,
    stdio: "pipe",
  })
  let output: string
  try {
    output = execFileSync("./pan", ["-m100000"], { cwd: dir, encoding: "utf8", maxBuffer: 16 << 20 })
  } catch (e) {
    // pan exits non-zero on some errors; its report is still on stdout
    output = String((e as { stdout?: unknown }).stdout ?? "")
  }
  const errors = /errors: (\d+)/.exec(output)
  const states = /(\d+) states, stored/.exec(output)
  if (!errors || !states) throw new Error(`unexpected pan output:\n${output}`)
  return { errors: Number(errors[1]), states: Number(states[1]), output }
}

describe.skipIf(!haveSpin)("PBFT model (spin), n = 4, f = 1, one Byzantine replica, one view change", () => {
  it("agreement and progress hold in every state", { timeout: 600_000 }, () => {
    const r = check([])
    expect(r.output).not.toMatch(/assertion violated|invalid end state \(/)
    expect(r.errors).toBe(0)
    // A search that stopped early (depth or memory) would also report 0 errors: insist it was complete.
    expect(r.output).not.toMatch(/max search depth too small|out of memory/)
    expect(r.states).toBeGreaterThan(100_000)
  })

  it("finds divergent commits when quorums are 2f instead of 2f+1", { timeout: 300_000 }, () => {
    const r = check(["-DPQ=1", "-DCQ=2"])
    expect(r.errors).toBeGreaterThan(0)
    expect(r.output).toMatch(/assertion violated \(\(committed\[\d\]==0\)\|\|\(committed\[\d\]==acc\[i\]\)\)/)
  })

  it("finds divergent commits when the new primary ignores the prepared proofs", { timeout: 300_000 }, () => {
    const r = check(["-DIGNORE_PROOFS"])
    expect(r.errors).toBeGreaterThan(0)
    expect(r.output).toMatch(/assertion violated \(\(committed\[\d\]==0\)\|\|\(committed\[\d\]==acc\[i\]\)\)/)
  })

  it("finds a stuck run when the new primary waits for 2f+2 view-changes", { timeout: 300_000 }, () => {
    const r = check(["-DVCQ=4"])
    expect(r.errors).toBeGreaterThan(0)
    // the progress assertion (f+1 correct replicas committed), not agreement
    expect(r.output).toMatch(/assertion violated .*>=\(1\+1\)\)/)
  })
})
