// The API of a real agent: booted with the api section's defaults but on an ephemeral port, its
// URL in the READY line and /status, and its role checks against tokens from the configuration.
import { readFileSync, writeFileSync } from "node:fs"
import * as https from "node:https"
import { join } from "node:path"
import { Security } from "@novacron/security"
import { describe, expect, it } from "vitest"
import { agentsPerTest, cli, ephemeralPorts, get, tempDataDir } from "./harness.js"

const start = agentsPerTest()

const reader = Security.generateToken()
const operator = Security.generateToken()

const call = (base: string, ca: string, method: string, path: string, token?: string, body?: unknown) =>
  new Promise<{ status: number; json: any }>((resolve, reject) => {
    const req = https.request(
      `${base}${path}`,
      {
        method,
        ca,
        agent: false,
        headers: {
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
      },
      (res) => {
        let text = ""
        res.setEncoding("utf8").on("data", (c) => (text += c))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, json: text === "" ? undefined : JSON.parse(text) }))
      },
    )
    req.on("error", reject)
    req.end(body === undefined ? undefined : JSON.stringify(body))
  })

describe("the agent's API", () => {
  it("boots with the API (CRITICAL, services), lists it in node.ready and /status, and checks roles", async () => {
    const dir = tempDataDir()
    const config = join(dir, "..", `${dir.split("/").pop()}-novacron.yaml`)
    writeFileSync(
      config,
      [
        "security:",
        "  auth_method: token",
        "  tokens:",
        `    - { name: ops-reader, role: reader, sha256: ${Security.hashToken(reader)} }`,
        `    - { name: ops, role: operator, sha256: ${Security.hashToken(operator)} }`,
        "",
      ].join("\n"),
    )
    const agent = start(["start", "--config", config, "--data-dir", dir, ...ephemeralPorts])
    const ready = await agent.waitFor((l) => l.name === "node.ready", 60_000)
    const endpoints = ready.endpoints as Record<string, string>
    expect(endpoints.api).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/v1$/)
    // gRPC beside it, on its own (here ephemeral) port.
    expect(endpoints.grpc).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    expect(endpoints.grpc).not.toBe(endpoints.api!.replace(/\/v1$/, ""))
    const base = endpoints.api!.replace(/\/v1$/, "")
    const ca = readFileSync(join(dir, "tls", "ca.crt"), "utf8")

    const status = JSON.parse((await get(endpoints.health!.replace(/\/healthz$/, "/status"))).text)
    expect(status.api).toBe(endpoints.api)
    expect(status.grpc).toBe(endpoints.grpc)
    const row = status.components.find((c: { name: string }) => c.name === "api")
    expect(row).toMatchObject({ phase: "services", criticality: "CRITICAL", status: "running" })

    expect((await call(base, ca, "GET", "/v1/agent/self")).status).toBe(401)
    const self = await call(base, ca, "GET", "/v1/agent/self", reader)
    expect(self.status).toBe(200)
    expect(self.json).toMatchObject({
      lifecycle: "ready",
      api: { url: base, auth_method: "token" },
      principal: { name: "ops-reader", role: "reader", method: "token" },
    })
    expect(self.json.node_id).toBe(status.node_id)
    const health = await call(base, ca, "GET", "/v1/agent/health", reader)
    expect(health.json.components.map((c: { name: string }) => c.name)).toContain("api")
    // The leader is the orchestration coordinator: this node, once its campaign is won.
    let leader = await call(base, ca, "GET", "/v1/status/leader", reader)
    for (let i = 0; i < 50 && leader.json.leader === null; i++) {
      await new Promise((r) => setTimeout(r, 100))
      leader = await call(base, ca, "GET", "/v1/status/leader", reader)
    }
    expect(leader.status).toBe(200)
    expect(leader.json).toMatchObject({ mode: "local", election: "orchestration/coordinator", leader: status.node_id })
    // Tasks are orchestration's: the list answers (no 503), an unknown task is a typed 404.
    const tasks = await call(base, ca, "GET", "/v1/tasks", reader)
    expect(tasks.status).toBe(200)
    expect(Array.isArray(tasks.json.tasks)).toBe(true)
    expect((await call(base, ca, "GET", "/v1/tasks/nope", reader)).json).toMatchObject({
      _tag: "NotFound",
      kind: "task",
    })

    const spec = { id: "api-e2e", vcpus: 1, memory_mb: 64 }
    const denied = await call(base, ca, "POST", "/v1/vms", reader, spec)
    expect(denied.status).toBe(403)
    expect(denied.json).toMatchObject({ _tag: "Forbidden", permission: "vm:write" })
    // With QEMU the VM is defined; without it the VM manager's typed 503 says so. Never a 500.
    const created = await call(base, ca, "POST", "/v1/vms", operator, spec)
    expect([201, 503]).toContain(created.status)
    if (created.status === 503) expect(created.json).toMatchObject({ _tag: "ServiceUnavailable", service: "vm" })
    const drain = await call(base, ca, "POST", `/v1/nodes/${ready.node_id}/drain`, operator, {})
    // A drain is a durable task of the coordinator (this single node): accepted, with its id (a
    // node the agent manager does not know would be a 404).
    expect(drain.status).toBe(202)
    expect(drain.json).toMatchObject({ id: expect.any(String) })
    const metrics = await new Promise<string>((resolve, reject) => {
      https
        .get(`${base}/v1/metrics?format=prometheus`, { ca, headers: { "x-novacron-token": reader } }, (res) => {
          let t = ""
          res.setEncoding("utf8").on("data", (c) => (t += c))
          res.on("end", () => resolve(t))
        })
        .on("error", reject)
    })
    expect(metrics).toMatch(/^component_init_success_count\{component="api"\} 1$/m)

    // The CLI against the same agent: the node CA from the data directory, the token from the env.
    const members = cli(["api", "self", "--data-dir", dir, "--address", endpoints.api!], { NOVACRON_TOKEN: reader })
    expect(members.stderr).toBe("")
    expect(members.code).toBe(0)
    expect(members.stdout.split("\n")[0]).toMatch(/^NODE\s+VERSION\s+LIFECYCLE\s+YOU\s+ROLE\s+AUTH$/)
    expect(members.stdout).toMatch(/ready\s+ops-reader\s+reader\s+token/)
    const refused = cli(["api", "vms", "--data-dir", dir, "--address", base, "--json"])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(/^HTTP 401: Unauthorized/)
    // A client certificate issued on this node (it holds the CA key) authenticates with its role.
    const issued = cli(["cluster", "cert", "issue", "carol", "--role", "operator", "--out", dir, "--data-dir", dir])
    expect(issued.code).toBe(0)
    const byCert = cli([
      "api",
      "self",
      "--data-dir",
      dir,
      "--address",
      base,
      "--cert",
      join(dir, "carol.crt"),
      "--key",
      join(dir, "carol.key"),
    ])
    expect(byCert.stderr).toBe("")
    expect(byCert.stdout).toMatch(/ready\s+carol\s+operator\s+mtls/)

    agent.kill("SIGTERM")
    expect((await agent.exited).code).toBe(0)
    const audit = agent.lines.filter((l) => l.name === "api.audit")
    expect(audit.map((l) => [l.principal, l.method, l.status])).toEqual([
      ["ops-reader", "POST", 403],
      ["ops", "POST", created.status],
      ["ops", "POST", 202],
    ])
  }, 90_000)

  it("refuses to start with auth_method none on a non-loopback API address (CRITICAL: the boot halts)", async () => {
    const agent = start([
      "start",
      "--data-dir",
      tempDataDir(),
      ...ephemeralPorts,
      "--set",
      "security.auth_method=none",
      "--set",
      "api.listen_address=0.0.0.0",
    ])
    const { code } = await agent.exited
    expect(code).not.toBe(0)
    const text = JSON.stringify(agent.lines) + agent.stderr.join("")
    expect(text).toMatch(/auth_method is none, which the API allows only on loopback/)
  }, 90_000)
})
