// Builds the TCP_CONGESTION / TCP_INFO addon with node-gyp against the running Node's own headers:
// `nodedir` from .npmrc when set, else the Node binary's prefix when it ships include/node (distro
// packages do), so a clean clone builds offline. Fails the build when the addon does not compile.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const args = ["rebuild", "--release", "--loglevel=warn"]
const prefix = resolve(dirname(process.execPath), "..")
if (!process.env.npm_config_nodedir && existsSync(join(prefix, "include/node/node_api.h"))) {
  args.push(`--nodedir=${prefix}`)
}
const gyp = createRequire(join(pkg, "package.json")).resolve("node-gyp/bin/node-gyp.js")
const r = spawnSync(process.execPath, [gyp, ...args], { cwd: pkg, stdio: "inherit" })
process.exit(r.status ?? 1)
