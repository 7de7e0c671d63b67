// ACP on the issue's WAN link (200 Mbit/s, 50 ms RTT, 0.5 % loss, user-space emulator): one Node TCP stream
// per policy, goodput beside the baseline measured in the same run (a fixed cubic stream, the Linux default
// and datacenter mode's fallback), and pacing accuracy. Needs root (network namespaces); prints why if not.
// run: pnpm --filter @novacron/dwcp-acp bench   (or: npx tsx bench/wan.ts [--seconds 8])
import { type ChildProcess, spawn } from "node:child_process"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
// @ts-expect-error plain ESM helper without type declarations
import { canEmulate, link } from "../../../tooling/wan-emulator/lib.mjs"

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..")
const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(k)
  return i > 0 ? (process.argv[i + 1] as string) : d
}
const seconds = Number(arg("--seconds", "8"))
const linkBps = 200e6

interface Link {
  readonly a: string
  readonly b: string
  readonly addrB: string
  readonly teardown: () => void
}

const inNs = (ns: string, args: ReadonlyArray<string>): ChildProcess =>
  spawn("ip", ["netns", "exec", ns, process.execPath, "--import", "tsx", "bench/peer.ts", ...args], {
    cwd: pkg,
    stdio: ["ignore", "pipe", "inherit"],
  })

const lines = (p: ChildProcess): Promise<Array<string>> =>
  new Promise((resolve, reject) => {
    let out = ""
    p.stdout?.on("data", (d: Buffer) => {
      out += d.toString()
    })
    p.once("error", reject)
    p.once("exit", (code) => (code === 0 ? resolve(out.trim().split("\n")) : reject(new Error(`peer exited ${code}`))))
  })

const waitFor = (p: ChildProcess, text: string): Promise<void> =>
  new Promise((resolve) => {
    const on = (d: Buffer) => {
      if (d.toString().includes(text)) {
        p.stdout?.off("data", on)
        resolve()
      }
    }
    p.stdout?.on("data", on)
  })

/** One transfer: receiver in b, sender in a; returns receiver goodput (bit/s) and the sender's report. */
export const transfer = async (l: Link, policy: string, secs: number, extra: ReadonlyArray<string> = []) => {
  const port = String(5300 + Math.floor(Math.random() * 600))
  const receiver = inNs(l.b, ["receive", port])
  const received = lines(receiver)
  await waitFor(receiver, "listening")
  const sender = inNs(l.a, ["send", l.addrB, port, String(secs), policy, ...extra])
  const [sent, got] = await Promise.all([lines(sender), received])
  const r = JSON.parse(got.at(-1) as string) as { bps: number }
  return { bps: r.bps, sender: JSON.parse(sent.at(-1) as string) as { obtained: string; selections: Array<unknown> } }
}

const main = async () => {
  const can = canEmulate() as { ok: boolean; why: string }
  if (!can.ok) {
    console.log(`dwcp-acp bench: skipped, the WAN emulator cannot run here (${can.why})`)
    return
  }
  const l = link({ name: "bacp", rate: "200mbit", delay: "25ms", loss: 0.005, seed: 5 }) as Link
  try {
    const base = await transfer(l, "cubic", seconds)
    const row = (name: string, bps: number, obtained: string) =>
      console.log(
        `${name.padEnd(40)} ${(bps / 1e6).toFixed(1).padStart(7)} Mbit/s  ${((bps / linkBps) * 100).toFixed(1).padStart(5)} % of link  ×${(bps / base.bps).toFixed(2)} vs cubic  (${obtained})`,
      )
    console.log(`WAN 200 Mbit/s, 50 ms RTT, 0.5 % loss; one Node TCP stream, ${seconds} s after 2 s warm-up`)
    row("baseline: cubic (fixed)", base.bps, base.sender.obtained)
    for (const policy of ["datacenter", "datacenter+adapt", "internet"]) {
      const r = await transfer(l, policy, seconds)
      row(`ACP ${policy}`, r.bps, r.sender.obtained)
    }
    for (const target of [20e6, 100e6]) {
      const r = await transfer(l, "internet", seconds, ["--pace-bps", String(target)])
      console.log(
        `${`ACP internet + Pacer ${target / 1e6} Mbit/s`.padEnd(40)} ${(r.bps / 1e6).toFixed(1).padStart(7)} Mbit/s  achieved/target ${(r.bps / target).toFixed(3)}`,
      )
    }
  } finally {
    l.teardown()
  }
}

await main()
