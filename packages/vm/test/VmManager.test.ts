// The manager without booting guests: definitions, capacity, reattach to a QEMU whose QMP misbehaves,
// QEMU missing (component degraded, agent up).
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { LocalStore } from "@novacron/dwcp-ass"
import { Boot, Component } from "@novacron/init"
import { tempDir } from "@novacron/testing"
import { Context, Effect, Layer, Option } from "effect"
import * as VmAdmin from "../src/VmAdmin.js"
import * as VmComponent from "../src/VmComponent.js"
import { VmManager } from "../src/VmManager.js"
import * as VmSettings from "../src/VmSettings.js"
import { VmStore } from "../src/VmStore.js"
import { fakeServer } from "./fakeQmp.js"
import { haveQemu, managerLayer } from "./guest.js"

const enabled = await haveQemu()

const build = (dir: string, settings: Partial<VmSettings.VmSettings> = {}) =>
  Effect.map(Layer.build(managerLayer(dir, { accel: "tcg", ...settings })), (ctx) => ({
    m: Context.get(ctx, VmManager),
    store: Context.get(ctx, VmStore),
  }))

/** A process whose argv names the QMP socket as QEMU's would (what reattach checks), killed with the scope. */
const impostor = (qmp: string) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawn(process.execPath, ["-e", "setInterval(() => {}, 1e9)", "--", `unix:${qmp},server=on,wait=off`], {
        stdio: "ignore",
        detached: true,
      }),
    ),
    (child) => Effect.sync(() => child.kill("SIGKILL")),
  )

describe.skipIf(!enabled)("VmManager (no guest boot)", () => {
  it.scopedLive("define refuses a bad id, a missing base image and a duplicate, naming them", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { m } = yield* build(dir)
      const bad = yield* Effect.flip(m.define({ id: "Web_1", vcpus: 1, memory_mb: 64 }))
      expect(bad._tag).toBe("VmInvalidSpec")
      expect(bad.message).toContain("expected a VM id: lowercase letters, digits and dashes")
      const missing = yield* Effect.flip(
        m.define({ id: "web-1", vcpus: 1, memory_mb: 64, disks: [{ base: "/nope/base.qcow2" }] }),
      )
      expect(missing.message).toBe("vm web-1: invalid definition: /nope/base.qcow2: no such file")
      expect(fs.existsSync(path.join(dir, "vms/web-1"))).toBe(false)
      yield* m.define({ id: "web-1", vcpus: 1, memory_mb: 64 })
      expect((yield* Effect.flip(m.define({ id: "web-1", vcpus: 1, memory_mb: 64 })))._tag).toBe("VmAlreadyDefined")
      expect((yield* Effect.flip(m.kill("web-1")))._tag).toBe("VmInvalidState")
    }),
  )

  it.scopedLive("start refuses when the host is out of memory or vCPUs (no QEMU started)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { m } = yield* build(dir, { cpu_overcommit: 1 })
      const cap = yield* m.capacity
      yield* m.define({ id: "big", vcpus: 1, memory_mb: cap.memory_mb_total })
      const mem = yield* Effect.flip(m.start("big"))
      expect(mem._tag).toBe("VmCapacityExceeded")
      expect(mem.message).toBe(
        `vm big: host out of memory: needs ${cap.memory_mb_total} MiB, ${cap.memory_mb_total - cap.memory_mb_reserved} MiB available`,
      )
      yield* m.define({ id: "wide", vcpus: cap.cpus + 1, memory_mb: 64 })
      const cpu = yield* Effect.flip(m.start("wide"))
      expect(cpu.message).toBe(`vm wide: host out of vcpus: needs ${cap.cpus + 1} vCPUs, ${cap.cpus} vCPUs available`)
      expect((yield* m.status("big")).record.state).toBe("defined")
      expect(fs.existsSync(path.join(dir, "vms/big/qemu.pid"))).toBe(false)
    }),
  )

  for (const mode of ["garbage", "hang"] as const) {
    it.scopedLive(
      `reattach to a QEMU whose QMP socket ${mode === "garbage" ? "answers garbage" : "hangs"}: the manager comes up, reports it, and stop falls back to a signal`,
      () =>
        Effect.gen(function* () {
          const dir = yield* tempDir
          // Define with a first manager, then fake a running QEMU for it.
          yield* Effect.scoped(Effect.flatMap(build(dir), ({ m }) => m.define({ id: "odd", vcpus: 1, memory_mb: 64 })))
          const qmp = path.join(dir, "vms/odd/qmp.sock")
          yield* fakeServer(async (peer) => {
            if (mode === "garbage") {
              peer.send("\u0000\u0001 garbage {{{")
            }
            await new Promise(() => {})
          }).pipe(Effect.tap((srv) => Effect.sync(() => fs.renameSync(srv.file, qmp))))
          const child = yield* impostor(qmp)
          fs.writeFileSync(path.join(dir, "vms/odd/qemu.pid"), `${child.pid}\n`)
          yield* Effect.scoped(
            Effect.gen(function* () {
              const { store } = yield* build(dir)
              const rec = Option.getOrThrow(yield* store.get("odd"))
              yield* store.put({ ...rec, state: "running", pid: child.pid!, term: 1 })
            }),
          )
          const { m } = yield* build(dir)
          const s = yield* m.status("odd")
          expect(s).toMatchObject({ attached: false, qmp_status: null })
          expect(s.record).toMatchObject({ state: "running", pid: child.pid })
          expect((yield* m.info).unattached).toEqual(["odd"])
          const { method } = yield* m.stop("odd", { timeout: "2 seconds" })
          expect(method).toBe("quit") // SIGTERM was enough
          const signal = yield* Effect.promise(
            () =>
              new Promise<string | null>((resolve) => {
                if (child.exitCode !== null || child.signalCode !== null) resolve(child.signalCode)
                else child.once("exit", (_code, sig) => resolve(sig))
              }),
          )
          expect(signal).toBe("SIGTERM")
        }),
      20_000,
    )
  }
})

describe("VmComponent without QEMU", () => {
  it.scopedLive(
    "the component boots DEGRADED with a clear message; the admin socket answers; the rest of the agent runs",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const settings = VmSettings.decode({ qemu_binary: "/nonexistent/qemu-system-x86_64" })
        const spec = VmComponent.component(settings, { dataDir: dir, nodeId: "node-1" })
        const db = Layer.provideMerge(LocalStore.layer(), Database.layerSqlite({ path: path.join(dir, "novacron.db") }))
        const placed = Component.place(
          { ...spec, layer: Layer.provide(spec.layer, db), fallback: Layer.provide(spec.fallback!, db) },
          { phase: "services", criticality: "DEGRADED" },
        )
        const node = yield* Boot.boot([placed])
        const record = node.report.components.find((c) => c.name === "vm")!
        expect(record.status).toBe("degraded")
        const health = (yield* node.health).components.find((c) => c.name === "vm")!
        expect(health).toMatchObject({ health: "degraded" })
        expect(JSON.stringify(health)).toContain(
          "qemu unavailable: /nonexistent/qemu-system-x86_64 does not run (/nonexistent/qemu-system-x86_64: ENOENT); install qemu-system-x86",
        )
        const err = yield* Effect.flip(VmAdmin.call(VmAdmin.socketPath(dir), { op: "start", id: "x" }))
        expect(err.tag).toBe("VmQemuUnavailable")
        expect(yield* VmAdmin.call(VmAdmin.socketPath(dir), { op: "list" })).toEqual([])
      }),
  )
})
