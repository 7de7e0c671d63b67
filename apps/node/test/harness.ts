import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach } from "vitest"

export const agentMain = resolve(dirname(fileURLToPath(import.meta.url)), "../dist/main.js")

export const requireBuild = () => {
  if (!existsSync(agentMain)) throw new Error(`${agentMain} is missing: build first (npm test builds before testing)`)
}

export const tempDataDir = () => mkdtempSync(join(tmpdir(), "novacron-node-"))

/** The agents a test file starts share a code cache of their own, not the user's. */
export const testEnv = { NOVACRON_COMPILE_CACHE: mkdtempSync(join(tmpdir(), "novacron-node-cache-")) }

/** Flags that put every port of the agent on an ephemeral one, so tests can run side by side. */
export const ephemeralPorts = [
  "--set",
  "system.health_check_port=0",
  "--set",
  "monitoring.metrics_port=0",
  "--set",
  "network.bind_port=0",
  "--set",
  "api.port=0",
  "--set",
  "api.grpc_port=0",
  "--set",
  "dwcp.listen_port=0",
  "--set",
  "migration.port=0",
]

export interface LogLine {
  readonly message?: string
  readonly name?: string
  readonly component?: string
  readonly level?: string
  readonly [key: string]: unknown
}

/** A running agent process with its parsed JSON log lines. */
export class Agent {
  readonly lines: Array<LogLine> = []
  readonly stderr: Array<string> = []
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  private waiters: Array<() => void> = []

  constructor(readonly child: ChildProcess) {
    let buffer = ""
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffer += chunk
      let nl = buffer.indexOf("\n")
      while (nl >= 0) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        try {
          this.lines.push(JSON.parse(line))
        } catch {
          this.lines.push({ message: line, name: "raw" })
        }
        nl = buffer.indexOf("\n")
      }
      for (const w of this.waiters.splice(0)) w()
    })
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr.push(chunk)
      for (const w of this.waiters.splice(0)) w()
    })
    this.exited = new Promise((res) => child.on("exit", (code, signal) => res({ code, signal })))
    this.exited.then(() => {
      for (const w of this.waiters.splice(0)) w()
    })
  }

  static start(args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}) {
    requireBuild()
    const child = spawn(process.execPath, [agentMain, ...args], {
      env: { ...process.env, ...testEnv, ...env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    })
    return new Agent(child)
  }

  /** Resolves with the first log line matching, or rejects when the process exits first or time runs out. */
  async waitFor(predicate: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs
    let exited = false
    this.exited.then(() => {
      exited = true
    })
    for (;;) {
      const found = this.lines.find(predicate)
      if (found) return found
      if (exited) throw new Error(`agent exited before the expected log line; stderr: ${this.stderr.join("")}`)
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for a log line; last lines: ${JSON.stringify(this.lines.slice(-5))}`)
      await new Promise<void>((res) => {
        const t = setTimeout(res, 100)
        this.waiters.push(() => {
          clearTimeout(t)
          res()
        })
      })
    }
  }

  kill(signal: NodeJS.Signals = "SIGTERM") {
    this.child.kill(signal)
  }
}

export const get = async (url: string) => {
  const res = await fetch(url)
  return { status: res.status, text: await res.text(), type: res.headers.get("content-type") }
}

/**
 * A `start` for one test file: agents it starts and a test leaves running are killed after each
 * test, so a failing test does not leave processes behind.
 */
export const agentsPerTest = () => {
  const running: Array<Agent> = []
  afterEach(async () => {
    for (const a of running.splice(0)) {
      if (a.child.exitCode === null && a.child.signalCode === null) {
        a.kill("SIGKILL")
        await a.exited
      }
    }
  })
  return (args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv) => {
    const a = Agent.start(args, env)
    running.push(a)
    return a
  }
}

/**
 * Runs one agent command to its end (`validate`, `cluster join`, …). Bounded: a command that hangs
 * (the old agent spun forever creating a directory under /proc) fails the test instead of the run.
 */
export const cli = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}) => {
  requireBuild()
  const r = spawnSync(process.execPath, [agentMain, ...args], {
    encoding: "utf8",
    env: { ...process.env, ...testEnv, ...env },
    timeout: 30_000,
  })
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}

/** A port free on loopback right now (for a service a test starts itself). */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
