// The agent as Prometheus sees it: its /metrics linted by promtool, and a real prometheus (Debian's,
// on loopback, its TSDB in a temp dir) scraping it with the monitoring package's alert rules loaded.
import { writeFileSync } from "node:fs"
import { Alerts } from "@novacron/monitoring"
import { Security } from "@novacron/security"
import { havePrometheus, promtool, startPrometheus, tempDir } from "@novacron/testing"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { agentsPerTest, ephemeralPorts, freePort, get, tempDataDir } from "./harness.js"

const start = agentsPerTest()

// The design's boot metrics are the spec ("Observability" in initialization-architecture-v2.md):
// its two `_count` counters are kept as named, the only findings promtool may report.
const designNames =
  /^component_init_(success|failure)_count (counter metrics should have "_total" suffix|non-histogram and non-summary metrics should not have "_count" suffix)$/

const readyAgent = async () => {
  const agent = start(["start", "--data-dir", tempDataDir(), ...ephemeralPorts])
  const ready = await agent.waitFor((l) => l.name === "node.ready")
  const endpoints = ready.endpoints as Record<string, string>
  return { agent, metrics: endpoints.metrics!, health: endpoints.health!.replace(/\/healthz$/, "") }
}

const query = async (base: string, promql: string) => {
  const r = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`)
  const body = (await r.json()) as {
    status: string
    data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> }
  }
  expect(body.status).toBe("success")
  return body.data.result
}

const eventually = async <A>(what: string, probe: () => Promise<A | undefined>, timeoutMs = 30_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const a = await probe()
    if (a !== undefined) return a
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

describe.skipIf(!(await havePrometheus()))("the agent and Prometheus", () => {
  it("a live agent's /metrics passes promtool check metrics but for the design's two _count names", async () => {
    const { metrics, health } = await readyAgent()
    const text = (await get(metrics)).text
    // The health, process and disk series are there (and so linted too).
    expect(text).toMatch(/^novacron_node_ready 1$/m)
    expect(text).toMatch(/^novacron_component_healthy\{component="database",criticality="CRITICAL"\} 1$/m)
    expect(text).toMatch(/^novacron_data_dir_available_bytes \d/m)
    expect(text).toMatch(/^process_cpu_seconds_total /m)
    expect(text).toMatch(/^effect_fiber_lifetime_seconds_bucket/m)
    expect(text).toMatch(/^component_init_success_count\{component="config"\} 1$/m)
    const r = promtool(["check", "metrics"], { input: text })
    const findings = (r.stdout + r.stderr).split("\n").filter((l) => l !== "")
    expect(findings.filter((l) => !designNames.test(l))).toEqual([])
    expect(findings.length).toBeGreaterThan(0)
    // The verbose health lists every component the boot ran, each passing.
    const readyz = await get(`${health}/readyz?verbose`)
    expect(readyz.status).toBe(200)
    expect(readyz.text).toMatch(/^\[\+\]lifecycle ok$/m)
    expect(readyz.text).toMatch(/^\[\+\]database ok$/m)
    expect(readyz.text).toMatch(/^\[\+\]metrics-endpoint ok$/m)
    expect(readyz.text).not.toMatch(/^\[-\]/m)
    expect(readyz.text).toMatch(/readyz check passed\n$/)
    const healthz = await get(`${health}/healthz?verbose`)
    expect(healthz.status).toBe(200)
    expect(healthz.text).toMatch(/^\[\+\]ping ok\n/)
    expect(healthz.text).toMatch(/^\[\+\]security ok$/m)
    expect(healthz.text).toMatch(/healthz check passed\n$/)
  })

  it("a real prometheus scrapes the agent (up == 1), loads the alert rules, and sees it go down", async () => {
    const { agent, metrics } = await readyAgent()
    const target = new URL(metrics).host
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const dir = yield* tempDir
          const port = yield* Effect.promise(freePort)
          const prom = yield* startPrometheus({
            dir,
            port,
            config: [
              "global:",
              "  scrape_interval: 1s",
              "  scrape_timeout: 1s",
              "  evaluation_interval: 1s",
              "rule_files:",
              `  - ${JSON.stringify(Alerts.rulesFile())}`,
              "scrape_configs:",
              "  - job_name: novacron-nodes",
              "    static_configs:",
              `      - targets: [${JSON.stringify(target)}]`,
              "",
            ].join("\n"),
          })
          yield* Effect.promise(async () => {
            const up = await eventually("up == 1", async () => {
              const r = await query(prom.url, 'up{job="novacron-nodes"} == 1')
              return r.length === 1 ? r[0] : undefined
            })
            expect(up.metric.instance).toBe(target)
            // What the agent exports arrives as series: the health gauges the rules read.
            const ready = await eventually("novacron_node_ready", async () => {
              const r = await query(prom.url, "novacron_node_ready")
              return r.length === 1 ? r[0] : undefined
            })
            expect(ready.value[1]).toBe("1")
            const healthy = await query(prom.url, 'novacron_component_healthy{criticality="CRITICAL"}')
            expect(healthy.map((s) => s.metric.component)).toEqual(expect.arrayContaining(["database", "security"]))
            expect(healthy.every((s) => s.value[1] === "1")).toBe(true)

            // Every group and alert of the package loaded, and evaluated without error.
            const rules = await eventually("rules evaluated", async () => {
              const r = (await (await fetch(`${prom.url}/api/v1/rules`)).json()) as {
                data: {
                  groups: Array<{ name: string; rules: Array<{ name: string; health: string; lastError?: string }> }>
                }
              }
              const all = r.data.groups.flatMap((g) => g.rules)
              return all.length > 0 && all.every((x) => x.health === "ok") ? r.data.groups : undefined
            })
            expect(rules.map((g) => g.name).sort()).toEqual([
              "novacron-agent",
              "novacron-cluster",
              "novacron-migration",
              "novacron-resources",
            ])
            const names = rules.flatMap((g) => g.rules.map((x) => x.name))
            expect(names).toEqual(
              expect.arrayContaining([
                "NovaCronAgentDown",
                "NovaCronCriticalComponentUnhealthy",
                "NovaCronDataDirDiskLow",
                "NovaCronStateNoLeader",
                "NovaCronMigrationFailing",
              ]),
            )
            expect(names.length).toBe(14)

            // The agent dies: the scrape fails, and the agent-down alert is pending (it fires after 1 min).
            agent.kill("SIGKILL")
            await agent.exited
            const pending = await eventually("NovaCronAgentDown pending", async () => {
              const r = (await (await fetch(`${prom.url}/api/v1/alerts`)).json()) as {
                data: { alerts: Array<{ labels: Record<string, string>; state: string }> }
              }
              return r.data.alerts.find((a) => a.labels.alertname === "NovaCronAgentDown")
            })
            expect(pending).toMatchObject({ state: "pending", labels: { instance: target, severity: "critical" } })
          })
        }),
      ),
    )
  })
})

describe("profiling", () => {
  it("serves a heap snapshot and a CPU profile to an admin token only, when monitoring.enable_profiling", async () => {
    const admin = Security.generateToken()
    const reader = Security.generateToken()
    const dir = tempDataDir()
    const config = `${dir}-novacron.yaml`
    writeFileSync(
      config,
      [
        "security:",
        "  tokens:",
        `    - { name: ops, role: admin, sha256: ${Security.hashToken(admin)} }`,
        `    - { name: dash, role: reader, sha256: ${Security.hashToken(reader)} }`,
        "monitoring:",
        "  enable_profiling: true",
        "  profiling_port: 0",
        "",
      ].join("\n"),
    )
    const agent = start(["start", "--config", config, "--data-dir", dir, ...ephemeralPorts])
    const line = await agent.waitFor((l) => l.name === "monitoring.profiling" && typeof l.url === "string")
    const base = String(line.url)
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/debug\/pprof\/$/)
    await agent.waitFor((l) => l.name === "node.ready")
    const as = (token?: string) => (token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } })
    expect((await fetch(`${base}heap`, as())).status).toBe(401)
    expect((await fetch(`${base}heap`, as(reader))).status).toBe(403)
    const profile = await fetch(`${base}profile?seconds=1`, as(admin))
    expect(profile.status).toBe(200)
    expect(((await profile.json()) as { nodes: Array<unknown> }).nodes.length).toBeGreaterThan(0)
    const heap = await fetch(`${base}heap`, as(admin))
    expect(heap.status).toBe(200)
    expect(((await heap.json()) as { snapshot: { node_count: number } }).snapshot.node_count).toBeGreaterThan(1000)
    await agent.waitFor(
      (l) => l.name === "monitoring.profiling" && /heap snapshot asked by ops/.test(String(l.message)),
    )
  })
})
