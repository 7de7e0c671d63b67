// Prints 1 when rdma-core's development headers and libraries are installed, else 0.
// binding.gyp reads this to build the addon with or without RDMA support.
import { existsSync } from "node:fs"

const dirs = ["/usr/include", "/usr/local/include"]
const header = (h) => dirs.some((d) => existsSync(`${d}/${h}`))
const libDirs = [
  "/usr/lib",
  "/usr/lib64",
  "/usr/local/lib",
  `/usr/lib/${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux-gnu`,
]
const lib = (l) => libDirs.some((d) => existsSync(`${d}/lib${l}.so`))
const ok =
  process.env.AMST_DISABLE_RDMA !== "1" &&
  header("infiniband/verbs.h") &&
  header("rdma/rdma_cma.h") &&
  lib("ibverbs") &&
  lib("rdmacm")
process.stdout.write(ok ? "1" : "0")
