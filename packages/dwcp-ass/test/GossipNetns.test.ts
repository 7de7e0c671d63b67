// Gossip agents as real processes in two network namespaces joined by the repo's WAN emulator
// (10 ms one way, 10 % loss each direction): three in site a, two in site b. A partition is the
// link at 100 % loss; a killed agent is SIGKILLed and restarted from nothing.
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { requireService } from "@novacron/testing"
import { Effect } from "effect"
// @ts-expect-error plain ESM helper without type declarations
import { canEmulate, link } from "../../../tooling/wan-emulator/lib.mjs"
import { makeCa } from "./support/certs.js"

const fixture = fileURLToPath(new URL("./fixtures/gossipAgent.ts", import.meta.url))

const emulatorAvailable = await requireService(
  "WAN emulator",
  () => {
    const can = canEmulate() as { ok: boolean; why: string }
    if (!can.ok) throw new Error(can.why)
    execFileSync("cc", ["--version"], { stdio: "ignore" })
    return true
  },
  "the gossip namespace test needs root, iproute2 and gcc",
)

interface Status {
  readonly name: string
  readonly alive: ReadonlyArray<string>
  readonly state: Readonly<Record<string, string>>
  readonly refused: number
}

interface Agent {
  readonly name: string
  proc: ChildProcess
  last: Status | undefined
}

let root: string
let l: { a: string; b: string; addrA: string; addrB: string; set: (o: object) => void; teardown: () => void }
const agents = new Map<string, Agent>()
const names = ["n1", "n2", "n3", "n4", "n5"]
const site = (n: string) => (names.indexOf(n) < 3 ? "a" : "b")
const addrOf = (n: string) => `${site(n) === "a" ? l.addrA : l.addrB}:${7000 + names.indexOf(n)}`

const startAgent = (n: string) => {
  const proc = spawn(
    "ip",
    [
      "netns",
      "exec",
      site(n) === "a" ? l.a : l.b,
      process.execPath,
      "--import",
      "tsx",
      "--conditions=@novacron/source",
      fixture,
      "--name",
      n,
      "--bind",
      addrOf(n),
      "--seeds",
      n === "n1" ? addrOf("n4") : addrOf("n1"),
      "--dir",
      path.join(root, "tls"),
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  )
  const agent: Agent = { name: n, proc, last: undefined }
  readline.createInterface({ input: proc.stdout! }).on("line", (line) => {
    try {
      agent.last = JSON.parse(line) as Status
    } catch {}
  })
  agents.set(n, agent)
  return agent
}

const send = (n: string, cmd: object) => agents.get(n)!.proc.stdin!.write(`${JSON.stringify(cmd)}\n`)

const waitFor = (what: string, check: () => boolean, ms: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (!check()) {
      if (Date.now() > deadline) {
        const views = [...agents.values()].map((a) => JSON.stringify(a.last)).join("\n")
        return yield* Effect.die(new Error(`not within ${ms} ms: ${what}\n${views}`))
      }
      yield* Effect.sleep("100 millis")
    }
    return true
  })

const sameView = (members: ReadonlyArray<string>, state: Record<string, string>) => () =>
  members.every((n) => {
    const s = agents.get(n)?.last
    return (
      s !== undefined &&
      JSON.stringify(s.alive) === JSON.stringify([...members].sort()) &&
      JSON.stringify(s.state) === JSON.stringify(Object.fromEntries(Object.entries(state).sort()))
    )
  })

describe.skipIf(!emulatorAvailable)("gossip agents in namespaces over the WAN emulator", () => {
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-gossip-ns-"))
    const ca = makeCa(path.join(root, "ca"), "cluster-ca")
    const tls = path.join(root, "tls")
    for (const n of names) ca.issue(tls, n)
    fs.copyFileSync(ca.cert, path.join(tls, "ca.crt"))
    l = link({ name: "gosp", idx: 79, delay: "10ms", loss: 0.1, rate: "100mbit" })
  }, 60_000)

  afterAll(() => {
    for (const a of agents.values()) a.proc.kill("SIGKILL")
    l?.teardown()
    if (root) fs.rmSync(root, { recursive: true, force: true })
  })

  it.live(
    "five agents, two sites, 10 % loss: converge; a partition heals; a killed agent restarts and loses nothing",
    () =>
      Effect.gen(function* () {
        for (const n of names) startAgent(n)
        const state: Record<string, string> = {}
        // Generous: five tsx processes start slowly on a loaded 2-core machine; waiting costs nothing when fast.
        yield* waitFor("all five members everywhere", sameView(names, {}), 120_000)
        for (const n of names) {
          send(n, { put: [`cap/${n}`, "v1"] })
          send(n, { put: [`svc/${n}/api`, `http://${n}`] })
          state[`cap/${n}`] = "v1"
          state[`svc/${n}/api`] = `http://${n}`
        }
        yield* waitFor("every write everywhere", sameView(names, state), 60_000)

        // Partition the sites: each side declares the other dead and keeps writing.
        l.set({ loss: 1 })
        yield* waitFor(
          "each side sees only itself",
          () =>
            ["n1", "n2", "n3"].every((n) => agents.get(n)!.last?.alive.join() === "n1,n2,n3") &&
            ["n4", "n5"].every((n) => agents.get(n)!.last?.alive.join() === "n4,n5"),
          60_000,
        )
        for (const n of names) {
          send(n, { put: [`cap/${n}`, "v2"] })
          state[`cap/${n}`] = "v2"
        }
        yield* Effect.sleep("2 seconds")
        expect(agents.get("n1")!.last!.state["cap/n4"]).toBe("v1")
        l.set({ loss: 0.1 })
        yield* waitFor("healed: all members, every write", sameView(names, state), 90_000)

        // SIGKILL n5, restart it from nothing; it writes at once, before catching up.
        agents.get("n5")!.proc.kill("SIGKILL")
        yield* waitFor(
          "n5 dead everywhere",
          () => ["n1", "n2", "n3", "n4"].every((n) => !agents.get(n)!.last!.alive.includes("n5")),
          60_000,
        )
        startAgent("n5")
        send("n5", { put: ["cap/n5", "v3"] })
        state["cap/n5"] = "v3"
        yield* waitFor("n5 back: its old keys restored, its new write wins", sameView(names, state), 120_000)
        expect([...agents.values()].every((a) => a.last!.refused === 0)).toBe(true)
      }),
    600_000,
  )
})
