// Real QEMU: one guest boot shared by the reattach and stop tests, one more for kill -9, one that halts
// itself, one that migrates out (to nowhere) before its agent restarts.
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { LocalStore } from "@novacron/dwcp-ass"
import { Context, Duration, Effect, Either, Layer, Option } from "effect"
import * as Qmp from "../src/Qmp.js"
import { VmManager } from "../src/VmManager.js"
import * as VmOwnership from "../src/VmOwnership.js"
import { VmStore } from "../src/VmStore.js"
import { eventually, type Guest, guest, guestSpec, haveQemu, MARKER, managerLayer } from "./guest.js"

const enabled = await haveQemu()

/** The process has exited (a zombie left for a parent that does not reap counts as exited). */
const gone = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")
  } catch {
    return true
  }
}

describe.skipIf(!enabled)("VmManager on real QEMU", () => {
  let g: Guest
  let dataDir: string
  const pids = new Set<number>()

  beforeAll(() => {
    g = guest()
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-vm-"))
  }, 180_000)

  afterAll(() => {
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL")
      } catch {}
    }
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
  })

  const withManager = <A, E>(
    f: (m: VmManager["Type"], ctx: Context.Context<VmManager | VmStore>) => Effect.Effect<A, E>,
  ) =>
    Effect.scoped(
      Effect.gen(function* () {
        const ctx = yield* Layer.build(managerLayer(dataDir))
        return yield* f(Context.get(ctx, VmManager), ctx)
      }),
    )

  const console = (m: VmManager["Type"], id: string) => Effect.orDie(m.console(id))
  const markers = (text: string) => text.split("\n").filter((l) => l.startsWith(MARKER))

  it.live(
    "define makes a qcow2 overlay on the base; start boots the guest and its marker reaches the console",
    () =>
      withManager((m) =>
        Effect.gen(function* () {
          const rec = yield* m.define(guestSpec(g, "web-1"))
          expect(rec.state).toBe("defined")
          const info = JSON.parse(
            execFileSync("qemu-img", ["info", "--output=json", path.join(dataDir, "vms/web-1/disk0.qcow2")], {
              encoding: "utf8",
            }),
          )
          expect(info.format).toBe("qcow2")
          expect(info["backing-filename"]).toBe(g.base)
          const running = yield* m.start("web-1")
          expect(running.state).toBe("running")
          expect(running.pid).toBeGreaterThan(1)
          pids.add(running.pid!)
          expect(running.term).toBe(1)
          // The accelerator chosen must run guests: the marker below proves it. (On the CI machine
          // /dev/kvm exists but runs nothing, so choosing by the device node fails this test.)
          expect(["kvm", "tcg"]).toContain(running.accel)
          yield* eventually(
            "guest marker on the console",
            Effect.map(console(m, "web-1"), (t) => t.includes(MARKER)),
            150,
          )
          const status = yield* m.status("web-1")
          expect(status).toMatchObject({ attached: true, qmp_status: "running" })
          // QEMU is not the agent's child: its own session, parent is not this process.
          const stat = fs.readFileSync(`/proc/${running.pid}/stat`, "utf8")
          const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
          const self = fs.readFileSync("/proc/self/stat", "utf8")
          const selfSession = self.slice(self.lastIndexOf(")") + 2).split(" ")[3]
          expect(Number(fields[1])).not.toBe(process.pid) // ppid
          expect(fields[3]).not.toBe(selfSession) // its own session: the agent's signals do not reach it
        }),
      ),
    200_000,
  )

  it.live("a second start of the running VM is refused, and QEMU's image lock refuses another QEMU on its disk", () =>
    withManager((m) =>
      Effect.gen(function* () {
        const err = yield* Effect.flip(m.start("web-1"))
        expect(err._tag).toBe("VmInvalidState")
        expect(err.message).toBe("vm web-1: cannot start while running")
        const out = yield* Effect.promise(
          () =>
            new Promise<string>((resolve) => {
              const child = spawn(
                "qemu-system-x86_64",
                [
                  "-nodefaults",
                  "-display",
                  "none",
                  "-machine",
                  "q35,accel=tcg",
                  "-S",
                  "-drive",
                  `file=${path.join(dataDir, "vms/web-1/disk0.qcow2")},format=qcow2,if=virtio`,
                ],
                { stdio: ["ignore", "ignore", "pipe"] },
              )
              let err = ""
              child.stderr.on("data", (d) => {
                err += d
              })
              const t = setTimeout(() => child.kill("SIGKILL"), 20_000)
              child.on("exit", () => {
                clearTimeout(t)
                resolve(err)
              })
            }),
        )
        expect(out).toContain('Failed to get "write" lock')
      }),
    ),
  )

  it.live("a new manager (agent restart) reattaches to the running QEMU without restarting it", () =>
    Effect.gen(function* () {
      const before = yield* withManager((m) => m.status("web-1"))
      const pid = before.record.pid!
      // The previous manager's scope closed: QEMU must still run, with the same boot.
      expect(fs.existsSync(`/proc/${pid}`)).toBe(true)
      yield* withManager((m) =>
        Effect.gen(function* () {
          const after = yield* m.status("web-1")
          expect(after.record.pid).toBe(pid)
          expect(after).toMatchObject({ attached: true, qmp_status: "running" })
          expect(after.record.state).toBe("running")
          expect(markers(yield* console(m, "web-1"))).toHaveLength(1) // booted once
          expect((yield* m.info).unattached).toEqual([])
        }),
      )
    }),
  )

  it.live(
    "graceful stop: the guest powers off on system_powerdown",
    () =>
      withManager((m) =>
        Effect.gen(function* () {
          const pid = (yield* m.status("web-1")).record.pid!
          const { method, record } = yield* m.stop("web-1", { timeout: "60 seconds" })
          expect(method).toBe("powerdown")
          expect(record).toMatchObject({ state: "stopped", pid: null, exit_reason: "powerdown" })
          expect(yield* console(m, "web-1")).toContain("NOVACRON-GUEST-POWERDOWN")
          expect(gone(pid)).toBe(true)
          expect((yield* m.stop("web-1")).method).toBe("already-stopped")
        }),
      ),
    120_000,
  )

  it.live(
    "kill -9 of QEMU is detected: the VM is marked crashed with the reason",
    () =>
      withManager((m) =>
        Effect.gen(function* () {
          const rec = yield* m.start("web-1")
          pids.add(rec.pid!)
          expect(rec.term).toBe(2) // a new term for every start
          process.kill(rec.pid!, "SIGKILL")
          yield* eventually(
            "crash recorded",
            Effect.map(Effect.orDie(m.status("web-1")), (s) => s.record.state === "crashed"),
            20,
          )
          const s = yield* m.status("web-1")
          expect(s.record.exit_reason).toBe(`qemu (pid ${rec.pid}) exited without a SHUTDOWN event (killed or crashed)`)
          expect(s.attached).toBe(false)
        }),
      ),
    60_000,
  )

  it.live(
    "concurrent starts run one QEMU; graceful stop falls back to quit when the guest ignores the power button",
    () =>
      withManager((m) =>
        Effect.gen(function* () {
          // No kernel, no disk: the firmware finds nothing to boot and nothing handles ACPI.
          yield* m.define({ id: "deaf", vcpus: 1, memory_mb: 64 })
          // Two concurrent starts: one QEMU, the other refused.
          const [one, two] = yield* Effect.all([Effect.either(m.start("deaf")), Effect.either(m.start("deaf"))], {
            concurrency: 2,
          })
          const started = [one, two].filter(Either.isRight)
          const refused = [one, two].filter(Either.isLeft)
          expect(started).toHaveLength(1)
          expect(refused.map((r) => r.left._tag)).toEqual(["VmInvalidState"])
          const rec = started[0]!.right
          pids.add(rec.pid!)
          const { method, record } = yield* m.stop("deaf", { timeout: "1 second" })
          expect(method).toBe("quit")
          expect(record.state).toBe("stopped")
          expect(gone(rec.pid!)).toBe(true)
          yield* m.remove("deaf")
          expect(fs.existsSync(path.join(dataDir, "vms/deaf"))).toBe(false)
          expect(Either.isLeft(yield* Effect.either(m.status("deaf")))).toBe(true)
        }),
      ),
  )

  it.live(
    "with stop_on_shutdown the manager stops its VMs when it closes (host shutdown); by default they keep running",
    () =>
      Effect.gen(function* () {
        const start = (settings: Parameters<typeof managerLayer>[1]) =>
          Effect.scoped(
            Effect.gen(function* () {
              const m = Context.get(yield* Layer.build(managerLayer(dataDir, settings)), VmManager)
              const rec = yield* m.start("idle")
              pids.add(rec.pid!)
              return rec.pid!
            }),
          )
        yield* withManager((m) => m.define({ id: "idle", vcpus: 1, memory_mb: 64 }))
        const kept = yield* start({})
        expect(gone(kept)).toBe(false)
        yield* withManager((m) => Effect.asVoid(m.stop("idle", { timeout: "1 second" })))
        const stopped = yield* start({ stop_on_shutdown: true, stop_timeout: Duration.seconds(1) })
        expect(gone(stopped)).toBe(true)
        yield* withManager((m) =>
          Effect.gen(function* () {
            expect((yield* m.status("idle")).record).toMatchObject({ state: "stopped", exit_reason: "quit" })
            yield* m.remove("idle")
          }),
        )
      }),
  )

  it.live(
    "a guest that powers itself off is recorded stopped (guest-shutdown), not crashed",
    () =>
      withManager((m) =>
        Effect.gen(function* () {
          const spec = guestSpec(g, "halter")
          yield* m.define({ ...spec, boot: { ...spec.boot, append: `${spec.boot.append} novacron.halt` } })
          const rec = yield* m.start("halter")
          pids.add(rec.pid!)
          yield* eventually(
            "guest-initiated shutdown recorded",
            Effect.map(Effect.orDie(m.status("halter")), (s) => s.record.state !== "running"),
            150,
          )
          expect((yield* m.status("halter")).record).toMatchObject({
            state: "stopped",
            exit_reason: "guest-shutdown",
            pid: null,
          })
          expect(yield* console(m, "halter")).toContain("NOVACRON-GUEST-HALT")
          yield* m.remove("halter")
        }),
      ),
    200_000,
  )

  it.live("a VM recorded running whose QEMU is gone is marked crashed when the manager starts", () =>
    Effect.gen(function* () {
      yield* withManager((_, ctx) =>
        Effect.gen(function* () {
          const store = Context.get(ctx, VmStore)
          const rec = Option.getOrThrow(yield* store.get("web-1"))
          yield* store.put({ ...rec, state: "running", pid: 999_999, exit_reason: null })
        }),
      )
      yield* withManager((m) =>
        Effect.gen(function* () {
          const s = yield* m.status("web-1")
          expect(s.record.state).toBe("crashed")
          expect(s.record.exit_reason).toBe("qemu (pid 999999) was not running when the agent started")
          yield* m.remove("web-1")
        }),
      )
    }),
  )

  it.live(
    "an agent restarted after its VM migrated out (QEMU paused in postmigrate): resumed here under the next term if the term is still ours, handed off if another node took it",
    () =>
      Effect.gen(function* () {
        // QEMU completes an outgoing migration to nowhere: the guest stays paused, as a source's
        // does between the end of the stream and the switchover (the agent killed in between).
        const migrateOut = (m: VmManager["Type"]) =>
          Effect.gen(function* () {
            const qmp = yield* m.qmp("moved-1")
            yield* Qmp.migrate(qmp, "exec:cat > /dev/null")
            yield* eventually(
              "postmigrate",
              Effect.map(Qmp.queryStatus(qmp), (st) => st.status === "postmigrate"),
              60,
            )
          })
        const term = yield* withManager((m) =>
          Effect.gen(function* () {
            yield* m.define(guestSpec(g, "moved-1"))
            const rec = yield* m.start("moved-1")
            pids.add(rec.pid!)
            yield* eventually(
              "guest marker",
              Effect.map(console(m, "moved-1"), (t) => t.includes(MARKER)),
              90,
            )
            yield* migrateOut(m)
            return rec.term!
          }),
        )
        // Nobody took the term: the restarted agent takes it over from itself and resumes the guest.
        const pid = yield* withManager((m) =>
          Effect.gen(function* () {
            const st = yield* m.status("moved-1")
            expect(st).toMatchObject({
              attached: true,
              qmp_status: "running",
              record: { state: "running", term: term + 1 },
            })
            expect(markers(yield* console(m, "moved-1"))).toHaveLength(1) // resumed, not rebooted
            yield* migrateOut(m)
            return st.record.pid!
          }),
        )
        // Another node took the term over (the destination resumed the guest): never resumed here.
        yield* Effect.scoped(
          Effect.flatMap(
            Layer.build(
              VmOwnership.layer("node-2").pipe(
                Layer.provide(LocalStore.layer()),
                Layer.provide(Database.layerSqlite({ path: path.join(dataDir, "novacron.db") })),
              ),
            ),
            (ctx) => Context.get(ctx, VmOwnership.VmOwnership).takeOver("moved-1", term + 1),
          ),
        )
        yield* withManager((m) =>
          Effect.gen(function* () {
            expect((yield* Effect.flip(m.status("moved-1")))._tag).toBe("VmNotFound")
            expect(gone(pid)).toBe(true)
          }),
        )
      }),
    150_000,
  )
})
