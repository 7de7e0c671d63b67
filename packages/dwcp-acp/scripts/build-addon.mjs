// Builds the TCP_CONGESTION / TCP_INFO addon with node-gyp against the running Node's own headers:
// `nodedir` from .npmrc when set, else the Node binary's prefix when it ships include/node (distro
// packages do), so a clean clone builds offline. Fails the build when the addon does not compile.
// Incremental: when the addon is newer than its sources and was built for this Node ABI, nothing is
// touched, so a concurrent `turbo run build` never deletes the file under running tests. A real build
// happens in a scratch directory and is renamed into place.
import { spawnSync } from "node:child_process"
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const out = join(pkg, "build/Release/dwcp_acp.node")
const stamp = join(pkg, "build/abi")
const sources = ["native/acp.cc", "binding.gyp", "scripts/build-addon.mjs"].map((f) => join(pkg, f))
const abi = `${process.versions.modules}-${process.platform}-${process.arch}`

const upToDate =
  existsSync(out) &&
  existsSync(stamp) &&
  readFileSync(stamp, "utf8") === abi &&
  sources.every((s) => statSync(s).mtimeMs <= statSync(out).mtimeMs)
if (upToDate && !process.argv.includes("--force")) process.exit(0)

const scratch = join(pkg, `.addon-build-${process.pid}`)
rmSync(scratch, { recursive: true, force: true })
mkdirSync(scratch, { recursive: true })
for (const f of ["binding.gyp", "native"]) cpSync(join(pkg, f), join(scratch, f), { recursive: true })
const args = ["rebuild", "--release", "--loglevel=warn"]
const prefix = resolve(dirname(process.execPath), "..")
if (!process.env.npm_config_nodedir && existsSync(join(prefix, "include/node/node_api.h"))) {
  args.push(`--nodedir=${prefix}`)
}
const gyp = createRequire(join(pkg, "package.json")).resolve("node-gyp/bin/node-gyp.js")
// binding.gyp resolves node-addon-api with require from the build's cwd: point NODE_PATH at ours.
const env = { ...process.env, NODE_PATH: join(pkg, "node_modules") }
const r = spawnSync(process.execPath, [gyp, ...args], { cwd: scratch, stdio: "inherit", env })
if (r.status !== 0) {
  rmSync(scratch, { recursive: true, force: true })
  process.exit(r.status ?? 1)
}
mkdirSync(dirname(out), { recursive: true })
renameSync(join(scratch, "build/Release/dwcp_acp.node"), out) // atomic on the same filesystem
writeFileSync(stamp, abi)
rmSync(scratch, { recursive: true, force: true })
