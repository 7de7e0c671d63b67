import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { Duration, Effect, ExecutionStrategy, Exit, Option, Schema, Scope, Stream } from "effect"
import * as Qmp from "../Qmp.js"
import { canTransition, isActive, type VmRecord, VmSpec, type VmSpecInput, type VmState } from "../Vm.js"
import {
  VmAlreadyDefined,
  VmCapacityExceeded,
  type VmError,
  VmInvalidSpec,
  VmInvalidState,
  VmNotFound,
  VmQemuFailed,
  VmQemuUnavailable,
  type VmStoreError,
} from "../VmError.js"
import type { Capacity, IncomingOptions, Manager, Options, StopMethod, VmStatus } from "../VmManager.js"
import { VmOwnership } from "../VmOwnership.js"
import type { VmSettings } from "../VmSettings.js"
import { VmStore } from "../VmStore.js"
import * as Q from "./qemu.js"

interface Attached {
  readonly pid: number
  readonly qmp: Qmp.Client
  readonly scope: Scope.CloseableScope
}

const ImgInfo = Schema.parseJson(Schema.Struct({ format: Schema.String, "virtual-size": Schema.Number }))

export const make = (settings: VmSettings, options: Options) =>
  Effect.gen(function* () {
    const store = yield* VmStore
    const ownership = yield* VmOwnership
    const layerScope = yield* Effect.scope
    const qemuVersion = yield* Effect.mapError(
      Q.version(settings.qemu_binary),
      (e) =>
        new VmQemuUnavailable({
          detail: `${settings.qemu_binary} does not run (${e.message}); install qemu-system-x86`,
        }),
    )
    const dataDir = path.resolve(options.dataDir)
    yield* Effect.promise(() => fs.mkdir(path.join(dataDir, "vms"), { recursive: true }))

    const accel = yield* Effect.cached(
      settings.accel === "auto"
        ? Effect.map(Q.probeKvm(settings.qemu_binary), (kvm): "kvm" | "tcg" => (kvm ? "kvm" : "tcg")).pipe(
            Effect.tap((a) =>
              Effect.logInfo(`vm: accelerator ${a} (KVM probe ${a === "kvm" ? "ran" : "did not run"} a guest)`),
            ),
          )
        : Effect.succeed(settings.accel),
    )
    // Probe in the background so the first start does not wait for it.
    yield* Effect.forkIn(accel, layerScope)

    // VM connections and watchers live in a child scope created now, so the stop-on-shutdown
    // finalizer (added later, run earlier) still has their QMP connections.
    const vmsScope = yield* Scope.fork(layerScope, ExecutionStrategy.sequential)
    const attached = new Map<string, Attached>()
    const locks = new Map<string, Effect.Semaphore>()
    const withLock = <A, E, R>(id: string, effect: Effect.Effect<A, E, R>) => {
      let lock = locks.get(id)
      if (lock === undefined) {
        lock = Effect.unsafeMakeSemaphore(1)
        locks.set(id, lock)
      }
      return lock.withPermits(1)(effect)
    }

    const get = (id: string) =>
      Effect.flatMap(
        store.get(id),
        Option.match({ onNone: () => Effect.fail(new VmNotFound({ id })), onSome: Effect.succeed }),
      )

    const transition = (rec: VmRecord, state: VmState, patch: Partial<VmRecord> = {}) =>
      Effect.gen(function* () {
        if (rec.state !== state && !canTransition(rec.state, state)) {
          return yield* new VmInvalidState({ id: rec.spec.id, state: rec.state, operation: `move to ${state}` })
        }
        const next: VmRecord = { ...rec, ...patch, state, updated_at: Date.now() }
        yield* store.put(next)
        return next
      })

    const detach = (id: string) =>
      Effect.suspend(() => {
        const a = attached.get(id)
        attached.delete(id)
        return a === undefined ? Effect.void : Scope.close(a.scope, Exit.void)
      })

    // Records how QEMU ended when nobody asked it to (stop and kill record their own outcome).
    const onExit = (id: string, pid: number, shutdown: string | undefined) =>
      Effect.gen(function* () {
        yield* Q.waitExit(pid, 5000)
        attached.delete(id)
        const rec = yield* store.get(id)
        if (Option.isNone(rec) || rec.value.state === "stopping" || rec.value.pid !== pid) return
        if (shutdown === "guest-shutdown") {
          yield* transition(rec.value, "stopped", { pid: null, exit_reason: "guest-shutdown" })
        } else {
          const reason =
            shutdown !== undefined
              ? `qemu (pid ${pid}) shut down: ${shutdown}`
              : `qemu (pid ${pid}) exited without a SHUTDOWN event (killed or crashed)`
          yield* Effect.logWarning(`vm ${id}: ${reason}`)
          yield* transition(rec.value, "crashed", { pid: null, exit_reason: reason })
        }
      }).pipe(Effect.catchAll((e) => Effect.logError(`vm ${id}: recording its exit failed: ${e.message}`)))

    const attach = (id: string, pid: number, p: Q.Paths) =>
      Effect.gen(function* () {
        const scope = yield* Scope.fork(vmsScope, ExecutionStrategy.sequential)
        const qmp = yield* Qmp.connect(p.qmp).pipe(
          Scope.extend(scope),
          Effect.tapError(() => Scope.close(scope, Exit.void)),
        )
        const name = yield* Qmp.queryName(qmp).pipe(Effect.tapError(() => Scope.close(scope, Exit.void)))
        if (name.name !== id) {
          yield* Scope.close(scope, Exit.void)
          return yield* new VmQemuFailed({ id, operation: "attach", detail: `socket ${p.qmp} belongs to ${name.name}` })
        }
        let shutdown: string | undefined
        yield* qmp.events.pipe(
          Stream.runForEach((e) =>
            Effect.sync(() => {
              if (e.event === "SHUTDOWN") shutdown = String(e.data.reason ?? "unknown")
            }),
          ),
          Effect.forkIn(scope),
        )
        // The watcher lives in the manager's scope: when the agent stops it is interrupted and QEMU
        // keeps running; when QEMU goes, the connection closes and the exit is recorded.
        yield* qmp.closed.pipe(
          Effect.flatMap((reason) =>
            reason._tag === "QmpClosed" && reason.detail === "client closed" ? Effect.void : onExit(id, pid, shutdown),
          ),
          Effect.forkIn(vmsScope),
        )
        attached.set(id, { pid, qmp, scope })
        return qmp
      })

    const capacity: Effect.Effect<Capacity, VmStoreError> = Effect.gen(function* () {
      const records = yield* store.list
      const active = records.filter((r) => isActive(r.state))
      const cpus = os.availableParallelism()
      const stat = yield* Effect.promise(() => fs.statfs(dataDir))
      const reserved = settings.reserved_memory_mb
      return {
        cpus,
        vcpus_total: cpus * settings.cpu_overcommit,
        vcpus_used: active.reduce((n, r) => n + r.spec.vcpus, 0),
        memory_mb_total: Math.floor(os.totalmem() / 1048576),
        memory_mb_reserved: reserved,
        memory_mb_used: active.reduce((n, r) => n + r.spec.memory_mb, 0),
        disk_mb_free: Math.floor((stat.bavail * stat.bsize) / 1048576),
        running: active.length,
      }
    })

    const checkCapacity = (rec: VmRecord) =>
      Effect.gen(function* () {
        const c = yield* capacity
        const id = rec.spec.id
        const vcpus = c.vcpus_total - c.vcpus_used
        if (rec.spec.vcpus > vcpus) {
          return yield* new VmCapacityExceeded({ id, resource: "vcpus", requested: rec.spec.vcpus, available: vcpus })
        }
        const mem = c.memory_mb_total - c.memory_mb_reserved - c.memory_mb_used
        if (rec.spec.memory_mb > mem) {
          return yield* new VmCapacityExceeded({
            id,
            resource: "memory",
            requested: rec.spec.memory_mb,
            available: Math.max(0, mem),
          })
        }
        if (c.disk_mb_free < settings.min_free_disk_mb) {
          return yield* new VmCapacityExceeded({
            id,
            resource: "disk",
            requested: settings.min_free_disk_mb,
            available: c.disk_mb_free,
          })
        }
      })

    const img = (id: string, operation: string, args: ReadonlyArray<string>) =>
      Q.run(settings.qemu_img, args).pipe(
        Effect.mapError((e) => new VmQemuFailed({ id, operation, detail: e.message })),
        Effect.filterOrElse(
          (r) => r.code === 0,
          (r) => Effect.fail(new VmQemuFailed({ id, operation, detail: r.stderr.trim() || `exit ${r.code}` })),
        ),
      )

    const define = (input: VmSpecInput): Effect.Effect<VmRecord, VmError> =>
      Effect.gen(function* () {
        const id = typeof (input as { id?: unknown })?.id === "string" ? (input as { id: string }).id : "?"
        const spec = yield* Schema.decodeUnknown(VmSpec)(input).pipe(
          Effect.mapError((e) => new VmInvalidSpec({ id, detail: e.message })),
        )
        return yield* withLock(
          spec.id,
          Effect.gen(function* () {
            if (Option.isSome(yield* store.get(spec.id))) return yield* new VmAlreadyDefined({ id: spec.id })
            const p = Q.paths(dataDir, spec.id)
            const files = [
              ...spec.disks.map((d) => d.base),
              ...(spec.boot ? [spec.boot.kernel, spec.boot.initrd ?? ""] : []),
            ]
            for (const f of files.filter((f) => f !== "")) {
              const ok = yield* Effect.promise(() =>
                fs.access(f).then(
                  () => true,
                  () => false,
                ),
              )
              if (!ok) return yield* new VmInvalidSpec({ id: spec.id, detail: `${f}: no such file` })
            }
            yield* Effect.promise(() => fs.rm(p.dir, { recursive: true, force: true }))
            yield* Effect.promise(() => fs.mkdir(p.dir, { recursive: true }))
            const made = Effect.forEach(spec.disks, (disk, i) =>
              Effect.gen(function* () {
                const base = path.resolve(disk.base)
                const info = yield* img(spec.id, `qemu-img info ${base}`, ["info", "--output=json", base])
                const parsed = Schema.decodeUnknownEither(ImgInfo)(info.stdout)
                if (parsed._tag === "Left") {
                  return yield* new VmQemuFailed({
                    id: spec.id,
                    operation: `qemu-img info ${base}`,
                    detail: parsed.left.message,
                  })
                }
                const size = disk.size_mb === undefined ? [] : [`${disk.size_mb}M`]
                if (disk.size_mb !== undefined && disk.size_mb * 1048576 < parsed.right["virtual-size"]) {
                  return yield* new VmInvalidSpec({
                    id: spec.id,
                    detail: `disk ${i}: size_mb ${disk.size_mb} is smaller than its base (${parsed.right["virtual-size"]} bytes)`,
                  })
                }
                yield* img(spec.id, `qemu-img create disk ${i}`, [
                  "create",
                  "-q",
                  "-f",
                  "qcow2",
                  "-b",
                  base,
                  "-F",
                  parsed.right.format,
                  p.disk(i),
                  ...size,
                ])
              }),
            )
            yield* made.pipe(
              Effect.tapError(() => Effect.promise(() => fs.rm(p.dir, { recursive: true, force: true }))),
            )
            const now = Date.now()
            const rec: VmRecord = {
              spec,
              state: "defined",
              pid: null,
              accel: null,
              term: null,
              exit_reason: null,
              created_at: now,
              updated_at: now,
            }
            yield* store.put(rec)
            return rec
          }),
        )
      })

    // A record that says active while nothing runs is reconciled before acting on it.
    const reconcile = (rec: VmRecord) =>
      Effect.gen(function* () {
        if (!isActive(rec.state) || attached.has(rec.spec.id)) return rec
        const pid = yield* Q.livePid(Q.paths(dataDir, rec.spec.id))
        if (pid !== undefined) return rec
        return yield* transition(rec, "crashed", {
          pid: null,
          exit_reason: rec.exit_reason ?? `qemu${rec.pid === null ? "" : ` (pid ${rec.pid})`} is not running`,
        })
      })

    // Runs QEMU for a record (lock held): `starting`, daemonized QEMU, attached over QMP.
    const launch = (rec: VmRecord, term: number | null, incoming: boolean) =>
      Effect.gen(function* () {
        const id = rec.spec.id
        const a = yield* accel
        const p = Q.paths(dataDir, id)
        yield* Effect.promise(() =>
          Promise.all([
            fs.rm(p.qmp, { force: true }),
            fs.rm(p.pidfile, { force: true }),
            fs.rm(p.incoming, { force: true }),
          ]),
        )
        const starting = yield* transition(rec, "starting", { term, accel: a, pid: null, exit_reason: null })
        const failed = (detail: string) =>
          Effect.zipRight(
            transition(starting, "stopped", { exit_reason: `start failed: ${detail}` }),
            Effect.fail(new VmQemuFailed({ id, operation: incoming ? "start incoming" : "start", detail })),
          )
        const r = yield* Effect.either(Q.run(settings.qemu_binary, Q.args(rec.spec, p, a, { incoming }), 120_000))
        if (r._tag === "Left") return yield* failed(r.left.message)
        if (r.right.code !== 0) return yield* failed(r.right.stderr.trim() || `exit ${r.right.code}`)
        const pid = yield* Q.livePid(p)
        if (pid === undefined) return yield* failed("qemu daemonized but its pidfile names no live process")
        return { starting, pid, p }
      })

    const start = (id: string): Effect.Effect<VmRecord, VmError> =>
      withLock(
        id,
        Effect.gen(function* () {
          const rec = yield* Effect.flatMap(get(id), reconcile)
          if (isActive(rec.state)) return yield* new VmInvalidState({ id, state: rec.state, operation: "start" })
          yield* checkCapacity(rec)
          const term = yield* ownership.acquire(id)
          const { starting, pid, p } = yield* launch(rec, term, false)
          const running = yield* transition(starting, "running", { pid })
          yield* attach(id, pid, p).pipe(
            Effect.catchAll((e) =>
              Effect.logWarning(`vm ${id}: started (pid ${pid}) but QMP attach failed: ${e.message}`),
            ),
          )
          yield* ownership.assert(id, term)
          return running
        }),
      )

    const qmpOf = (id: string): Effect.Effect<Qmp.Client, VmError> =>
      Effect.suspend(() => {
        const a = attached.get(id)
        return a === undefined
          ? Effect.flatMap(get(id), (rec) =>
              Effect.fail(new VmInvalidState({ id, state: rec.state, operation: "use QMP (not attached)" })),
            )
          : Effect.succeed(a.qmp)
      })

    // Kills QEMU (if any) and forgets the VM here; ownership is left as it is.
    const forget = (id: string, pid: number | undefined) =>
      Effect.gen(function* () {
        // Detach first: a connection we close is not recorded as a crash by the exit watcher.
        yield* detach(id)
        if (pid !== undefined) {
          yield* signal(pid, "SIGKILL")
          yield* Q.waitExit(pid, 5000)
        }
        yield* Effect.promise(() => fs.rm(Q.paths(dataDir, id).dir, { recursive: true, force: true }))
        yield* store.remove(id)
      })

    const startIncoming = (input: VmSpecInput, options: IncomingOptions = {}): Effect.Effect<VmRecord, VmError> =>
      Effect.gen(function* () {
        const id = typeof (input as { id?: unknown })?.id === "string" ? (input as { id: string }).id : "?"
        const spec = yield* Schema.decodeUnknown(VmSpec)(input).pipe(
          Effect.mapError((e) => new VmInvalidSpec({ id, detail: e.message })),
        )
        const old = yield* store.get(spec.id)
        if (Option.isSome(old)) {
          const rec = yield* reconcile(old.value)
          if (isActive(rec.state)) {
            return yield* new VmInvalidState({ id: spec.id, state: rec.state, operation: "receive a migration" })
          }
          // A stopped copy (the VM left this node earlier): the incoming one replaces it.
          yield* withLock(spec.id, forget(spec.id, undefined))
        }
        const defined = yield* define(input)
        return yield* withLock(
          spec.id,
          Effect.gen(function* () {
            yield* checkCapacity(defined)
            const { starting, pid, p } = yield* launch(defined, null, true)
            const qmp = yield* attach(spec.id, pid, p).pipe(
              Effect.mapError((e) =>
                e._tag === "VmQemuFailed"
                  ? e
                  : new VmQemuFailed({ id: spec.id, operation: "attach", detail: e.message }),
              ),
              Effect.tapError(() => forget(spec.id, pid)),
            )
            const caps = options.capabilities ?? []
            const params = options.parameters
            yield* Effect.all([
              caps.length === 0 ? Effect.void : Qmp.migrateSetCapabilities(qmp, caps),
              params === undefined ? Effect.void : Qmp.migrateSetParameters(qmp, params),
              Qmp.migrateIncoming(qmp, options.uri ?? `unix:${p.incoming}`),
            ]).pipe(
              Effect.mapError(
                (e) => new VmQemuFailed({ id: spec.id, operation: "migrate-incoming", detail: e.message }),
              ),
              Effect.tapError(() => forget(spec.id, pid)),
            )
            return yield* transition(starting, "starting", { pid })
          }),
        )
      })

    const resumeIncoming = (id: string, sourceTerm: number): Effect.Effect<VmRecord, VmError> =>
      withLock(
        id,
        Effect.gen(function* () {
          const rec = yield* get(id)
          if (rec.state !== "starting") {
            return yield* new VmInvalidState({ id, state: rec.state, operation: "resume a migration" })
          }
          const qmp = yield* qmpOf(id)
          const term = yield* ownership.takeOver(id, sourceTerm)
          // Fenced: from here the source can no longer resume; this copy is the VM.
          yield* Qmp.cont(qmp).pipe(
            Effect.mapError((e) => new VmQemuFailed({ id, operation: "cont", detail: e.message })),
          )
          return yield* transition(rec, "running", { term })
        }),
      )

    const discardIncoming = (id: string): Effect.Effect<void, VmError> =>
      withLock(
        id,
        Effect.gen(function* () {
          const rec = yield* get(id)
          if (rec.state === "running") {
            return yield* new VmInvalidState({ id, state: rec.state, operation: "discard an incoming migration" })
          }
          const pid = attached.get(id)?.pid ?? (yield* Q.livePid(Q.paths(dataDir, id)))
          yield* forget(id, pid)
        }),
      )

    const handOff = (id: string): Effect.Effect<void, VmError> =>
      withLock(
        id,
        Effect.gen(function* () {
          const rec = yield* get(id)
          const pid = attached.get(id)?.pid ?? (yield* Q.livePid(Q.paths(dataDir, id)))
          if (isActive(rec.state)) yield* transition(rec, "stopping")
          const a = attached.get(id)
          if (pid !== undefined && a !== undefined) {
            yield* Effect.ignore(a.qmp.execute("quit", undefined, { timeout: "2 seconds" }))
            yield* Q.waitExit(pid, 5000)
          }
          // The guest's console up to the switchover stays readable here (one file per VM, replaced).
          const p = Q.paths(dataDir, id)
          yield* Effect.promise(() => fs.rename(p.console, `${p.dir}.migrated.console.log`).catch(() => undefined))
          yield* forget(id, pid !== undefined && Q.pidAlive(pid) ? pid : undefined)
        }),
      )

    const signal = (pid: number, sig: NodeJS.Signals) =>
      Effect.sync(() => {
        try {
          process.kill(pid, sig)
        } catch {}
      })

    const stop = (
      id: string,
      opts?: { readonly timeout?: Duration.DurationInput | undefined },
    ): Effect.Effect<{ readonly record: VmRecord; readonly method: StopMethod }, VmError> =>
      withLock(
        id,
        Effect.gen(function* () {
          const rec = yield* Effect.flatMap(get(id), reconcile)
          if (!isActive(rec.state)) return { record: rec, method: "already-stopped" as const }
          const pid = attached.get(id)?.pid ?? (yield* Q.livePid(Q.paths(dataDir, id)))
          const stopping = yield* transition(rec, "stopping")
          const timeout = Duration.toMillis(Duration.decode(opts?.timeout ?? settings.stop_timeout))
          const a = attached.get(id)
          let method: StopMethod = "kill"
          if (pid !== undefined) {
            if (a !== undefined) {
              yield* Effect.ignore(a.qmp.execute("system_powerdown"))
              if (yield* Q.waitExit(pid, timeout)) method = "powerdown"
              else {
                yield* Effect.logWarning(`vm ${id}: no power-off within ${timeout} ms; sending quit`)
                yield* Effect.ignore(a.qmp.execute("quit", undefined, { timeout: "2 seconds" }))
                if (yield* Q.waitExit(pid, 5000)) method = "quit"
              }
            } else {
              // No QMP (it answered garbage or hung at reattach): SIGTERM makes QEMU shut down.
              yield* signal(pid, "SIGTERM")
              if (yield* Q.waitExit(pid, Math.min(timeout, 5000))) method = "quit"
            }
            if (method === "kill") {
              yield* signal(pid, "SIGKILL")
              yield* Q.waitExit(pid, 5000)
            }
          }
          yield* detach(id)
          const record = yield* transition(stopping, "stopped", { pid: null, exit_reason: method })
          return { record, method }
        }),
      )

    const kill = (id: string): Effect.Effect<VmRecord, VmError> =>
      withLock(
        id,
        Effect.gen(function* () {
          const rec = yield* Effect.flatMap(get(id), reconcile)
          if (!isActive(rec.state)) return yield* new VmInvalidState({ id, state: rec.state, operation: "kill" })
          const pid = attached.get(id)?.pid ?? (yield* Q.livePid(Q.paths(dataDir, id)))
          const stopping = yield* transition(rec, "stopping")
          if (pid !== undefined) {
            yield* signal(pid, "SIGKILL")
            yield* Q.waitExit(pid, 5000)
          }
          yield* detach(id)
          return yield* transition(stopping, "stopped", { pid: null, exit_reason: "killed" })
        }),
      )

    const remove = (id: string): Effect.Effect<void, VmError> =>
      withLock(
        id,
        Effect.gen(function* () {
          const rec = yield* Effect.flatMap(get(id), reconcile)
          if (isActive(rec.state)) return yield* new VmInvalidState({ id, state: rec.state, operation: "delete" })
          yield* Effect.promise(() => fs.rm(Q.paths(dataDir, id).dir, { recursive: true, force: true }))
          yield* store.remove(id)
          yield* ownership.release(id)
        }),
      )

    const status = (id: string): Effect.Effect<VmStatus, VmError> =>
      Effect.gen(function* () {
        const record = yield* get(id)
        const a = attached.get(id)
        const qs = a === undefined ? undefined : yield* Effect.option(Qmp.queryStatus(a.qmp))
        return {
          record,
          qmp_status: qs !== undefined && Option.isSome(qs) ? qs.value.status : null,
          attached: a !== undefined,
        }
      })

    const consoleLog = (id: string, maxBytes = 65536): Effect.Effect<string, VmError> =>
      Effect.zipRight(
        get(id),
        Effect.promise(async () => {
          const file = Q.paths(dataDir, id).console
          const h = await fs.open(file, "r").catch(() => undefined)
          if (h === undefined) return ""
          try {
            const { size } = await h.stat()
            const len = Math.min(size, Math.max(0, maxBytes))
            const buf = Buffer.alloc(len)
            await h.read(buf, 0, len, size - len)
            return buf.toString("utf8")
          } finally {
            await h.close()
          }
        }),
      )

    // A live migration's source killed after QEMU completed the stream finds the guest paused in
    // `postmigrate`: nobody resumes it unless the term says who holds the VM. Still ours: take the
    // term over from ourselves (a destination about to resume with the old one is fenced) and run
    // it. Taken by the destination: it runs the guest; this copy is handed off, never resumed.
    const settleMigrated = (id: string, qmp: Qmp.Client) =>
      Effect.gen(function* () {
        const st = yield* Qmp.queryStatus(qmp)
        const rec = yield* get(id)
        if (st.status !== "postmigrate" || rec.term === null) return
        const taken = yield* Effect.either(ownership.takeOver(id, rec.term))
        if (taken._tag === "Right") {
          yield* transition(rec, "running", { term: taken.right })
          yield* Qmp.cont(qmp)
          return yield* Effect.logWarning(
            `vm ${id}: migrated out but not taken over; resumed here (term ${taken.right})`,
          )
        }
        // The ownership module's wording for "another node holds a newer term"; any other failure
        // (cluster state unreachable) leaves the guest paused: resuming or dropping it could be wrong.
        if (!taken.left.detail.startsWith("cannot take over")) {
          return yield* Effect.logWarning(`vm ${id}: paused after an outgoing migration; ${taken.left.message}`)
        }
        yield* Effect.logWarning(`vm ${id}: fenced after an outgoing migration (${taken.left.detail}); handing off`)
        yield* handOff(id)
      }).pipe(
        Effect.catchAll((e) => Effect.logWarning(`vm ${id}: settling an outgoing migration failed: ${e.message}`)),
      )

    // Reattach: adopt live QEMUs, mark the dead ones.
    for (const rec of yield* store.list) {
      if (!isActive(rec.state)) continue
      const id = rec.spec.id
      const p = Q.paths(dataDir, id)
      const pid = yield* Q.livePid(p)
      if (pid === undefined) {
        yield* Effect.logWarning(
          `vm ${id}: qemu${rec.pid === null ? "" : ` (pid ${rec.pid})`} not running at agent start`,
        )
        yield* Effect.ignore(
          transition(rec, "crashed", {
            pid: null,
            exit_reason: `qemu${rec.pid === null ? "" : ` (pid ${rec.pid})`} was not running when the agent started`,
          }),
        )
        continue
      }
      const adopted = yield* Effect.either(attach(id, pid, p))
      if (adopted._tag === "Left") {
        yield* Effect.logWarning(`vm ${id}: qemu pid ${pid} runs but QMP does not answer: ${adopted.left.message}`)
      } else yield* Effect.logInfo(`vm ${id}: reattached to qemu pid ${pid}`)
      if (rec.state !== "running" || rec.pid !== pid) yield* Effect.ignore(transition(rec, "running", { pid }))
      if (adopted._tag === "Right") yield* settleMigrated(id, adopted.right)
    }

    const manager: Manager = {
      define,
      start,
      stop,
      kill,
      remove,
      status,
      list: store.list,
      console: consoleLog,
      capacity,
      qmp: qmpOf,
      paths: (id) => {
        const p = Q.paths(dataDir, id)
        return { dir: p.dir, incoming: p.incoming }
      },
      startIncoming,
      resumeIncoming,
      discardIncoming,
      handOff,
      info: Effect.map(accel, (a) => ({
        qemu: qemuVersion,
        accel: a,
        unattached: [] as Array<string>,
      })).pipe(
        Effect.zip(Effect.orElseSucceed(store.list, () => [] as ReadonlyArray<VmRecord>)),
        Effect.map(([info, records]) => ({
          ...info,
          unattached: records.filter((r) => r.state === "running" && !attached.has(r.spec.id)).map((r) => r.spec.id),
        })),
      ),
    }

    yield* Effect.addFinalizer(() =>
      settings.stop_on_shutdown
        ? Effect.forEach([...attached.keys()], (id) => Effect.ignore(stop(id)), {
            concurrency: "unbounded",
            discard: true,
          })
        : Effect.void,
    )
    return manager
  })

export const unavailable = (reason: VmQemuUnavailable) =>
  Effect.map(VmStore, (store): Manager => {
    const no = Effect.fail(reason)
    return {
      define: () => no,
      start: () => no,
      stop: () => no,
      kill: () => no,
      remove: () => no,
      status: (id) =>
        Effect.flatMap(
          store.get(id),
          Option.match({
            onNone: () => Effect.fail(new VmNotFound({ id })),
            onSome: (record) => Effect.succeed({ record, qmp_status: null, attached: false }),
          }),
        ),
      list: store.list,
      console: () => no,
      capacity: no,
      qmp: () => no,
      paths: (id) => ({ dir: `vms/${id}`, incoming: `vms/${id}/incoming.sock` }),
      startIncoming: () => no,
      resumeIncoming: () => no,
      discardIncoming: () => no,
      handOff: () => no,
      info: no,
    }
  })
