import { connect as tlsConnect } from "node:tls"
import { Config } from "@novacron/config"
import { Rollout } from "@novacron/dwcp"
import { Placement } from "@novacron/dwcp-itp"
import { Context, Effect, Layer } from "effect"
import { describe, expect, it } from "vitest"
import { plan } from "../src/Dwcp.js"
import { agentsPerTest, ephemeralPorts, requireBuild, tempDataDir } from "./harness.js"

const settings = (sets: ReadonlyArray<string>) =>
  Effect.runPromise(Config.load({ env: {}, flags: sets.flatMap((s) => ["--set", s]) })).then((l) => l.settings)

const names = (p: { components: ReadonlyArray<{ name: string }> }) => p.components.map((c) => c.name)

describe("the host's DWCP plan", () => {
  it("every node runs the dwcp component (v1 when no v3 flag is set), and nothing is noted", async () => {
    const p = await plan(await settings(["dwcp.v3_rollout_percentage=100"]), "/tmp/x")
    expect(names(p)).toEqual(["dwcp", "transfer-accuracy", "bandwidth-predictor"])
    expect(p.notes).toEqual([])
  })

  it("placement runs v3 (ITP's service) only for nodes whose bucket is below the percentage; the others are told why", async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `n${i}`)
    const inside = ids.find((id) => Rollout.rolloutBucket(id) < 30)!
    const outside = ids.find((id) => Rollout.rolloutBucket(id) >= 30)!
    const base = ["dwcp.enable_v3_placement=true", "dwcp.v3_rollout_percentage=30"]
    const on = await plan(await settings([...base, `system.node_id=${inside}`]), "/tmp/x")
    expect(names(on)).toEqual(["dwcp", "transfer-accuracy", "bandwidth-predictor", "dwcp-itp", "placement-optimizer"])
    expect(on.notes).toEqual([])
    const off = await plan(await settings([...base, `system.node_id=${outside}`]), "/tmp/x")
    expect(names(off)).toEqual(["dwcp", "transfer-accuracy", "bandwidth-predictor"])
    expect(off.notes).toEqual([expect.stringContaining(`placement runs v1: node ${outside} is outside the v3 rollout`)])
  })

  it("a section its owner's schema refuses is named as refused settings", async () => {
    const s = await settings(["dwcp.enable_v3_compression=true", "dwcp.v3_rollout_percentage=100"])
    const bad = { ...s, dwcp: { ...s.dwcp, compression: { ...s.dwcp.compression, workers: -1 } } }
    const p = await plan(bad, "/tmp/x")
    expect(p.components).toEqual([])
    expect(p.notes).toHaveLength(1)
    expect(p.notes[0]).toMatch(/^dwcp: its settings were refused \(.*workers/s)
  })

  it("passes dwcp.placement through to the placement service", async () => {
    const p = await plan(
      await settings([
        "dwcp.enable_v3_placement=true",
        "dwcp.v3_rollout_percentage=100",
        "dwcp.placement.policy=spread",
      ]),
      "/tmp/x",
    )
    const itp = p.components.find((c) => c.name === "dwcp-itp")!
    const policy = await Effect.runPromise(
      Effect.scoped(
        Effect.flatMap(Layer.build(itp.layer as Layer.Layer<Placement.Placement>), (ctx) =>
          Effect.succeed(Context.get(ctx, Placement.Placement).policy),
        ),
      ),
    )
    expect(policy).toBe("spread")
  })
})

describe("the dwcp component in a running agent", () => {
  const start = agentsPerTest()

  it("runs the DWCP receiver, which refuses a TLS client without a cluster certificate", async () => {
    requireBuild()
    const agent = start(["start", "--data-dir", tempDataDir(), ...ephemeralPorts])
    const listening = await agent.waitFor((l) => l.name === "dwcp.listening")
    await agent.waitFor((l) => l.name === "node.ready")
    const port = Number(listening.port)
    expect(port).toBeGreaterThan(0)
    // No client certificate: the handshake is refused (or the socket closed) before any frame is read.
    const outcome = await new Promise<string>((resolve) => {
      const socket = tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false })
      socket.once("secureConnect", () => {
        socket.write(Buffer.alloc(64, 1))
        socket.once("data", () => resolve("answered"))
      })
      socket.once("error", (e) => resolve(`error: ${e.message}`))
      socket.once("close", () => resolve("closed"))
    })
    expect(outcome).toMatch(/certificate required|alert number 116/)
    agent.kill("SIGTERM")
    expect((await agent.exited).code).toBe(0)
  }, 60_000)
})
