// Builds the RDMA probe addon with node-gyp against the running Node's own headers (no download).
//
// - Nothing is rebuilt when nothing changed: the built addon must be newer than its sources and
//   its stamp must name this Node ABI, platform and RDMA choice (and it must load).
// - node-gyp's output goes to native-build.log; the terminal gets one line.
// - An addon that cannot be built (no compiler, no make/python, a compile error) leaves RDMA off
//   and never fails the install, unless AMST_REQUIRE_NATIVE=1 (then the log is shown).
// - Without rdma-core's headers the addon is built without RDMA support (AMST_DISABLE_RDMA=1
//   forces that); AMST_NATIVE_FORCE=1 rebuilds regardless.
import { spawnSync } from "node:child_process"
import { closeSync, existsSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { delimiter, dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const addon = join(pkg, "build/Release/amst_rdma.node")
const stampPath = join(pkg, "build/amst-native.json")
const log = join(pkg, "native-build.log")
const sources = ["native/rdma.cc", "binding.gyp", "scripts/build-native.mjs", "scripts/detect-rdma.mjs"]
const say = (line) => console.log(`[dwcp-amst] ${line}`)

const have = spawnSync(process.execPath, [join(pkg, "scripts/detect-rdma.mjs")], { cwd: pkg, encoding: "utf8" }).stdout
const stamp = {
  modules: process.versions.modules,
  napi: process.versions.napi,
  platform: process.platform,
  arch: process.arch,
  rdma: have === "1",
}

const upToDate = () => {
  if (process.env.AMST_NATIVE_FORCE === "1" || !existsSync(addon) || !existsSync(stampPath)) return false
  const built = statSync(addon).mtimeMs
  if (sources.some((s) => statSync(join(pkg, s)).mtimeMs > built)) return false
  try {
    const old = JSON.parse(readFileSync(stampPath, "utf8"))
    if (Object.entries(stamp).some(([k, v]) => old[k] !== v)) return false
    createRequire(import.meta.url)(addon)
    return true
  } catch {
    return false
  }
}

if (upToDate()) {
  say(`native addon up to date (RDMA support: ${stamp.rdma ? "yes" : "no"}); not rebuilt`)
  process.exit(0)
}

const onPath = (cmd) => (process.env.PATH ?? "").split(delimiter).some((d) => d !== "" && existsSync(join(d, cmd)))
const tools = [["c++", "g++", "clang++"], ["make"], ["python3", "python"]]
const missing = tools.filter((alts) => !alts.some(onPath)).map((alts) => alts[0])
const off = (why) => {
  say(`native addon not built (${why}): RDMA off, transfers use TCP`)
  process.exit(process.env.AMST_REQUIRE_NATIVE === "1" ? 1 : 0)
}
if (missing.length > 0) off(`${missing.join(", ")} not found`)

// The Node binary's prefix holds include/node when installed from a distribution package.
const prefix = resolve(dirname(process.execPath), "..")
const args = ["rebuild", "--release"]
if (existsSync(join(prefix, "include/node/node_api.h"))) args.push(`--nodedir=${prefix}`)
const gyp = join(pkg, "node_modules/node-gyp/bin/node-gyp.js")
const started = performance.now()
const out = openSync(log, "w")
const r = spawnSync(process.execPath, [gyp, ...args], { cwd: pkg, stdio: ["ignore", out, out] })
closeSync(out)
if (r.status !== 0) {
  const text = readFileSync(log, "utf8")
  if (process.env.AMST_REQUIRE_NATIVE === "1") process.stderr.write(text)
  const first =
    text
      .split("\n")
      .find((l) => /error/i.test(l))
      ?.trim() ?? `node-gyp exited ${r.status ?? r.signal}`
  off(`${first.slice(0, 160)}; full log: ${log}`)
}
writeFileSync(stampPath, `${JSON.stringify(stamp)}\n`)
say(
  `native addon built in ${((performance.now() - started) / 1000).toFixed(1)} s (RDMA support: ${stamp.rdma ? "yes" : "no (rdma-core headers not found: apt-get install -y libibverbs-dev librdmacm-dev)"}); log: ${log}`,
)
