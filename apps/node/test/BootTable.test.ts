import { existsSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { table } from "../src/BootTable.js"
import { cli, tempDataDir } from "./harness.js"

const everything = [
  "dwcp.enable_v3_transport=true",
  "dwcp.enable_v3_compression=true",
  "dwcp.enable_v3_prediction=true",
  "dwcp.enable_v3_placement=true",
  "dwcp.v3_rollout_percentage=100",
  "monitoring.enable_profiling=true",
].flatMap((s) => ["--set", s])

interface Planned {
  readonly name: string
  readonly criticality: string
  readonly level: number
  readonly dependencies: ReadonlyArray<string>
}

describe("start --dry-run", () => {
  it("prints the plan without starting anything: no data directory, no socket (a taken port is no error)", async () => {
    const dir = join(tempDataDir(), "not-yet")
    const taken = createServer()
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r))
    const port = (taken.address() as { port: number }).port
    try {
      const r = cli(["start", "--dry-run", "--data-dir", dir, "--health-check-port", String(port)])
      expect(r.stderr).toBe("")
      expect(r.code).toBe(0)
      expect(existsSync(dir)).toBe(false)
      const lines = r.stdout.split("\n")
      expect(lines[0]).toBe("boot plan of node " + lines[0]!.split(" ")[4] + " (dry run: nothing started)")
      // Phases in order, each once, with the configured timeout.
      expect(
        lines.filter((l) => /^\S/.test(l) && !l.startsWith("boot plan") && !l.startsWith("critical chain")),
      ).toEqual(["pre-init (timeout 10s)", "core (timeout 20s)", "services (timeout 20s)", "post-init (timeout 10s)"])
      expect(r.stdout).toMatch(/^ {2}logging +CRITICAL +level 1 +after config$/m)
      expect(r.stdout).toMatch(/^ {2}cache +DEGRADED +level 0\b(?!.*after)/m)
      expect(r.stdout).toMatch(/^ {2}membership +CRITICAL +level 2 +after database, network$/m)
      expect(r.stdout).toMatch(
        // Through DWCP (core phase, after network): its receiver and parts start before the services.
        /^critical chain: config -> logging -> security -> network -> dwcp -> vm -> .*service-registry \(\d+ ms expected/m,
      )
    } finally {
      taken.close()
    }
  })

  it("--json: every component placed by its boot table row, phases in order", () => {
    const dir = join(tempDataDir(), "not-yet")
    const r = cli(["start", "--dry-run", "--json", "--data-dir", dir, ...everything])
    expect(r.code).toBe(0)
    expect(existsSync(dir)).toBe(false)
    const plan = JSON.parse(r.stdout) as {
      phases: ReadonlyArray<{ phase: string; timeout_ms: number; components: ReadonlyArray<Planned> }>
      critical_chain: { path: ReadonlyArray<string>; expected_ms: number }
      notes: ReadonlyArray<string>
    }
    expect(plan.phases.map((p) => p.phase)).toEqual(["pre-init", "core", "services", "post-init"])
    const rows = Object.entries(table) as ReadonlyArray<[string, (typeof table)[keyof typeof table]]>
    // With every part on, the node runs exactly the table's components, each as its row says.
    expect(plan.phases.flatMap((p) => p.components.map((c) => c.name)).sort()).toEqual(rows.map(([n]) => n).sort())
    for (const p of plan.phases)
      for (const c of p.components) {
        const row: { phase: string; criticality: string; dependencies?: ReadonlyArray<string> } =
          table[c.name as keyof typeof table]
        expect([c.name, p.phase, c.criticality, c.dependencies]).toEqual([
          c.name,
          row.phase,
          row.criticality,
          row.dependencies ?? [],
        ])
      }
    expect(plan.critical_chain.path[0]).toBe("config")
    expect(plan.notes).toEqual([])
  })

  it("a bad configuration is still exit 3 with every problem", () => {
    const r = cli(["start", "--dry-run", "--set", "system.max_concurrency=0"])
    expect(r.code).toBe(3)
    expect(r.stderr).toContain("system.max_concurrency")
  })
})
