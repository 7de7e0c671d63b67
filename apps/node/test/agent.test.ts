import { spawn } from "node:child_process"
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs"
import { connect } from "node:net"
import { join } from "node:path"
import Database from "better-sqlite3"
import { XMLParser, XMLValidator } from "fast-xml-parser"
import parse from "parse-prometheus-text-format"
import { describe, expect, it } from "vitest"
import { agentMain, agentsPerTest, cli, ephemeralPorts, get, requireBuild, tempDataDir, testEnv } from "./harness.js"

const start = agentsPerTest()

describe("novacron-node start", () => {
  it("boots to READY, serves health and metrics, and shuts down in reverse start order on SIGTERM", async () => {
    const dir = tempDataDir()
    const agent = start(["start", "--data-dir", dir, ...ephemeralPorts])
    const base = String((await agent.waitFor((l) => l.name === "node.health")).url)
    expect((await get(`${base}/healthz`)).status).toBe(200)
    const ready = await agent.waitFor((l) => l.name === "node.ready")
    const endpoints = ready.endpoints as Record<string, string>

    const readyz = await get(`${base}/readyz?verbose`)
    expect(readyz.status).toBe(200)
    expect(readyz.text).toMatch(/\[\+\]config ok/)
    expect(readyz.text).toMatch(/readyz check passed/)

    const status = JSON.parse((await get(`${base}/status`)).text)
    expect(status.lifecycle).toBe("ready")
    expect(status.boot.checkpoints).toEqual([
      "init_start",
      "pre_init_complete",
      "core_init_complete",
      "service_init_complete",
      "init_complete",
    ])
    const names = status.components.map((c: { name: string }) => c.name)
    expect(names).toEqual(
      expect.arrayContaining([
        "config",
        "logging",
        "resources",
        "conflict-check",
        "environment",
        "security",
        "database",
        "cache",
        "network",
        "membership",
        "metrics-endpoint",
      ]),
    )
    for (const c of status.components) {
      expect(c.status).toBe("running")
      expect(typeof c.init_ms).toBe("number")
      expect(c.criticality).toMatch(/^(CRITICAL|DEGRADED|WARNING)$/)
    }

    const metrics = await get(endpoints.metrics!)
    expect(metrics.type).toMatch(/^text\/plain; version=0.0.4/)
    const families = parse(metrics.text) as Array<{
      name: string
      metrics: Array<{ value: string; labels?: Record<string, string> }>
    }>
    const total = families.find((f) => f.name === "total_boot_time_seconds")
    expect(Number(total!.metrics[0]!.value)).toBeCloseTo(status.boot.total_ms / 1000, 6)
    const inits = families.find((f) => f.name === "component_init_success_count")!.metrics
    expect(inits.map((m) => m.labels!.component).sort()).toEqual([...names].sort())

    agent.kill("SIGTERM")
    const { code } = await agent.exited
    expect(code).toBe(0)
    const up = agent.lines.filter((l) => l.name === "component.running").map((l) => l.component)
    const down = agent.lines.filter((l) => l.name === "component.stopped").map((l) => l.component)
    expect(up.length).toBeGreaterThanOrEqual(5)
    expect(down).toEqual([...up].reverse())
    await expect(get(`${base}/healthz`)).rejects.toThrow()
  })

  // The cache cannot reach Redis: it retries (1 s, 2 s, 4 s) before going on degraded, which keeps
  // the node booting for a while.
  const startHeldInBoot = (dir: string) =>
    start(["start", "--data-dir", dir, ...ephemeralPorts, "--set", "storage.cache_redis_url=redis://127.0.0.1:1"])

  it("answers /readyz 503 while booting, then 200 at READY", async () => {
    const agent = startHeldInBoot(tempDataDir())
    const base = String((await agent.waitFor((l) => l.name === "node.health")).url)
    const during = await get(`${base}/readyz`)
    const status = JSON.parse((await get(`${base}/status`)).text)
    await agent.waitFor((l) => l.name === "node.ready", 30_000)
    const after = await get(`${base}/readyz`)
    expect(during.status).toBe(503)
    expect(during.text).toBe("booting\n")
    expect(status.lifecycle).toBe("booting")
    expect(after.status).toBe(200)
    // It went on without Redis: the cache is up on its in-memory level and says so.
    const cache = JSON.parse((await get(`${base}/status`)).text).components.find(
      (c: { name: string }) => c.name === "cache",
    )
    expect(cache.status).toBe("degraded")
  })

  it("on SIGTERM while booting, rolls back what had started, newest first, records why, and exits 0", async () => {
    const dir = tempDataDir()
    const agent = startHeldInBoot(dir)
    await agent.waitFor((l) => l.name === "component.running" && l.component === "database")
    agent.kill("SIGTERM")
    const { code } = await agent.exited
    expect(code).toBe(0)
    const up = agent.lines.filter((l) => l.name === "component.running").map((l) => l.component)
    const down = agent.lines.filter((l) => l.name === "component.stopped").map((l) => l.component)
    expect(up).toContain("database")
    expect(agent.lines.some((l) => l.name === "node.ready")).toBe(false)
    expect(down).toEqual([...up].reverse())
    const record = JSON.parse(readFileSync(join(dir, "boot", "boot-record.json"), "utf8"))
    expect(record.outcome).toBe("failed")
    expect(record.failure.message).toBe("boot interrupted")
  })

  describe("while shutting down", () => {
    // On plain TCP a client that connected and says nothing gets Goodbye and is cut after a 2 s
    // linger: that holds shutdown open long enough to look at it.
    const slowToStop = async () => {
      const open = ["--set", "security.auth_method=none", "--set", "network.enable_tls=false"]
      const agent = start(["start", "--data-dir", tempDataDir(), ...ephemeralPorts, ...open])
      const base = String((await agent.waitFor((l) => l.name === "node.health")).url)
      const listening = await agent.waitFor(
        (l) => l.component === "network" && /^listening on /.test(String(l.message)),
      )
      const [host, port] = String(listening.message)
        .match(/listening on (\S+):(\d+)/)!
        .slice(1)
      await agent.waitFor((l) => l.name === "node.ready")
      const silent = connect(Number(port), host)
      silent.on("error", () => {})
      await new Promise((r) => silent.once("connect", r))
      agent.kill("SIGTERM")
      await agent.waitFor((l) => l.name === "shutdown.started")
      return { agent, base, silent }
    }

    it("/readyz answers 503 and /healthz 200 until the process is gone", async () => {
      const { agent, base, silent } = await slowToStop()
      const readyz = await get(`${base}/readyz`)
      expect(readyz.status).toBe(503)
      expect(readyz.text).toBe("shutting-down\n")
      expect((await get(`${base}/healthz`)).status).toBe(200)
      expect((await agent.exited).code).toBe(0)
      silent.destroy()
    })

    it("a second signal forces the exit (130)", async () => {
      const { agent, silent } = await slowToStop()
      agent.kill("SIGTERM")
      expect((await agent.exited).code).toBe(130)
      expect(agent.stderr.join("")).toContain("SIGTERM again: forcing exit")
      silent.destroy()
    })
  })

  it("refuses a second agent on the same data directory, naming the holder", async () => {
    const dir = tempDataDir()
    const first = start(["start", "--data-dir", dir, ...ephemeralPorts])
    await first.waitFor((l) => l.name === "node.ready")
    const second = start(["start", "--data-dir", dir, ...ephemeralPorts])
    const { code } = await second.exited
    expect(code).toBe(4)
    const failed = second.lines.find((l) => l.name === "node.failed")
    expect(String(failed?.message)).toContain(`pid ${first.child.pid}`)
    // The first one is untouched.
    expect(first.child.exitCode).toBeNull()
  })

  it("a bad configuration exits 3 and names every problem", () => {
    const dir = tempDataDir()
    const file = join(dir, "novacron.yaml")
    writeFileSync(file, "system:\n  log_levle: debug\n  max_concurrency: 0\n")
    const r = cli(["start", "--config", file])
    expect(r.code).toBe(3)
    expect(r.stderr).toContain("invalid configuration (2 problems)")
    expect(r.stderr).toContain("system.log_levle")
    expect(r.stderr).toContain('did you mean "log_level"')
    expect(r.stderr).toContain("system.max_concurrency")
    const v = cli(["validate", "--config", file])
    expect(v.code).toBe(3)
    expect(v.stderr).toBe(r.stderr)
  })

  it("config print shows each value's source and never a secret", () => {
    const r = cli(
      ["config", "print", "--set", "storage.postgres_url=postgres://admin:hunter2@db:5432/x", "--log-level", "debug"],
      { NOVACRON_NODE_ID: "node-7" },
    )
    expect(r.code).toBe(0)
    expect(r.stdout).not.toContain("hunter2")
    expect(r.stdout).toMatch(/node_id: node-7 #.*NOVACRON_NODE_ID/)
    expect(r.stdout).toMatch(/log_level: debug #.*flag/)
  })

  it("analyze reads the boot record: blame, critical-chain and a valid SVG plot", async () => {
    const dir = tempDataDir()
    const agent = start(["start", "--data-dir", dir, ...ephemeralPorts])
    await agent.waitFor((l) => l.name === "node.ready")
    agent.kill("SIGTERM")
    expect((await agent.exited).code).toBe(0)

    const blame = cli(["analyze", "blame", "--data-dir", dir, "--json"])
    expect(blame.code).toBe(0)
    const rows = JSON.parse(blame.stdout) as Array<{ name: string; millis: number }>
    expect(rows.map((r) => r.name)).toContain("conflict-check")
    expect(rows.every((r, i) => i === 0 || rows[i - 1]!.millis >= r.millis)).toBe(true)

    const chain = cli(["analyze", "critical-chain", "--data-dir", dir])
    expect(chain.code).toBe(0)
    expect(chain.stdout).toMatch(/^boot [0-9a-f-]+: stopped/)

    const svgFile = join(dir, "boot.svg")
    const plot = cli(["analyze", "plot", "--data-dir", dir, "-o", svgFile])
    expect(plot.code).toBe(0)
    const svg = readFileSync(svgFile, "utf8")
    expect(XMLValidator.validate(svg)).toBe(true)
    const doc = new XMLParser({ ignoreAttributes: false }).parse(svg)
    expect((doc.svg.g as Array<Record<string, string>>).map((g) => g["@_data-name"])).toEqual(
      expect.arrayContaining(["config", "logging", "metrics-endpoint"]),
    )
  })

  it("analyze without a boot record says so; a bad command exits 2", () => {
    const r = cli(["analyze", "blame", "--data-dir", tempDataDir()])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("no boot record")
    expect(cli(["frobnicate"]).code).toBe(2)
  })
})

describe("on a terminal", () => {
  it("shows phases and components as they come up, then a one-screen summary at READY", async () => {
    requireBuild()
    const dir = tempDataDir()
    const command = [process.execPath, agentMain, "start", "--data-dir", dir, ...ephemeralPorts].join(" ")
    // `script` gives the agent a pseudo-terminal, as a person's shell would.
    const child = spawn("script", ["-qfec", command, "/dev/null"], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, ...testEnv },
    })
    let out = ""
    child.stdout.setEncoding("utf8").on("data", (c: string) => {
      out += c
    })
    const deadline = Date.now() + 20_000
    while (!/metrics\s+http/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    child.kill("SIGTERM")
    await new Promise((r) => child.on("exit", r))
    const text = out.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g"), "").replace(/\r/g, "")
    expect(text).toMatch(/^pre-init$/m)
    expect(text).toMatch(/^core$/m)
    expect(text).toMatch(/✓ config\s+[0-9.]+ ms/)
    expect(text).toMatch(/READY in [0-9.]+ ms/)
    expect(text).toMatch(/security\s+core\s+CRITICAL\s+running/)
    expect(text).toMatch(/health\s+http:\/\/127\.0\.0\.1:\d+\/healthz/)
    // info logs stay off the terminal: the display says it instead.
    expect(text).not.toMatch(/INFO.*config started/)
  })
})

describe("membership", () => {
  it("takes a peer's connection and lists it; an id only claimed (no certificate) never writes the nodes table", async () => {
    // No TLS and no authentication, on loopback only: two agents here have different node CAs.
    const open = ["--set", "security.auth_method=none", "--set", "network.enable_tls=false"]
    const dirA = tempDataDir()
    const a = start(["start", "--data-dir", dirA, ...ephemeralPorts, ...open, "--set", "system.node_id=node-a"])
    const base = String((await a.waitFor((l) => l.name === "node.health")).url)
    const listening = await a.waitFor((l) => l.component === "network" && /^listening on /.test(String(l.message)))
    const address = String(listening.message).match(/listening on (\S+)/)![1]!
    await a.waitFor((l) => l.name === "node.ready")

    const b = start([
      "start",
      "--data-dir",
      tempDataDir(),
      ...ephemeralPorts,
      ...open,
      "--set",
      "system.node_id=node-b",
      "--set",
      `network.peers=${address}`,
    ])
    await a.waitFor((l) => /^peer node-b connected \(inbound/.test(String(l.message)))
    const status = JSON.parse((await get(`${base}/status`)).text)
    const membership = status.components.find((c: { name: string }) => c.name === "membership")
    expect(membership.status).toBe("running")
    // /status lists the connected peers.
    expect(status.peers).toEqual([expect.objectContaining({ node_id: "node-b", side: "inbound", identity: "claimed" })])

    b.kill("SIGTERM")
    expect((await b.exited).code).toBe(0)
    await a.waitFor((l) => /^peer node-b disconnected/.test(String(l.message)))
    a.kill("SIGTERM")
    expect((await a.exited).code).toBe(0)

    const db = new Database(join(dirA, "novacron.db"), { readonly: true })
    const rows = db.prepare("select id, state from nodes order by id").all()
    db.close()
    // Without certificates node-b's id is only what it said: recording it could overwrite another node's row.
    expect(rows).toEqual([{ id: "node-a", state: "stopped" }])
  })
})

describe("DWCP v3 parts", () => {
  const v3 = [
    "dwcp.enable_v3_transport=true",
    "dwcp.enable_v3_compression=true",
    "dwcp.enable_v3_prediction=true",
    "dwcp.enable_v3_placement=true",
  ].flatMap((s) => ["--set", s])

  it("runs the enabled parts on v3 inside the rollout; /status shows each part's version and the mode", async () => {
    const dir = tempDataDir()
    const agent = start([
      "start",
      "--data-dir",
      dir,
      ...ephemeralPorts,
      ...v3,
      "--set",
      "dwcp.v3_rollout_percentage=100",
    ])
    const base = String((await agent.waitFor((l) => l.name === "node.health")).url)
    await agent.waitFor((l) => l.name === "node.ready", 30_000)
    const status = JSON.parse((await get(`${base}/status`)).text)
    const dwcp = status.components.filter((c: { name: string }) => c.name.startsWith("dwcp"))
    expect(dwcp.map((c: { name: string }) => c.name).sort()).toEqual(["dwcp", "dwcp-itp"])
    for (const c of dwcp) expect(c.status).toBe("running")
    const parts = dwcp.find((c: { name: string }) => c.name === "dwcp").details.parts
    expect(parts).toMatchObject({
      transport: "v3",
      congestion: "v3",
      compression: "v3",
      prediction: "v3",
      placement: "v3",
      state_sync: "v1 (dwcp.enable_v3_state_sync is false)",
    })
    expect(agent.lines.filter((l) => l.name === "dwcp.off")).toEqual([])
    agent.kill("SIGTERM")
    expect((await agent.exited).code).toBe(0)
  })

  it("keeps them on v1 on a node outside the rollout, and says so", async () => {
    const agent = start(["start", "--data-dir", tempDataDir(), ...ephemeralPorts, ...v3])
    const base = String((await agent.waitFor((l) => l.name === "node.health")).url)
    await agent.waitFor((l) => l.name === "node.ready")
    const status = JSON.parse((await get(`${base}/status`)).text)
    const dwcp = status.components.find((c: { name: string }) => c.name === "dwcp")
    expect(dwcp.status).toBe("running")
    expect(dwcp.details.parts.transport).toMatch(/^v1 \(node .* is outside the v3 rollout/)
    expect(status.components.some((c: { name: string }) => c.name === "dwcp-itp")).toBe(false)
    const off = agent.lines.find((l) => l.name === "dwcp.off")
    expect(String(off?.message)).toMatch(/outside the v3 rollout \(bucket \d+, dwcp.v3_rollout_percentage 0\)/)
  })
})

describe("code cache", () => {
  it("writes a V8 code cache after a start, uses it on the next, and replaces a stale one", async () => {
    const cache = tempDataDir()
    const env = { NOVACRON_COMPILE_CACHE: cache }
    // Another build's cache: one unused for over a week is removed, a recent one is left alone.
    const stale = join(cache, `agent-${"0".repeat(24)}.v8cache`)
    const recent = join(cache, `agent-${"1".repeat(24)}.v8cache`)
    writeFileSync(stale, "not a code cache")
    writeFileSync(recent, "not a code cache")
    const eightDaysAgo = new Date(Date.now() - 8 * 24 * 3600 * 1000)
    utimesSync(stale, eightDaysAgo, eightDaysAgo)
    const startAndStop = async (extra: ReadonlyArray<string> = []) => {
      const agent = start(["start", "--data-dir", tempDataDir(), ...ephemeralPorts, ...extra], env)
      await agent.waitFor((l) => l.name === "node.ready")
      // The cache is written two seconds after start.
      await new Promise((r) => setTimeout(r, 2500))
      agent.kill("SIGTERM")
      expect((await agent.exited).code).toBe(0)
      return agent
    }
    await startAndStop()
    const written = readdirSync(cache).filter((f) => f !== `agent-${"1".repeat(24)}.v8cache`)
    expect(written).toHaveLength(1)
    expect(existsSync(recent)).toBe(true)
    expect(written[0]).toMatch(/^agent-[0-9a-f]{24}\.v8cache$/)
    const file = join(cache, written[0]!)
    expect(statSync(file).size).toBeGreaterThan(100_000)
    const before = statSync(file).mtimeMs
    // A start with a valid cache leaves it alone; code run from the cache can still import() a
    // DWCP package (Node 20 drops the callback for that in cached scripts; src/main.ts works around it).
    const v3 = ["--set", "dwcp.v3_rollout_percentage=100", "--set", "dwcp.enable_v3_compression=true"]
    const cached = await startAndStop(v3)
    expect(statSync(file).mtimeMs).toBe(before)
    // @novacron/dwcp came in through import() and HDE started through its own import() in that package.
    expect(cached.lines.some((l) => l.name === "component.running" && l.component === "dwcp")).toBe(true)
    expect(cached.lines.filter((l) => l.name === "dwcp.part_failed")).toEqual([])
    expect(cached.lines.filter((l) => l.name === "dwcp.off")).toEqual([])
    // A corrupt cache is rejected by V8, the agent still boots, and the file is rewritten.
    writeFileSync(file, Buffer.alloc(4096, 7))
    await startAndStop()
    expect(statSync(file).size).toBeGreaterThan(100_000)
    // Cached code runs in the agent: in a directory others may write, the cache is neither read nor
    // rewritten (a planted file stays as it is), and stderr says why.
    chmodSync(cache, 0o777)
    writeFileSync(file, Buffer.alloc(4096, 7))
    const shared = await startAndStop()
    expect(shared.stderr.join("")).toContain(
      `novacron: V8 code cache not used: ${cache} is writable by group or others`,
    )
    expect(statSync(file).size).toBe(4096)
  })

  it("is not used when turned off", async () => {
    const home = tempDataDir()
    const agent = start(["start", "--data-dir", tempDataDir(), ...ephemeralPorts], {
      NOVACRON_COMPILE_CACHE: "off",
      XDG_CACHE_HOME: home,
    })
    await agent.waitFor((l) => l.name === "node.ready")
    await new Promise((r) => setTimeout(r, 2500))
    agent.kill("SIGTERM")
    expect((await agent.exited).code).toBe(0)
    expect(readdirSync(home)).toEqual([])
  })
})
