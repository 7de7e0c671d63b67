import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import parse from "parse-prometheus-text-format"
import { describe, expect, it } from "vitest"
import { agentMain, agentsPerTest, cli, ephemeralPorts, get, tempDataDir } from "./harness.js"

const start = agentsPerTest()
const lines = (stdout: string) =>
  stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { level: string; message: string; name?: string; [k: string]: unknown })

describe("a data directory the agent cannot create", () => {
  const file = join(mkdtempSync(join(tmpdir(), "novacron-node-file-")), "a-file")
  writeFileSync(file, "")
  const cases: ReadonlyArray<[string, string, RegExp]> = [
    ["under a regular file", join(file, "data"), new RegExp(`${file} is a file, not a directory`)],
    ["under /proc", `/proc/novacron-test-${process.pid}/data`, /\/proc refuses to create novacron-test-/],
    ["under /sys", `/sys/novacron-test-${process.pid}/data`, /permission denied creating \/sys\/novacron-test-/],
  ]
  for (const [what, dir, cause] of cases) {
    it(`${what}: exits 3 with one error naming the path and the cause`, () => {
      const r = cli(["start", "--data-dir", dir, ...ephemeralPorts])
      expect(r.signal).toBeNull()
      expect(r.code).toBe(3)
      const errors = lines(r.stdout).filter((l) => l.level === "error")
      expect(errors).toHaveLength(1)
      expect(errors[0]!.message).toContain(`cannot use data directory ${dir} (system.data_dir)`)
      expect(errors[0]!.message).toMatch(cause)
    })
  }
})

describe("a refused second agent", () => {
  it("leaves the running agent's boot record and lock alone", async () => {
    const dir = tempDataDir()
    const first = start(["start", "--data-dir", dir, ...ephemeralPorts])
    await first.waitFor((l) => l.name === "node.ready")
    const record = join(dir, "boot", "boot-record.json")
    const before = readFileSync(record, "utf8")
    const lock = readFileSync(join(dir, "novacron.lock"), "utf8")

    const second = start(["start", "--data-dir", dir, ...ephemeralPorts])
    expect((await second.exited).code).toBe(4)
    const failed = second.lines.filter((l) => l.level === "error")
    expect(failed).toHaveLength(1)
    expect(String(failed[0]!.message)).toContain(`in use by another agent (pid ${first.child.pid})`)
    // Refused before anything was written: no boot of its own, no record, no health port.
    expect(second.lines.some((l) => l.name === "node.health")).toBe(false)
    expect(readFileSync(record, "utf8")).toBe(before)
    expect(readFileSync(join(dir, "novacron.lock"), "utf8")).toBe(lock)

    first.kill("SIGTERM")
    expect((await first.exited).code).toBe(0)
    // The record of the first agent's own boot, stopped cleanly: what `analyze` reads.
    const after = JSON.parse(readFileSync(record, "utf8"))
    expect(after.pid).toBe(first.child.pid)
    expect(after.outcome).toBe("stopped")
  })
})

describe("log lines of a boot that does not finish", () => {
  it("a SIGTERM during boot is one info line saying so, never an error", async () => {
    // The cache retries an unreachable Redis (1 s, 2 s, 4 s), which holds the boot open.
    const agent = start([
      "start",
      "--data-dir",
      tempDataDir(),
      ...ephemeralPorts,
      "--set",
      "storage.cache_redis_url=redis://127.0.0.1:1",
    ])
    await agent.waitFor((l) => l.name === "component.running" && l.component === "database")
    agent.kill("SIGTERM")
    expect((await agent.exited).code).toBe(0)
    const interrupted = agent.lines.filter((l) => /interrupted/.test(String(l.message)))
    expect(interrupted).toHaveLength(1)
    expect(interrupted[0]).toMatchObject({
      level: "info",
      name: "boot.interrupted",
      message: "boot interrupted: rolling back what had started",
    })
    expect(agent.lines.filter((l) => l.level === "error" || l.level === "fatal")).toEqual([])
  })

  it("a CRITICAL failure is logged by the component and the boot, not again by the host", async () => {
    // SQLite under a regular file: the database component fails at once.
    const dir = tempDataDir()
    writeFileSync(join(dir, "not-a-dir"), "")
    const agent = start([
      "start",
      "--data-dir",
      dir,
      ...ephemeralPorts,
      "--set",
      `storage.sqlite_path=${join(dir, "not-a-dir", "novacron.db")}`,
    ])
    expect((await agent.exited).code).toBe(4)
    const errors = agent.lines.filter((l) => l.level === "error")
    expect(errors.map((l) => l.name)).toEqual(["component.failed", "boot.failed"])
    expect(agent.lines.some((l) => l.name === "node.failed")).toBe(false)
  })
})

