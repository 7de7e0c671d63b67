import { existsSync } from "node:fs"
import { join } from "node:path"
import Database from "better-sqlite3"
import { describe, expect, it } from "vitest"
import { agentsPerTest, cli, ephemeralPorts, freePort, get, tempDataDir } from "./harness.js"

const start = agentsPerTest()

const tokenIn = (text: string) => {
  const token = text.match(/\bncj1\.\S+/)?.[0]
  if (token === undefined) throw new Error(`no join token in: ${text}`)
  return token
}

describe("forming a cluster with the CLI", () => {
  it("a seed and a node that joined it talk over mutual TLS; each records the other by its certificate's id", async () => {
    const [bindA, joinA] = await Promise.all([freePort(), freePort()])
    const dirA = tempDataDir()
    const dirB = tempDataDir()
    const seed = ["--data-dir", dirA, "--node-id", "node-a", "--set", `network.bind_port=${bindA}`]
    const seedCluster = ["--set", `cluster.join_port=${joinA}`]

    const init = cli(["cluster", "init", ...seed, ...seedCluster])
    expect(init.stderr).toBe("")
    expect(init.code).toBe(0)
    expect(init.stdout).toMatch(/cluster CA: sha256:[0-9a-f]{64}/)
    const token = tokenIn(init.stdout)

    // Before the seed runs, nothing serves joins: the join fails with a message naming the address.
    const early = cli(["cluster", "join", token, "--data-dir", dirB, "--node-id", "node-b"])
    expect(early.code).not.toBe(0)
    expect(early.stderr).toContain(`127.0.0.1:${joinA}`)
    expect(existsSync(join(dirB, "tls", "node.crt"))).toBe(false)

    const a = start([
      "start",
      ...seed,
      ...seedCluster,
      "--set",
      "system.health_check_port=0",
      "--set",
      "monitoring.metrics_port=0",
      "--set",
      "dwcp.listen_port=0",
    ])
    const base = String((await a.waitFor((l) => l.name === "node.health")).url)
    await a.waitFor((l) => /^serving cluster joins on 127\.0\.0\.1:/.test(String(l.message)))
    await a.waitFor((l) => l.name === "node.ready")

    const joined = cli(["cluster", "join", token, "--data-dir", dirB, "--node-id", "node-b"])
    expect(joined.stderr).toBe("")
    expect(joined.code).toBe(0)
    expect(joined.stdout).toContain("joined the cluster")
    expect(joined.stdout).toContain(`network.peers=127.0.0.1:${bindA}`)
    expect(existsSync(join(dirB, "tls", "ca.key"))).toBe(false)

    // The token was for one node: a second join with it is refused by the seed.
    const again = cli(["cluster", "join", token, "--data-dir", tempDataDir(), "--node-id", "node-c"])
    expect(again.code).not.toBe(0)
    expect(again.stderr).toMatch(/used|refused/i)

    const b = start([
      "start",
      "--data-dir",
      dirB,
      "--node-id",
      "node-b",
      ...ephemeralPorts,
      "--set",
      `network.peers=127.0.0.1:${bindA}`,
    ])
    await b.waitFor((l) => l.name === "node.ready")
    await a.waitFor((l) => /^peer node-b connected \(inbound/.test(String(l.message)))
    const status = JSON.parse((await get(`${base}/status`)).text)
    expect(status.peers).toEqual([expect.objectContaining({ node_id: "node-b", identity: "certificate" })])

    b.kill("SIGTERM")
    expect((await b.exited).code).toBe(0)
    await a.waitFor((l) => /^peer node-b disconnected/.test(String(l.message)))
    a.kill("SIGTERM")
    expect((await a.exited).code).toBe(0)

    const db = new Database(join(dirA, "novacron.db"), { readonly: true })
    const rows = db.prepare("select id, state from nodes order by id").all()
    db.close()
    expect(rows).toEqual([
      { id: "node-a", state: "stopped" },
      { id: "node-b", state: "disconnected" },
    ])
  })

  it("a node that never joined cannot talk to the seed: its own CA is refused", async () => {
    const bindA = await freePort()
    const dirA = tempDataDir()
    const a = start([
      "start",
      "--data-dir",
      dirA,
      "--node-id",
      "node-a",
      "--set",
      `network.bind_port=${bindA}`,
      "--set",
      "system.health_check_port=0",
      "--set",
      "monitoring.metrics_port=0",
      "--set",
      "dwcp.listen_port=0",
    ])
    await a.waitFor((l) => l.name === "node.ready")
    const b = start([
      "start",
      "--data-dir",
      tempDataDir(),
      "--node-id",
      "node-b",
      ...ephemeralPorts,
      "--set",
      `network.peers=127.0.0.1:${bindA}`,
    ])
    await b.waitFor((l) => l.name === "node.ready")
    // Each side refuses the other's CA, in plain words, naming the other's address.
    const refused = await b.waitFor((l) =>
      /untrusted CA|not issued by a trusted CA|self-signed/.test(String(l.message)),
    )
    expect(String(refused.message)).toContain(`127.0.0.1:${bindA}`)
    expect(String(refused.message)).not.toMatch(/undefined:undefined|socket hang up|\.c:\d+/)
    expect(a.lines.some((l) => /^peer node-b connected/.test(String(l.message)))).toBe(false)
  })
})
