// The shared test guest and the QEMU rule: outside CI a missing QEMU skips with a message, in CI it fails.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Database, type DatabaseError } from "@novacron/database"
import { LocalStore, type StateError } from "@novacron/dwcp-ass"
import { requireService } from "@novacron/testing"
import { Effect, Layer } from "effect"
import type { VmError } from "../src/VmError.js"
import * as VmManager from "../src/VmManager.js"
import * as VmOwnership from "../src/VmOwnership.js"
import * as VmSettings from "../src/VmSettings.js"
import * as VmStore from "../src/VmStore.js"

const here = path.dirname(fileURLToPath(import.meta.url))

const onPath = (bin: string) =>
  (process.env.PATH ?? "").split(":").some((d) => d !== "" && fs.existsSync(path.join(d, bin)))

export const haveQemu = (): Promise<boolean> =>
  requireService(
    "qemu",
    () => onPath("qemu-system-x86_64") && onPath("qemu-img") && fs.existsSync("/bin/busybox"),
    "qemu-system-x86_64, qemu-img or /bin/busybox not found (apt-get install qemu-system-x86 qemu-utils busybox-static cpio)",
  )

export interface Guest {
  readonly dir: string
  readonly kernel: string
  readonly initrd: string
  readonly base: string
}

/** Builds the guest once per cache key (see guest/build-guest.sh); every test file shares it. */
export const guest = (): Guest => {
  const dir = execFileSync("bash", [path.join(here, "guest/build-guest.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }).trim()
  return {
    dir,
    kernel: path.join(dir, "vmlinuz"),
    initrd: path.join(dir, "initrd.gz"),
    base: path.join(dir, "base.qcow2"),
  }
}

export const MARKER = "NOVACRON-GUEST-READY"

/** A spec of the test guest (quiet kernel: the serial console is slow under TCG). */
export const guestSpec = (g: Guest, id: string) => ({
  id,
  vcpus: 1,
  memory_mb: 192,
  disks: [{ base: g.base }],
  nics: [{ kind: "user" as const }],
  boot: { kernel: g.kernel, initrd: g.initrd, append: "console=ttyS0 quiet panic=-1" },
})

/** The manager on a SQLite file in `dataDir`, as the node builds it. */
export const managerLayer = (
  dataDir: string,
  settings: Partial<VmSettings.VmSettings> = {},
  node = "node-1",
): Layer.Layer<
  VmManager.VmManager | VmStore.VmStore | VmOwnership.VmOwnership | Database.Database,
  VmError | DatabaseError.DatabaseError | DatabaseError.MigrationError | StateError.StateUnavailable
> => {
  const db = Database.layerSqlite({ path: path.join(dataDir, "novacron.db") })
  const state = LocalStore.layer()
  const deps = Layer.mergeAll(VmStore.layerDatabase, VmOwnership.layer(node).pipe(Layer.provide(state))).pipe(
    Layer.provideMerge(db),
  )
  return VmManager.layer({ ...VmSettings.defaults, ...settings }, { dataDir }).pipe(Layer.provideMerge(deps))
}

/** Polls `check` every 250 ms until it holds, failing after `seconds`. */
export const eventually = <E, R>(what: string, check: Effect.Effect<boolean, E, R>, seconds: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + seconds * 1000
    while (Date.now() < deadline) {
      if (yield* check) return
      yield* Effect.sleep("250 millis")
    }
    return yield* Effect.die(new Error(`${what}: not true after ${seconds} s`))
  })
