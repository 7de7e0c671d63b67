// Builds the RDMA probe addon with node-gyp against the running Node's own headers (no download).
// Without rdma-core's headers it still builds, without RDMA support, and says so.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const have = spawnSync(process.execPath, [join(pkg, "scripts/detect-rdma.mjs")], { cwd: pkg, encoding: "utf8" }).stdout
console.log(
  have === "1"
    ? "[dwcp-amst] rdma-core headers found: building the addon with RDMA support"
    : process.env.AMST_DISABLE_RDMA === "1"
      ? "[dwcp-amst] AMST_DISABLE_RDMA=1: building the addon WITHOUT RDMA support"
      : "[dwcp-amst] rdma-core headers not found (apt-get install -y libibverbs-dev librdmacm-dev): building the addon WITHOUT RDMA support",
)
// The Node binary's prefix holds include/node when installed from a distribution package.
const prefix = resolve(dirname(process.execPath), "..")
const args = ["rebuild", "--release"]
if (existsSync(join(prefix, "include/node/node_api.h"))) args.push(`--nodedir=${prefix}`)
const gyp = join(pkg, "node_modules/node-gyp/bin/node-gyp.js")
const r = spawnSync(process.execPath, [gyp, ...args], { cwd: pkg, stdio: "inherit" })
if (r.status !== 0) {
  console.error("[dwcp-amst] native addon build failed; the package falls back to TCP without it")
  process.exit(process.env.AMST_REQUIRE_NATIVE === "1" ? 1 : 0)
}
