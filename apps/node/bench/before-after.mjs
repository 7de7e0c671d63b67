#!/usr/bin/env node
// Start to READY of one built agent against another in the same run (e.g. a build of the previous
// commit extracted beside the app so it resolves the same node_modules): MAIN=path/to/main.js.
// Prints wall time to READY (warm code cache, fresh data directory each run), the CPU time
// (user+sys, from /proc) the agent spent to get there, and `node -e ""` as the baseline.
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"

const cpu = []

import { tmpdir } from "node:os"
import { join } from "node:path"

const main = process.env.MAIN ?? "/work/main/apps/node/dist/main.js"
const runs = Number(process.env.RUNS ?? 5)
const cache = mkdtempSync(join(tmpdir(), "nc-cache-"))
const once = (linger = 0) =>
  new Promise((res, rej) => {
    const dir = mkdtempSync(join(tmpdir(), "nc-host-"))
    const t0 = process.hrtime.bigint()
    const child = spawn(
      process.execPath,
      [
        main,
        "start",
        "--data-dir",
        dir,
        "--set",
        "system.health_check_port=0",
        "--set",
        "monitoring.metrics_port=0",
        "--set",
        "network.bind_port=0",
      ],
      { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, NO_COLOR: "1", NOVACRON_COMPILE_CACHE: cache } },
    )
    let buf = "",
      at
    child.stdout.setEncoding("utf8").on("data", (c) => {
      buf += c
      if (at === undefined && buf.includes('"node.ready"')) {
        at = Number(process.hrtime.bigint() - t0) / 1e6
        try {
          const f = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1].split(" ")
          cpu.push((Number(f[11]) + Number(f[12])) * 10)
        } catch {}
        setTimeout(() => child.kill("SIGTERM"), linger)
      }
    })
    child.on("exit", (code) => {
      rmSync(dir, { recursive: true, force: true })
      at === undefined ? rej(new Error(`exit ${code}: ${buf.slice(-1500)}`)) : res(at)
    })
  })
const bare = () =>
  new Promise((res) => {
    const t0 = process.hrtime.bigint()
    spawn(process.execPath, ["-e", ""]).on("exit", () => res(Number(process.hrtime.bigint() - t0) / 1e6))
  })
await once(2500) // writes the code cache
const xs = [],
  bs = []
for (let i = 0; i < runs; i++) {
  xs.push(await once())
  bs.push(await bare())
}
const med = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]
const warmCpu = cpu.slice(1)
console.log(`cpu ms to READY (user+sys): ${warmCpu.join(" ")}, median ${med(warmCpu)}`)
console.log(
  `${main}: READY ${xs.map((x) => x.toFixed(0)).join(" ")} ms, median ${med(xs).toFixed(0)}; node -e "" median ${med(bs).toFixed(0)} ms; ratio ${(med(xs) / med(bs)).toFixed(2)}x`,
)
rmSync(cache, { recursive: true, force: true })
