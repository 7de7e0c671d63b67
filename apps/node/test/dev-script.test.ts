// `npm start` (tooling/scripts/novacron-dev.mjs) under signals: the wrapper stays in front of the
// agent, forwards the signal once, waits for it and exits with its code. NOVACRON_SKIP_SETUP=1
// runs what is built (the tests run after the build), so no install or build happens here.
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { Process } from "@novacron/init"
import { afterEach, describe, expect, it } from "vitest"
import { ephemeralPorts, requireBuild, tempDataDir, testEnv } from "./harness.js"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..")
const env = { ...process.env, ...testEnv, NOVACRON_SKIP_SETUP: "1", NO_COLOR: "1" }
const children: Array<ChildProcess> = []
const agents: Array<number> = []
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
  // An agent a failing wrapper left behind.
  for (const pid of agents.splice(0)) if (Process.alive(pid)) process.kill(pid, "SIGKILL")
})

const collect = (child: ChildProcess) => {
  const out = { text: "" }
  child.stdout?.setEncoding("utf8").on("data", (c: string) => {
    out.text += c
  })
  child.stderr?.setEncoding("utf8").on("data", (c: string) => {
    out.text += c
  })
  return out
}
const until = async (what: string, ok: () => boolean, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.exitCode !== null || child.signalCode !== null
      ? res({ code: child.exitCode, signal: child.signalCode })
      : child.once("exit", (code, signal) => res({ code, signal })),
  )
const agentPid = (dir: string) => {
  const pid = Number(readFileSync(join(dir, "novacron.lock"), "utf8").split("\n")[0])
  agents.push(pid)
  return pid
}

describe("npm start under signals", () => {
  it("Ctrl-C on a terminal: the agent stops cleanly, then the wrapper reports its exit code and exits", async () => {
    requireBuild()
    const dir = tempDataDir()
    const command = ["npm", "start", "--silent", "--", "--data-dir", dir, ...ephemeralPorts].join(" ")
    // `script` gives npm a pseudo-terminal; a 0x03 byte on it is the Ctrl-C a person types.
    const child = spawn("script", ["-qfec", command, "/dev/null"], { cwd: root, env, stdio: ["pipe", "pipe", "pipe"] })
    children.push(child)
    const out = collect(child)
    await until("READY", () => /READY in [0-9.]+ ms/.test(out.text))
    const pid = agentPid(dir)
    child.stdin!.write("\x03")
    const { code } = await exited(child)
    const text = out.text.replace(/\r/g, "")
    expect(text).toContain("SIGINT: shutting down")
    // One Ctrl-C reached the agent once (not "again: forcing exit"), and it stopped everything.
    expect(text).not.toContain("forcing exit")
    const stopped = text.indexOf("config stopped")
    const reported = text.indexOf("[novacron] agent exited with code 0")
    expect(stopped).toBeGreaterThan(0)
    expect(reported).toBeGreaterThan(stopped)
    expect(Process.alive(pid)).toBe(false)
    // npm runs the script under `sh -c`: a shell that execs the command (bash) lets npm report the
    // wrapper's 0; dash stays, re-raises the SIGINT it saw once the wrapper is done, and npm then
    // ends with 130 (a root script starting with `exec` avoids that). Either way, only after the agent.
    expect([0, 130]).toContain(code)
  })

  it("SIGTERM to npm: the agent stops too", async () => {
    requireBuild()
    const dir = tempDataDir()
    const child = spawn("npm", ["start", "--silent", "--", "--data-dir", dir, ...ephemeralPorts], {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    })
    children.push(child)
    const out = collect(child)
    await until("READY", () => out.text.includes('"name":"node.ready"'))
    const pid = agentPid(dir)
    const health = String(/"name":"node\.health","url":"([^"]+)"/.exec(out.text)?.[1])
    expect((await fetch(`${health}/readyz`)).status).toBe(200)
    child.kill("SIGTERM")
    await exited(child)
    await until("the agent to exit", () => !Process.alive(pid))
    await expect(fetch(`${health}/healthz`)).rejects.toThrow()
  })

  it("SIGTERM to the wrapper: it forwards it, waits for the agent and exits with the agent's code", async () => {
    requireBuild()
    const dir = tempDataDir()
    const child = spawn(
      process.execPath,
      [join(root, "tooling/scripts/novacron-dev.mjs"), "start", "--data-dir", dir, ...ephemeralPorts],
      { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] },
    )
    children.push(child)
    const out = collect(child)
    await until("READY", () => out.text.includes('"name":"node.ready"'))
    const pid = agentPid(dir)
    child.kill("SIGTERM")
    const { code, signal } = await exited(child)
    expect({ code, signal }).toEqual({ code: 0, signal: null })
    expect(Process.alive(pid)).toBe(false)
    expect(out.text).toContain('"name":"node.stopped"')
  })
})
