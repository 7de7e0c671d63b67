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

// The machine is shared: each case runs in short slices interleaved with the others, 7 rounds,
// and the median slice is reported, so load drift hits baseline and subjects alike.
const cases: ReadonlyArray<readonly [string, () => unknown]> = [
  ["read + YAML.parse (baseline)", () => parse(readFileSync(good, "utf8"))],
  ["Config.load, valid file", () => Effect.runSync(Config.load({ file: good, env: {} }))],
  [
    "Config.load, valid file + 3 env + 2 flags",
    () =>
      Effect.runSync(
        Config.load({
          file: good,
          env: { NOVACRON_LOG_LEVEL: "debug", NOVACRON__DWCP__COMPRESSION__LEVEL: "5", NOVACRON_NODE_ID: "n1" },
          flags: ["--bind-port", "7000", "--set", "dwcp.transport.max_streams=64"],
        }),
      ),
  ],
  ["Config.load, 3 problems", () => Effect.runSync(Effect.flip(Config.load({ file: bad, env: {} })))],
]
const slices = cases.map(() => [] as Array<number>)
let runs = 0
for (const [, fn] of cases) for (let i = 0; i < 30; i++) fn()
for (let round = 0; round < 7; round++) {
  cases.forEach(([, fn], c) => {
    let n = 0
    const start = performance.now()
    while (performance.now() - start < 250) {
      fn()
      n++
    }
    runs += n
    slices[c]!.push(((performance.now() - start) / n) * 1000)
  })
}
const med = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const results = cases.map(([name], c) => ({ name, usPerOp: med(slices[c]!) }))
const baseline = results[0]!
console.log(`file: ${readFileSync(good, "utf8").length} bytes, 50 peers, 20 tokens`)
for (const r of results) {
  console.log(
    `${r.name.padEnd(45)} ${r.usPerOp.toFixed(1).padStart(8)} µs/op  ${(r.usPerOp / baseline.usPerOp).toFixed(2)}x baseline`,
  )
}
console.log(`(${runs} operations, median of 7 interleaved 250 ms slices per case)`)
