// First-start cost of the security component: the layer built on an empty data directory (master
// key, secrets store, CA and node certificate issued) against the same layer on the directory the
// first start left (baseline: everything reused). Each sample runs in a fresh Node process so the
// lazy import of the X.509 library is counted. Usage: pnpm --filter @novacron/security bench
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const SAMPLES = Number(process.env.SAMPLES ?? 7)

if (process.argv[2] === "child") {
  const dir = process.argv[3]!
  const t0 = performance.now()
  const { Effect, Layer, Logger, LogLevel, Context } = await import("effect")
  const { Security, SecuritySettings } = await import("../src/index.js")
  const tImport = performance.now()
  const node = { data_dir: dir, node_id: "bench-node", listen_address: "127.0.0.1", env: {} }
  const program = Effect.scoped(
    Effect.gen(function* () {
      const ctx = yield* Layer.build(Security.layer(SecuritySettings.defaults, node))
      return Context.get(ctx, Security.Security).tls.issueMillis
    }),
  ).pipe(Logger.withMinimumLogLevel(LogLevel.None))
  const issueMillis = await Effect.runPromise(program)
  const tEnd = performance.now()
  process.stdout.write(JSON.stringify({ importMs: tImport - t0, layerMs: tEnd - tImport, issueMs: issueMillis }))
  process.exit(0)
}

const run = (dir: string) =>
  JSON.parse(
    execFileSync(process.execPath, ["--import", "tsx", path.join(here, "firstStart.ts"), "child", dir], {
      encoding: "utf8",
    }),
  ) as { importMs: number; layerMs: number; issueMs: number }

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const first: Array<{ layerMs: number; issueMs: number }> = []
const reuse: Array<{ layerMs: number; issueMs: number }> = []
for (let i = 0; i < SAMPLES; i++) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-sec-bench-"))
  try {
    first.push(run(dir))
    reuse.push(run(dir))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
const f = median(first.map((s) => s.layerMs))
const r = median(reuse.map((s) => s.layerMs))
const issue = median(first.map((s) => s.issueMs))
console.log(
  `security layer build, median of ${SAMPLES} fresh processes (module import excluded, X.509 library import included); ` +
    `load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores`,
)
console.log(`  first start (key + store + CA + node cert issued): ${f.toFixed(1)} ms`)
console.log(`  later start (baseline, everything reused):         ${r.toFixed(1)} ms`)
console.log(`  ratio first/later: ${(f / r).toFixed(2)}x`)
console.log(`  of which CA + node certificate issuance (incl. library load): ${issue.toFixed(1)} ms`)