describe("version", () => {
  it("`version` and `--version` print it; it is in the first log line, READY, /status and /metrics", async () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
    for (const args of [["version"], ["--version"]]) {
      const r = cli(args)
      expect(r.code).toBe(0)
      expect(r.stdout).toBe(`novacron-node ${pkg.version} on Node.js ${process.version}\n`)
    }
    const agent = start(["start", "--data-dir", tempDataDir(), ...ephemeralPorts])
    const ready = await agent.waitFor((l) => l.name === "node.ready")
    expect(agent.lines[0]).toMatchObject({ name: "node.starting", version: pkg.version })
    expect(String(agent.lines[0]!.message)).toMatch(new RegExp(`^novacron-node ${pkg.version} on Node.js`))
    expect(ready).toMatchObject({ version: pkg.version, node_version: process.version })
    expect(String(ready.message)).toContain(pkg.version)
    const base = String(agent.lines.find((l) => l.name === "node.health")!.url)
    const status = JSON.parse((await get(`${base}/status`)).text)
    expect(status).toMatchObject({ version: pkg.version, node_version: process.version })

    const metrics = await get((ready.endpoints as Record<string, string>).metrics!)
    const families = parse(metrics.text) as Array<{
      name: string
      type: string
      metrics: Array<{ value: string; labels?: Record<string, string> }>
    }>
    const info = families.find((f) => f.name === "novacron_build_info")
    expect(info?.type).toBe("GAUGE")
    expect(info?.metrics).toEqual([{ value: "1", labels: { version: pkg.version, node_version: process.version } }])
    // Effect's active-fiber count goes down as well as up: a gauge, not a counter.
    expect(families.find((f) => f.name === "effect_fiber_active")?.type).toBe("GAUGE")
  })
})

describe("health and metrics address", () => {
  it("--listen-address 0.0.0.0 moves the cluster listener only; health and metrics stay on loopback and say so", async () => {
    const agent = start(["start", "--data-dir", tempDataDir(), ...ephemeralPorts, "--listen-address", "0.0.0.0"])
    const ready = await agent.waitFor((l) => l.name === "node.ready")
    const health = agent.lines.find((l) => l.name === "node.health")!
    expect(String(health.url)).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(String(health.message)).toContain("loopback only, while the cluster listener is on 0.0.0.0")
    expect((ready.endpoints as Record<string, string>).metrics).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
    const listening = agent.lines.find((l) => l.component === "network" && /^listening on /.test(String(l.message)))
    expect(String(listening?.message)).toMatch(/^listening on 0\.0\.0\.0:\d+/)
  })
})

describe("the command line", () => {
  it("`start --help` prints the start command's own help", () => {
    for (const args of [
      ["start", "--help"],
      ["help", "start"],
    ]) {
      const r = cli(args)
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/^usage: novacron-node start /)
      expect(r.stdout).toContain("--data-dir DIR           system.data_dir")
    }
  })

  it("`validate --json` lists each problem with its path, message and source", () => {
    const file = join(tempDataDir(), "novacron.yaml")
    writeFileSync(file, "system:\n  log_levle: debug\n  max_concurrency: 0\n")
    const bad = cli(["validate", "--json", "--config", file])
    expect(bad.code).toBe(3)
    const report = JSON.parse(bad.stdout) as {
      valid: boolean
      problems: Array<{ path: string; message: string; source: string }>
    }
    expect(report.valid).toBe(false)
    expect(report.problems.map((p) => p.path)).toEqual(["system.log_levle", "system.max_concurrency"])
    for (const p of report.problems) {
      expect(p.source).toContain("novacron.yaml:")
      expect(p.message.length).toBeGreaterThan(0)
    }
    const good = cli(["validate", "--json"])
    expect(good.code).toBe(0)
    expect(JSON.parse(good.stdout)).toEqual({ valid: true, config: null, problems: [], notes: [] })
  })

  it("the design's own novacron.yaml: every key accepted; what is not built yet is said; missing files named", () => {
    const example = join(dirname(agentMain), "../../../examples/novacron.yaml")
    // As shipped, it points at certificate files this machine does not have: exactly those are named.
    const shipped = cli(["validate", "--json", "--config", example])
    expect(shipped.code).toBe(3)
    const problems = (JSON.parse(shipped.stdout) as { problems: Array<{ path: string; message: string }> }).problems
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ["network.tls_cert_path", expect.stringContaining("cannot read /etc/novacron/certs/server.crt (ENOENT)")],
      ["network.tls_key_path", expect.stringContaining("cannot read /etc/novacron/certs/server.key (ENOENT)")],
    ])
    // With the files there (given by the design's own key names), it is valid, and each key whose part
    // is not built yet is named with where it was set.
    const tls = tempDataDir()
    writeFileSync(join(tls, "server.crt"), "")
    writeFileSync(join(tls, "server.key"), "")
    const paths = [
      "--set",
      `network.tls_cert_path=${join(tls, "server.crt")}`,
      "--set",
      `network.tls_key_path=${join(tls, "server.key")}`,
    ]
    const ok = cli(["validate", "--config", example, ...paths])
    expect(ok.stderr).toBe("")
    expect(ok.code).toBe(0)
    expect(ok.stdout).toMatch(/^configuration is valid \(/)
    expect(ok.stdout).toMatch(
      /note: dwcp\.consensus\.election_timeout \(novacron\.yaml:\d+\): .*not in effect yet: the agent does not run etcd/,
    )
    const json = JSON.parse(cli(["validate", "--json", "--config", example, ...paths]).stdout) as {
      notes: Array<{ path: string; source: string }>
    }
    expect(json.notes.length).toBeGreaterThan(0)
    for (const n of json.notes) expect(n.source).toMatch(/novacron\.yaml:\d+/)
  })

  it("an extra positional argument is a usage error (2) naming it", () => {
    for (const args of [
      ["start", "now"],
      ["validate", "novacron.yaml"],
      ["config", "print", "extra"],
      ["version", "x"],
    ]) {
      const r = cli(args)
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/^unexpected argument after "/)
      expect(r.stderr).toContain(JSON.stringify(args.at(-1)))
    }
  })
})
