// DWCP state-transfer benchmark (issue 21): one 256 MiB guest-memory-like file between two agents over
// (a) a veth pair and (b) the emulated WAN link (200 Mbit/s, 50 ms RTT, 0.5 % loss), through DWCP v3 and
// DWCP v1, beside the `zstd -3 | iperf3` baseline in the same run. Each figure is the median of --runs,
// printed with its ratio to the baseline. Needs root, ip netns, /dev/net/tun, zstd, iperf3.
// Run only on a quiet machine (load < 3): `pnpm --filter @novacron/dwcp bench [-- --size 256 --runs 3]`.
import { execFileSync, spawn } from "node:child_process"
import { randomFillSync } from "node:crypto"
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
// @ts-expect-error plain ESM helper without type declarations
import { canEmulate, link, vethPair } from "../../../tooling/wan-emulator/lib.mjs"

const arg = (name: string, d: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : d
}
const sizeMiB = arg("size", 256)
// `--random crypto`: the random pages from crypto.randomBytes (incompressible, as real memory's
// encrypted or compressed pages are); default `lcg`, whose low bytes repeat and so compress.
const randomPages = process.argv.includes("crypto") ? "crypto" : "lcg"
const runs = arg("runs", 3)
const agent = fileURLToPath(new URL("./agent.ts", import.meta.url))
const node = [process.execPath, "--import", "tsx", "--conditions=@novacron/source", agent]
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** Guest memory: 35 % zero pages, 25 % repeats of earlier pages, 20 % text-like, 20 % random. */
const guestMemory = (path: string, bytes: number) => {
  const page = 4096
  const buf = Buffer.alloc(bytes)
  let seed = 21
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) >>> 0
    return seed / 2 ** 32
  }
  const words = Buffer.from("kernel page cache inode dentry slab task_struct vm_area mm_struct ")
  for (let p = 0; p < bytes / page; p++) {
    const at = p * page
    const r = rnd()
    if (r < 0.35) continue
    if (r < 0.6 && p > 0) buf.copy(buf, at, Math.floor(rnd() * p) * page, Math.floor(rnd() * p) * page + page)
    else if (r < 0.8) for (let i = 0; i < page; i++) buf[at + i] = words[(i + p) % words.length]!
    else if (randomPages === "crypto") randomFillSync(buf, at, page)
    else for (let i = 0; i < page; i += 4) buf.writeUInt32LE((rnd() * 2 ** 32) >>> 0, at + i)
  }
  writeFileSync(path, buf)
}

interface Pair {
  readonly a: string
  readonly b: string
  readonly addrB: string
  readonly teardown: () => void
}

const receiver = (ns: string, port: number, dir: string) =>
  new Promise<ReturnType<typeof spawn>>((resolve, reject) => {
    const child = spawn("ip", ["netns", "exec", ns, ...node, "receive", String(port), dir], {
      stdio: ["ignore", "pipe", "inherit"],
    })
    child.stdout.once("data", (d) => (String(d).startsWith("ready") ? resolve(child) : reject(new Error(String(d)))))
    child.once("exit", (c) => reject(new Error(`receiver exited ${c}`)))
  })

const dwcp = (l: Pair, version: "v3" | "v1", file: string, name: string, mode: string) => {
  const out = execFileSync(
    "ip",
    ["netns", "exec", l.a, ...node, "send", version, `${l.addrB}:7801`, file, name, mode],
    {
      encoding: "utf8",
      maxBuffer: 1 << 20,
    },
  )
  return JSON.parse(out.trim().split("\n").at(-1)!) as { ms: number; wireBytes: number; encoding: string }
}

/** `zstd -3` and iperf3 sending the compressed bytes; a pipe can do no better than the slower of the two. */
const baseline = (l: Pair, file: string, dir: string) => {
  const z = join(dir, "baseline.zst")
  const t0 = performance.now()
  execFileSync("zstd", ["-3", "-q", "-f", "-T0", file, "-o", z])
  const zstdMs = performance.now() - t0
  const server = spawn("ip", ["netns", "exec", l.b, "iperf3", "-s", "-1", "-p", "7802"], { stdio: "ignore" })
  execFileSync("sleep", ["0.5"])
  // Wall time of the client, connect to close, as DWCP's figure is: the JSON's sender seconds stop
  // when the last byte enters the socket buffer, before the far end has it.
  const t1 = performance.now()
  execFileSync("ip", ["netns", "exec", l.a, "iperf3", "-c", l.addrB, "-p", "7802", "-F", z, "-C", "bbr"], {
    stdio: "ignore",
  })
  const sendMs = performance.now() - t1
  server.kill()
  return { ms: Math.max(zstdMs, sendMs), zstdMs, sendMs, wireBytes: statSync(z).size }
}

const main = async () => {
  const can = canEmulate()
  if (!can.ok) throw new Error(`cannot emulate links here: ${can.why}`)
  const dir = mkdtempSync(join(tmpdir(), "dwcp-bench-"))
  const file = join(dir, "guest.mem")
  guestMemory(file, sizeMiB * 1024 * 1024)
  const rows: Array<string> = []
  const cases: ReadonlyArray<[string, () => Pair, string]> = [
    ["veth", () => vethPair("dwbv"), "datacenter"],
    [
      "wan 200 Mbit/s 50 ms 0.5 %",
      () => link({ name: "dwbw", idx: 81, rate: "200mbit", delay: "25ms", loss: 0.005, seed: 11 }),
      "internet",
    ],
  ]
  try {
    for (const [label, make, mode] of cases) {
      const l = make()
      const rx = await receiver(l.b, 7801, join(dir, `rx-${l.b}`))
      try {
        const t: Record<string, Array<number>> = { v3: [], v1: [], base: [] }
        for (let i = 0; i < runs; i++) {
          t.base!.push(baseline(l, file, dir).ms)
          t.v3!.push(dwcp(l, "v3", file, `v3-${i}.mem`, mode).ms)
          t.v1!.push(dwcp(l, "v1", file, `v1-${i}.mem`, mode).ms)
        }
        const b = median(t.base!)
        for (const k of ["v3", "v1", "base"] as const) {
          const ms = median(t[k]!)
          rows.push(
            `| ${label} | ${k === "base" ? "zstd -3 → iperf3 (bbr), slower of the two" : `DWCP ${k}`} | ${(ms / 1000).toFixed(2)} s | ${(ms / b).toFixed(2)} |`,
          )
        }
      } finally {
        rx.kill()
        l.teardown()
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  console.log(
    `\n${sizeMiB} MiB guest-memory-like file (random pages: ${randomPages}), median of ${runs}; ratio = time / baseline time (lower is better)\n`,
  )
  console.log("| link | path | time | ratio to baseline |\n|---|---|---|---|")
  for (const r of rows) console.log(r)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
