// Boot cost of the two core components under the @novacron/init kernel: security + network booted on an
// empty data directory (master key, secrets store, CA and node certificate created; TLS listener up)
// against a boot on the directory the first one left (baseline: everything reused). Each sample is a
// fresh Node process, so lazy library loads count. Usage: pnpm --filter @novacron/network bench
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const SAMPLES = Number(process.env.SAMPLES ?? 5)

if (process.argv[2] === "child") {
  const dir = process.argv[3]!
  const { Effect, Logger, LogLevel } = await import("effect")
  const { Boot, Component } = await import("@novacron/init")
  const { SecurityComponent, SecuritySettings } = await import("@novacron/security")
  const { NetworkComponent, NetworkSettings } = await import("../src/index.js")
  const settings = NetworkSettings.decode({ bind_port: 0 })
  const node = { data_dir: dir, node_id: "bench-node", listen_address: "127.0.0.1", env: {} }
  const t0 = performance.now()
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const booted = yield* Boot.boot([
          // Bare specs, placed as the host's boot table places them.
          Component.place(SecurityComponent.component(SecuritySettings.defaults, node), {
            phase: "core",
            criticality: "CRITICAL",
          }),
          Component.place(NetworkComponent.component(settings), {
            phase: "core",
            criticality: "CRITICAL",
            dependencies: ["security"],
          }),
        ])
        process.stdout.write(JSON.stringify({ bootMs: performance.now() - t0 }))
        yield* booted.shutdown
      }),
    ).pipe(Logger.withMinimumLogLevel(LogLevel.None)),
  )
  process.exit(0)
}

const run = (dir: string) =>
  (
    JSON.parse(
      execFileSync(
        process.execPath,
        ["--conditions=@novacron/source", "--import", "tsx", path.join(here, "boot.ts"), "child", dir],
        {
          encoding: "utf8",
        },
      ),
    ) as { bootMs: number }
  ).bootMs

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const first: Array<number> = []
const later: Array<number> = []
for (let i = 0; i < SAMPLES; i++) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-boot-bench-"))
  try {
    first.push(run(dir))
    later.push(run(dir))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
console.log(
  `boot of security + network (mTLS listener) under the kernel, median of ${SAMPLES} fresh processes, ` +
    `module imports excluded; load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores`,
)
console.log(`  first start (key, store, CA, node cert issued): ${median(first).toFixed(1)} ms`)
console.log(`  later start (baseline, all reused):             ${median(later).toFixed(1)} ms`)
console.log(`  ratio first/later: ${(median(first) / median(later)).toFixed(2)}x`)
