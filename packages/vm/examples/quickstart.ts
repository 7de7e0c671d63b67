// Boots a tiny VM end to end: define (qcow2 overlay), start, read its console, stop gracefully, delete.
// usage (from packages/vm): pnpm quickstart   (builds the test guest first: Debian kernel + busybox)
import { execFileSync } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Database } from "@novacron/database"
import { LocalStore } from "@novacron/dwcp-ass"
import { Effect, Layer } from "effect"
import { VmManager, VmOwnership, VmSettings, VmStore } from "../src/index.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const dataDir = path.resolve(process.argv[2] ?? "./.novacron")
// kernel, initrd.gz and an empty base.qcow2, cached under ~/.cache/novacron/vm-guest
const guest = execFileSync("bash", [path.join(here, "../test/guest/build-guest.sh")], { encoding: "utf8" }).trim()

const program = Effect.gen(function* () {
  const vms = yield* VmManager.VmManager
  yield* vms.define({
    id: "demo",
    vcpus: 1,
    memory_mb: 192,
    disks: [{ base: `${guest}/base.qcow2` }],
    nics: [{ kind: "user", hostfwd: [] }],
    boot: { kernel: `${guest}/vmlinuz`, initrd: `${guest}/initrd.gz`, append: "console=ttyS0 quiet panic=-1" },
  })
  const started = yield* vms.start("demo")
  console.log(`started demo: qemu pid ${started.pid}, accel ${started.accel}, term ${started.term}`)
  let log = ""
  for (let i = 0; i < 240 && !log.includes("NOVACRON-GUEST-READY"); i++) {
    yield* Effect.sleep("500 millis")
    log = yield* vms.console("demo")
  }
  console.log(`console:\n${log.trim()}`)
  console.log("capacity:", yield* vms.capacity)
  const { method } = yield* vms.stop("demo")
  console.log(`stopped by ${method}`)
  yield* vms.remove("demo")
})

const layer = VmManager.layer(VmSettings.defaults, { dataDir }).pipe(
  // VM records in the node database; ownership terms in the cluster state (here its single-node mode).
  Layer.provide(
    Layer.merge(VmStore.layerDatabase, VmOwnership.layer("node-1").pipe(Layer.provide(LocalStore.layer()))),
  ),
  Layer.provide(Database.layerSqlite({ path: path.join(dataDir, "novacron.db") })),
)

Effect.runPromise(Effect.scoped(Effect.provide(program, layer))).catch((e) => {
  console.error(String(e))
  process.exit(1)
})
