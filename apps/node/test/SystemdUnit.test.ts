import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { requireService } from "@novacron/testing"
import { describe, expect, it } from "vitest"

const unitFile = new URL("../systemd/novacron-node.service", import.meta.url)
const unit = readFileSync(unitFile, "utf8")

const ANALYZE = "/usr/bin/systemd-analyze"
const haveAnalyze = await requireService(
  "systemd-analyze",
  () => existsSync(ANALYZE),
  `${ANALYZE} missing (apt-get install systemd)`,
)

/** `systemd-analyze verify` on a copy named like the shipped unit: exit code and what it said. */
const verify = (text: string) => {
  const dir = mkdtempSync(join(tmpdir(), "novacron-unit-"))
  try {
    const file = join(dir, "novacron-node.service")
    writeFileSync(file, text)
    const r = spawnSync(ANALYZE, ["verify", "--man=no", file], { encoding: "utf8" })
    return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const setting = (key: string) => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((m) => m[1])

describe("systemd unit (apps/node/systemd/novacron-node.service)", () => {
  it("asks for readiness notification, a watchdog, and leaves the VMs alone on stop", () => {
    expect(setting("Type")).toEqual(["notify"])
    expect(setting("NotifyAccess")).toEqual(["main"])
    expect(setting("KillMode")).toEqual(["process"])
    expect(Number.parseInt(setting("WatchdogSec")[0] ?? "", 10)).toBeGreaterThan(0)
    // A clean shutdown (system.shutdown_timeout, 30 s by default) must never be SIGKILLed.
    expect(Number.parseInt(setting("TimeoutStopSec")[0] ?? "", 10)).toBeGreaterThan(30)
  })

  it("is the one the README shows (no second copy to drift)", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8")
    expect(readme).toContain("systemd/novacron-node.service")
    expect(readme).not.toMatch(/^\[Service\]$/m)
  })

  describe.skipIf(!haveAnalyze)("systemd-analyze verify", () => {
    it("accepts it without a word", () => {
      expect(verify(unit)).toEqual({ status: 0, output: "" })
    })

    it("would speak up about a mistyped setting (the check above can fail)", () => {
      const r = verify(unit.replace("KillMode=process", "KillMode=proces"))
      expect(r.output).toMatch(/kill mode/i)
    })
  })
})
