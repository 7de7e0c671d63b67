// Tracing across agents: two agents export to one fake OTLP collector (a node http server in the
// test); agent B dials agent A at boot, its Hello carries the dial span's traceparent, and A's
// accept span joins B's trace: one operation, one trace, two nodes.
import { readFileSync } from "node:fs"
import * as https from "node:https"
import { join } from "node:path"
import { type OtlpReceiver, otlpReceiver } from "@novacron/testing"
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { agentsPerTest, ephemeralPorts, tempDataDir } from "./harness.js"

const start = agentsPerTest()
// No TLS and no authentication, on loopback only: the two agents here have different node CAs.
const open = ["--set", "security.auth_method=none", "--set", "network.enable_tls=false"]

let scope: Scope.CloseableScope
let receiver: OtlpReceiver
beforeAll(async () => {
  scope = Effect.runSync(Scope.make())
  receiver = await Effect.runPromise(Scope.extend(otlpReceiver, scope))
})
afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

const traced = (nodeId: string) => [
  ...open,
  "--set",
  `system.node_id=${nodeId}`,
  "--set",
  "monitoring.enable_tracing=true",
  "--set",
  `monitoring.tracing_endpoint=${receiver.endpoint}`,
]

const eventually = async <A>(what: string, probe: () => A | undefined, timeoutMs = 20_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const a = probe()
    if (a !== undefined) return a
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; spans: ${receiver.spans.map((s) => s.name)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe("tracing", () => {
  it("exports one agent's boot as one trace, and continues a client's traceparent into its API request span", async () => {
    const dataDir = tempDataDir()
    const a = start(["start", "--data-dir", dataDir, ...ephemeralPorts, ...traced("trace-solo")])
    await a.waitFor((l) => l.name === "node.ready")
    const mine = () => receiver.spans.filter((s) => s.resource["service.instance.id"] === "trace-solo")
    const boot = await eventually("init.boot", () => mine().find((s) => s.name === "init.boot"))
    expect(boot.resource).toMatchObject({ "service.name": "novacron-node" })
    const database = await eventually("init.component database", () =>
      mine().find((s) => s.name === "init.component database"),
    )
    expect(database.traceId).toBe(boot.traceId)
    const core = mine().find((s) => s.name === "init.phase core")!
    expect(core.parentSpanId).toBe(boot.spanId)
    expect(database.parentSpanId).toBe(core.spanId)
    // An API request carrying a client's traceparent continues the client's trace in the agent.
    const ready = await a.waitFor((l) => l.name === "node.ready")
    const api = (ready.endpoints as Record<string, string>).api!
    const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request(`${api}/agent/self`, {
        ca: readFileSync(join(dataDir, "tls", "ca.crt"), "utf8"),
        agent: false,
        headers: { traceparent: `00-${clientTrace}-00f067aa0ba902b7-01` },
      })
      req.on("response", (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on("error", reject)
      req.end()
    })
    expect(status).toBe(200)
    const request = await eventually("the API request span", () => mine().find((s) => s.name === "GET /v1/agent/self"))
    expect(request.traceId).toBe(clientTrace)
    expect(request.parentSpanId).toBe("00f067aa0ba902b7")
    expect(request.attributes).toMatchObject({ "http.route": "/v1/agent/self", "http.response.status_code": 200 })
    a.kill("SIGTERM")
    expect((await a.exited).code).toBe(0)
    expect(receiver.rejected).toEqual([])
  })

  it("B dialing A is one trace over both agents: A's network.accept is the child of B's network.dial", async () => {
    const a = start(["start", "--data-dir", tempDataDir(), ...ephemeralPorts, ...traced("trace-a")])
    const listening = await a.waitFor((l) => l.component === "network" && /^listening on /.test(String(l.message)))
    const address = String(listening.message).match(/listening on (\S+)/)![1]!
    await a.waitFor((l) => l.name === "node.ready")
    const b = start([
      "start",
      "--data-dir",
      tempDataDir(),
      ...ephemeralPorts,
      ...traced("trace-b"),
      "--set",
      `network.peers=${address}`,
    ])
    await a.waitFor((l) => /^peer trace-b connected \(inbound/.test(String(l.message)))
    const dial = await eventually("B's network.dial", () =>
      receiver.spans.find((s) => s.name === "network.dial" && s.resource["service.instance.id"] === "trace-b"),
    )
    const accept = await eventually("A's network.accept", () =>
      receiver.spans.find((s) => s.name === "network.accept" && s.resource["service.instance.id"] === "trace-a"),
    )
    expect(accept.traceId).toBe(dial.traceId)
    expect(accept.parentSpanId).toBe(dial.spanId)
    expect(accept.attributes["peer.node_id"]).toBe("trace-b")
    expect(dial.attributes["peer.target"]).toBe(address)
    // B's dial is part of B's boot (the network component links its peers): the trace starts there.
    const bBoot = receiver.spans.find((s) => s.name === "init.boot" && s.resource["service.instance.id"] === "trace-b")
    if (bBoot !== undefined) expect(bBoot.traceId).toBe(dial.traceId)
    // A's own boot is another trace.
    const aBoot = receiver.spans.find((s) => s.name === "init.boot" && s.resource["service.instance.id"] === "trace-a")
    expect(aBoot?.traceId).not.toBe(dial.traceId)
    b.kill("SIGTERM")
    a.kill("SIGTERM")
    expect((await b.exited).code).toBe(0)
    expect((await a.exited).code).toBe(0)
  })
})
