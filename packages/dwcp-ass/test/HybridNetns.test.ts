// Hybrid mode as deployed: two sites in two network namespaces joined by the repo's WAN emulator
// (10 ms one way, 10 % loss each direction), each site with its own etcd (one member, in the
// site's namespace) and five agents as processes: a1, a2 and a3 in site a, b1 and b2 in site b. A
// partition is the link at 100 % loss; during it site a's coordinator is SIGKILLed and a2 or a3
// takes over.
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
import { ETCD, haveEtcd } from "./fixtures/etcdCluster.js"
import { makeCa } from "./support/certs.js"

const fixture = fileURLToPath(new URL("./fixtures/hybridAgent.ts", import.meta.url))

const emulatorAvailable = await requireService(
  "WAN emulator",
  () => {
    const can = canEmulate() as { ok: boolean; why: string }
    if (!can.ok) throw new Error(can.why)
    execFileSync("cc", ["--version"], { stdio: "ignore" })
    return true
  },
  "the hybrid namespace test needs root, iproute2 and gcc",
)

interface View {
  readonly addr: string
  readonly coordinator: boolean
  readonly state: Readonly<Record<string, string>>
}

let root: string
let l: { a: string; b: string; addrA: string; addrB: string; set: (o: object) => void; teardown: () => void }
const procs = new Map<string, ChildProcess>()
const views = new Map<string, View>()

const ns = (site: "a" | "b") => (site === "a" ? l.a : l.b)
const addr = (site: "a" | "b") => (site === "a" ? l.addrA : l.addrB)
const etcdUrl = (site: "a" | "b") => `http://${addr(site)}:23790`

const startEtcd = (site: "a" | "b") => {
  const peer = `http://${addr(site)}:23800`
  const p = spawn(
    "ip",
    [
      ...["netns", "exec", ns(site), ETCD],
      `--name=site-${site}`,
      `--data-dir=${path.join(root, `etcd-${site}`)}`,
      `--listen-client-urls=${etcdUrl(site)}`,
      `--advertise-client-urls=${etcdUrl(site)}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=site-${site}=${peer}`,
      "--logger=zap",
      "--log-outputs=stderr",
      "--log-level=error",
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  )
  procs.set(`etcd-${site}`, p)
}

// Agents of one site share its namespace's address: one port each.
const port = (name: string) => 7945 + Number(name.slice(1))

const startAgent = (name: string, site: "a" | "b", seeds: string) => {
  const p = spawn(
    "ip",
    [
      ...["netns", "exec", ns(site), process.execPath, "--import", "tsx", "--conditions=@novacron/source", fixture],
      ...["--name", name, "--site", site, "--namespace", "", "--etcd", etcdUrl(site)],
      ...["--bind", `${addr(site)}:${port(name)}`, "--seeds", seeds, "--dir", path.join(root, "tls")],
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  )
  readline.createInterface({ input: p.stdout! }).on("line", (line) => {
    if (line.startsWith("{")) views.set(name, JSON.parse(line) as View)
  })
  procs.set(name, p)
}

const send = (name: string, cmd: object) => procs.get(name)!.stdin!.write(`${JSON.stringify(cmd)}\n`)

const waitFor = (what: string, check: () => boolean, ms: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + ms
    while (!check()) {
      if (Date.now() > deadline) {
        const all = [...views].map(([n, v]) => `${n}: ${JSON.stringify(v)}`).join("\n")
        return yield* Effect.die(new Error(`not within ${ms} ms: ${what}\n${all}`))
      }
      yield* Effect.sleep("100 millis")
    }
    return true
  })

const sees = (names: ReadonlyArray<string>, state: Record<string, string>) => () =>
  names.every(
    (n) =>
      JSON.stringify(Object.entries(views.get(n)?.state ?? {}).sort()) === JSON.stringify(Object.entries(state).sort()),
  )

describe.skipIf(!emulatorAvailable || !haveEtcd)("hybrid mode in namespaces over the WAN emulator", () => {
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-hybrid-ns-"))
    const ca = makeCa(path.join(root, "ca"), "cluster-ca")
    const tls = path.join(root, "tls")
    for (const n of ["a1", "a2", "a3", "b1", "b2"]) ca.issue(tls, n)
    fs.copyFileSync(ca.cert, path.join(tls, "ca.crt"))
    l = link({ name: "hybr", idx: 83, delay: "10ms", loss: 0.1, rate: "100mbit" })
  }, 60_000)

  afterAll(() => {
    for (const p of procs.values()) p.kill("SIGKILL")
    l?.teardown()
    if (root) fs.rmSync(root, { recursive: true, force: true })
  })

  it.live(
    "two sites, an etcd each, five agents, 10 % loss: a site's keys reach the other; a partition during which the coordinator is SIGKILLed heals to the new coordinator's state",
    () =>
      Effect.gen(function* () {
        startEtcd("a")
        startEtcd("b")
        startAgent("a1", "a", "")
        // Generous: tsx processes and etcd start slowly on a loaded 2-core machine.
        yield* waitFor("a1 coordinates site a", () => views.get("a1")?.coordinator === true, 120_000)
        startAgent("a2", "a", `${l.addrA}:7946`)
        startAgent("a3", "a", `${l.addrA}:7946`)
        startAgent("b1", "b", `${l.addrA}:7946`)
        startAgent("b2", "b", `${l.addrA}:7946`)
        yield* waitFor(
          "one coordinator in site b",
          () => ["b1", "b2"].filter((n) => views.get(n)?.coordinator === true).length === 1,
          120_000,
        )
        send("a2", { put: ["site/a/capacity", "1"] })
        send("b2", { put: ["site/b/capacity", "1"] })
        const one = { "site/a/capacity": "1", "site/b/capacity": "1" }
        yield* waitFor("both sites' keys everywhere", sees(["a1", "a2", "a3", "b1", "b2"], one), 60_000)

        l.set({ loss: 1 })
        procs.get("a1")!.kill("SIGKILL")
        const next = () => ["a2", "a3"].filter((n) => views.get(n)?.coordinator === true)
        yield* waitFor("a2 or a3 coordinates site a", () => next().length === 1, 30_000)
        send("a3", { put: ["site/a/capacity", "2"] })
        send("b1", { put: ["site/b/capacity", "2"] })
        yield* waitFor(
          "each side its own new write",
          () => views.get(next()[0]!)?.state["site/a/capacity"] === "2",
          30_000,
        )
        yield* Effect.sleep("2 seconds")
        for (const n of ["b1", "b2"]) expect(views.get(n)?.state["site/a/capacity"], n).toBe("1")

        l.set({ loss: 0.1 })
        const two = { "site/a/capacity": "2", "site/b/capacity": "2" }
        yield* waitFor("healed: both sites' new writes everywhere", sees(["a2", "a3", "b1", "b2"], two), 90_000)
      }),
    400_000,
  )
})
