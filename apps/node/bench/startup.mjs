#!/usr/bin/env node
// Process start to READY on the embedded defaults: the median of repeated runs of the built agent,
// beside a baseline in the same run: the time for `node -e` to start and exit on this machine.
// Run: pnpm --filter @novacron/node bench   (after a build)
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const main = resolve(dirname(fileURLToPath(import.meta.url)), "../dist/main.js")
const runs = Number(process.env.RUNS ?? 15)

const time = (args, until, env = {}) =>
  new Promise((res, rej) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, NO_COLOR: "1", ...env },
    })
    let buffer = ""
    let readyAt
    child.stdout.setEncoding("utf8").on("data", (chunk) => {
      buffer += chunk
      if (readyAt === undefined && until && until(buffer)) {
        readyAt = Number(process.hrtime.bigint() - t0) / 1e6
        child.kill("SIGTERM")
      }
    })
    child.on("exit", (code) => {
      const end = Number(process.hrtime.bigint() - t0) / 1e6
      if (until && readyAt === undefined) rej(new Error(`agent exited (${code}) before READY:\n${buffer.slice(-2000)}`))
      else res(until ? readyAt : end)
    })
  })

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const ports = [
  "--set",
  "system.health_check_port=0",
  "--set",
  "monitoring.metrics_port=0",
  "--set",
  "network.bind_port=0",
  "--set",
  "dwcp.listen_port=0",
  "--set",
  "api.port=0",
]

/** One agent start on a fresh data directory: [ms to READY, the kernel's own boot time]. */
const startOnce = async (env) => {
  const dir = mkdtempSync(join(tmpdir(), "novacron-bench-"))
  let line
  const ms = await time(
    [main, "start", "--data-dir", dir, ...ports],
    (buf) => {
      line = buf.split("\n").find((l) => l.includes('"node.ready"'))
      return line !== undefined
    },
    env,
  )
  rmSync(dir, { recursive: true, force: true })
  return [ms, JSON.parse(line).duration]
}

// A private code cache, primed by one run that lives long enough to write it (see src/main.ts).
const cacheDir = mkdtempSync(join(tmpdir(), "novacron-bench-cache-"))
const warmEnv = { NOVACRON_COMPILE_CACHE: cacheDir }
{
  const dir = mkdtempSync(join(tmpdir(), "novacron-bench-"))
  const child = spawn(process.execPath, [main, "start", "--data-dir", dir, ...ports], {
    stdio: "ignore",
    env: { ...process.env, ...warmEnv },
  })
  await new Promise((r) => setTimeout(r, 3500))
  child.kill("SIGTERM")
  await new Promise((r) => child.on("exit", r))
  rmSync(dir, { recursive: true, force: true })
}

// Interleaved, so load on the machine falls on all three alike.
const baseline = []
const cold = []
const warm = []
const boot = []
for (let i = 0; i < runs; i++) {
  baseline.push(await time(["-e", ""]))
  cold.push((await startOnce({ NOVACRON_COMPILE_CACHE: "off" }))[0])
  const [ms, internal] = await startOnce(warmEnv)
  warm.push(ms)
  boot.push(internal)
}
rmSync(cacheDir, { recursive: true, force: true })
const b = median(baseline)
console.log(`## Agent start to READY, embedded defaults, median of ${runs} (fresh data directory each run)`)
console.log(`process start -> READY, code cache warm: ${median(warm).toFixed(1)} ms (target < 500 ms)`)
console.log(`  of which boot (init_start -> READY, kernel's own clock): ${median(boot).toFixed(1)} ms`)
console.log(`process start -> READY, no code cache (first start): ${median(cold).toFixed(1)} ms`)
console.log(`baseline \`node -e ""\` start and exit: ${b.toFixed(1)} ms`)
console.log(`warm / baseline: ${(median(warm) / b).toFixed(2)}x; cold / baseline: ${(median(cold) / b).toFixed(2)}x`)
