// Cost of loading a configuration: Config.load (read + YAML with positions + overrides + schema
// decode + rules + provenance) against the baseline of reading and YAML.parse-ing the same file.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Schema } from "effect"
import { parse, stringify } from "yaml"
import { Config, Settings } from "../src/index.js"

const dir = mkdtempSync(join(tmpdir(), "novacron-bench-"))
const encoded = Schema.encodeSync(Settings.Settings)(Settings.defaults()) as Record<string, Record<string, unknown>>
encoded.network!.peers = Array.from({ length: 50 }, (_, i) => `10.0.${i >> 8}.${i & 255}:7700`)
encoded.security!.tokens = Array.from({ length: 20 }, (_, i) => ({
  name: `t${i}`,
  role: "reader",
  sha256: "ab".repeat(32),
}))
const good = join(dir, "novacron.yaml")
writeFileSync(good, stringify(encoded))
const bad = join(dir, "bad.yaml")
writeFileSync(
  bad,
  stringify({ ...encoded, system: { ...encoded.system, log_level: "loud", max_concurrency: 0, nod_id: "x" } }),
)

const timeIt = (name: string, fn: () => void, ms = 1500) => {
  for (let i = 0; i < 50; i++) fn()
  let n = 0
  const start = performance.now()
  while (performance.now() - start < ms) {
    fn()
    n++
  }
  const per = ((performance.now() - start) / n) * 1000
  return { name, n, usPerOp: per }
}

const baseline = timeIt("read + YAML.parse (baseline)", () => parse(readFileSync(good, "utf8")))
const load = timeIt("Config.load, valid file", () => Effect.runSync(Config.load({ file: good, env: {} })))
const loadEnv = timeIt("Config.load, valid file + 3 env + 2 flags", () =>
  Effect.runSync(
    Config.load({
      file: good,
      env: { NOVACRON_LOG_LEVEL: "debug", NOVACRON__DWCP__COMPRESSION__LEVEL: "5", NOVACRON_NODE_ID: "n1" },
      flags: ["--bind-port", "7000", "--set", "dwcp.transport.max_streams=64"],
    }),
  ),
)
const failing = timeIt("Config.load, 3 problems", () =>
  Effect.runSync(Effect.flip(Config.load({ file: bad, env: {} }))),
)

console.log(`file: ${readFileSync(good, "utf8").length} bytes, 50 peers, 20 tokens`)
for (const r of [baseline, load, loadEnv, failing]) {
  console.log(
    `${r.name.padEnd(45)} ${r.usPerOp.toFixed(1).padStart(8)} µs/op  (${r.n} runs)  ${(r.usPerOp / baseline.usPerOp).toFixed(2)}x baseline`,
  )
}
