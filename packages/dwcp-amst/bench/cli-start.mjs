// Time to first byte of `amst send`: from spawning the CLI (the built bin, `pnpm build` first) to
// the first byte at a listening socket, median of N runs (default 9).
// `node bench/cli-start.mjs [N]`; `AMST_CLI=path` measures another build of the bin.
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const cli = process.env.AMST_CLI ?? join(dirname(fileURLToPath(import.meta.url)), "..", "bin", "amst.mjs")
const n = Number(process.argv[2] ?? 9)
const dir = mkdtempSync(join(tmpdir(), "amst-start-"))
const file = join(dir, "one.bin")
writeFileSync(file, Buffer.alloc(1 << 20))

/** Spawns `node ...args(port)` and resolves with the ms until its first byte arrives. */
const once = (args) =>
  new Promise((resolve) => {
    let t0 = 0
    let child
    const server = net.createServer((s) =>
      s.once("data", () => {
        const ms = performance.now() - t0
        s.destroy()
        server.close()
        child.kill("SIGKILL")
        resolve(ms)
      }),
    )
    server.listen(0, "127.0.0.1", () => {
      t0 = performance.now()
      child = spawn(process.execPath, args(server.address().port), { stdio: "ignore" })
    })
  })

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const node = []
const amst = []
for (let i = 0; i < n; i++) {
  // Plain `node` connecting at once: the floor for any Node CLI on this machine at this load.
  node.push(
    await once((port) => ["-e", `require("net").connect(${port}, "127.0.0.1", function () { this.write("x") })`]),
  )
  amst.push(await once((port) => [cli, "send", file, `127.0.0.1:${port}`, "--json"]))
}
rmSync(dir, { recursive: true, force: true })
console.log(
  JSON.stringify({
    runs: n,
    amst_send_first_byte_ms: Math.round(median(amst)),
    node_connect_first_byte_ms: Math.round(median(node)),
    ratio: (median(amst) / median(node)).toFixed(2),
  }),
)
