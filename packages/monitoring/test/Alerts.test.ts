import { copyFileSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { havePrometheus, promtool, tempDir } from "@novacron/testing"
import { Effect } from "effect"
import { Alerts } from "../src/index.js"

const rules = readFileSync(Alerts.rulesFile(), "utf8")
const tests = readFileSync(Alerts.testFile(), "utf8")
const alertNames = [...rules.matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]!)

describe.skipIf(!(await havePrometheus()))("alert rules (promtool)", () => {
  it("are valid rules", () => {
    const r = promtool(["check", "rules", Alerts.rulesFile()])
    expect(r.stderr).toBe("")
    expect(r.stdout).toContain(`SUCCESS: ${alertNames.length} rules found`)
    expect(r.code).toBe(0)
  })

  it("pass their unit tests (promtool test rules)", () => {
    const r = promtool(["test", "rules", Alerts.testFile()])
    expect(r.stdout + r.stderr).toContain("SUCCESS")
    expect(r.code).toBe(0)
  })

  it("every alert has a unit test that expects it to fire", () => {
    expect(alertNames.length).toBeGreaterThanOrEqual(10)
    for (const name of alertNames)
      expect(tests, name).toMatch(new RegExp(`alertname: ${name}\\n\\s+exp_alerts:\\n\\s+- exp_labels`))
  })

  // The unit tests guard the rules: a rule that pages without waiting, or on the wrong
  // criticality, makes them fail.
  it.scoped.each<readonly [string, string, string]>([
    [
      "the agent-down rule without its `for`",
      '        for: 1m\n        labels:\n          severity: critical\n        annotations:\n          summary: "NovaCron agent {{ $labels.instance }} is down"',
      '        labels:\n          severity: critical\n        annotations:\n          summary: "NovaCron agent {{ $labels.instance }} is down"',
    ],
    [
      "the CRITICAL component rule on every criticality",
      'novacron_component_healthy{criticality="CRITICAL"} == 0',
      "novacron_component_healthy == 0",
    ],
    ["the disk-low threshold at 1 %", "novacron_data_dir_size_bytes < 0.10", "novacron_data_dir_size_bytes < 0.01"],
    [
      "no-leader per node instead of across the cluster",
      "max by (election) (novacron_state_leader) == 0",
      "novacron_state_leader == 0",
    ],
  ])("fail with %s", ([, from, to]) =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      expect(rules).toContain(from)
      writeFileSync(join(dir, "novacron.yml"), rules.replace(from, to))
      copyFileSync(Alerts.testFile(), join(dir, "novacron.test.yml"))
      const r = promtool(["test", "rules", "novacron.test.yml"], { cwd: dir })
      expect(r.stdout + r.stderr).toContain("FAILED")
      expect(r.code).not.toBe(0)
    }),
  )
})
