import { join } from "node:path"
import Database from "better-sqlite3"
import { DgramSocket } from "node-unix-socket"
import { describe, expect, it } from "vitest"
import { agentsPerTest, ephemeralPorts, get, tempDataDir } from "./harness.js"

const start = agentsPerTest()

/** systemd's side of NOTIFY_SOCKET: a bound unix datagram socket recording every datagram. */
const notifySocket = (dir: string) => {
  const path = join(dir, "notify.sock")
  const received: Array<string> = []
  let waiters: Array<() => void> = []
  const socket = new DgramSocket()
  socket.bind(path)
  socket.on("data", (data: Buffer) => {
    received.push(Buffer.from(data).toString("utf8"))
    for (const w of waiters.splice(0)) w()
  })
  const waitFor = async (match: (d: string) => boolean) => {
    for (;;) {
      const found = received.find(match)
      if (found !== undefined) return found
      await new Promise<void>((res) => waiters.push(res))
    }
  }
  return {
    path,
    received,
    waitFor,
    close: () => {
      waiters = []
      socket.close()
    },
  }
}

/** The registrations in the node's cluster state (local mode: the node database's `kv`). */
const registrations = (dir: string): Array<string> => {
  const db = new Database(join(dir, "novacron.db"), { readonly: true, fileMustExist: true })
  try {
    return (
      db.prepare("SELECT key FROM kv WHERE key LIKE 'ass/k/services/%' ORDER BY key").all() as Array<{ key: string }>
    ).map((r) => r.key.slice("ass/k/".length))
  } finally {
    db.close()
  }
}

describe("post-init: systemd notification, registration, background jobs", () => {
  it("READY=1 after the node registered itself; WATCHDOG=1 while it runs; STOPPING=1 on SIGTERM, and the registration is gone", async () => {
    const dir = tempDataDir()
    const notify = notifySocket(dir)
    try {
      // DWCP's prediction on v3: it predicts with the ML engine's model, served after READY.
      const v3Prediction = ["--set", "dwcp.enable_v3_prediction=true", "--set", "dwcp.v3_rollout_percentage=100"]
      const agent = start(
        ["start", "--data-dir", dir, "--set", "system.node_id=post-init-a", ...v3Prediction, ...ephemeralPorts],
        {
          NOTIFY_SOCKET: notify.path,
          WATCHDOG_USEC: "500000",
        },
      )
      const ready = await notify.waitFor((d) => d.startsWith("READY=1"))
      // READY=1 comes after the node.ready line, never before it.
      const readyLine = agent.lines.find((l) => l.name === "node.ready")
      expect(readyLine).toBeDefined()
      expect(ready).toMatch(/^READY=1\nSTATUS=ready/)
      expect(readyLine!.degraded).toEqual(expect.any(Array))
      // The API's endpoint too when the node serves one.
      expect(registrations(dir)).toEqual(
        expect.arrayContaining([
          "services/post-init-a/health",
          "services/post-init-a/metrics",
          "services/post-init-a/peer",
          // Peers resolve this node's migration tunnel from here.
          "services/post-init-a/migration",
        ]),
      )
      await notify.waitFor((d) => d === "WATCHDOG=1")

      const health = String((await agent.waitFor((l) => l.name === "node.health")).url)
      const status = JSON.parse((await get(`${health}/status`)).text)
      expect(status.jobs.map((j: { name: string }) => j.name).sort()).toEqual([
        "capacity-report",
        "database-maintenance",
        "environment-redetection",
        "service-registration",
      ])
      const names = status.components.map((c: { name: string }) => c.name)
      expect(names).toEqual(
        expect.arrayContaining([
          "background-jobs",
          "service-registry",
          "database-maintenance",
          "ml-engine",
          "transfer-accuracy",
          "bandwidth-predictor",
        ]),
      )
      // The shipped bandwidth model loads in the background (onnxruntime is imported then), not before READY.
      // Both models load side by side: the optimiser (quick), the LSTM (onnxruntime).
      const loaded = await agent.waitFor(
        (l) => (l.name === "ml.loaded" || l.name === "ml.fallback") && l.model === "bandwidth",
        60_000,
      )
      expect(loaded.name).toBe("ml.loaded")
      expect(agent.lines.find((l) => l.model === "placement")).toMatchObject({ name: "ml.loaded" })
      const ml = JSON.parse((await get(`${health}/status`)).text).components.find(
        (c: { name: string }) => c.name === "ml-engine",
      )
      expect(ml).toMatchObject({ status: "running", health: "healthy" })
      // The bridge follows the model into DWCP (in its own fiber: shortly after the log line).
      const dwcpPredictor = async () =>
        JSON.parse((await get(`${health}/status`)).text).components.find((c: { name: string }) => c.name === "dwcp")
          ?.details?.predictor
      for (let i = 0; i < 50 && (await dwcpPredictor()) !== "ml-engine: lstm"; i++)
        await new Promise((r) => setTimeout(r, 100))
      expect(await dwcpPredictor()).toBe("ml-engine: lstm")

      expect(notify.received.some((d) => d.startsWith("STOPPING=1"))).toBe(false)
      agent.kill("SIGTERM")
      const exited = await agent.exited
      expect(exited.code).toBe(0)
      expect(notify.received.filter((d) => !d.startsWith("WATCHDOG")).map((d) => d.split("\n")[0])).toEqual([
        "READY=1",
        "STOPPING=1",
      ])
      expect(registrations(dir)).toEqual([])
    } finally {
      notify.close()
    }
  })

  it("a notify socket it cannot use is logged and the node still becomes READY", async () => {
    const dir = tempDataDir()
    const agent = start(["start", "--data-dir", dir, ...ephemeralPorts], {
      NOTIFY_SOCKET: "@novacron-abstract-test",
    })
    const warned = await agent.waitFor((l) => l.name === "node.systemd")
    expect(String(warned.message)).toMatch(/NOTIFY_SOCKET=.*abstract/)
    await agent.waitFor((l) => l.name === "node.ready")
    agent.kill("SIGTERM")
    expect((await agent.exited).code).toBe(0)
  })
})
