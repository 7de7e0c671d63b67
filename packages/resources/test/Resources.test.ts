import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:net"
import { availableParallelism, hostname, tmpdir, totalmem } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Boot, Component } from "@novacron/init"
import { Cause, Context, Effect, Exit, Layer, Schema, Scope } from "effect"
import { ConflictCheck, Profile, ResourceValidator } from "../src/index.js"

const GiB = 1024 ** 3
const fixture = fileURLToPath(new URL("./fixtures/hold-lock.ts", import.meta.url))
const tmp = () => mkdtempSync(join(tmpdir(), "novacron-res-"))
const settings = (s: Partial<ResourceValidator.Settings> = {}) => Schema.decodeSync(ResourceValidator.Settings)(s)

describe("ResourceValidator with injected measurements", () => {
  const table: ReadonlyArray<{
    profile: Profile.ProfileName
    measured: ResourceValidator.Measurements
    expected: string | undefined
  }> = [
    { profile: "minimal", measured: { cpus: 2, memory: 4 * GiB, disk: 20 * GiB }, expected: undefined },
    {
      profile: "production",
      measured: { cpus: 2, memory: 7.5 * GiB, disk: 50 * GiB },
      expected:
        'insufficient resources for profile "production": CPUs: measured 2, required 4; memory: measured 7.5 GiB, required 8 GiB; disk: measured 50 GiB, required 100 GiB',
    },
    { profile: "production", measured: { cpus: 16, memory: 64 * GiB, disk: 2048 * GiB }, expected: undefined },
    {
      profile: "production",
      measured: { cpus: 8, memory: 64 * GiB, disk: 99 * GiB },
      expected: 'insufficient resources for profile "production": disk: measured 99 GiB, required 100 GiB',
    },
    {
      profile: "minimal",
      measured: { cpus: 1, memory: 512 * 1024 ** 2, disk: 20 * GiB },
      expected:
        'insufficient resources for profile "minimal": CPUs: measured 1, required 2; memory: measured 512 MiB, required 2 GiB',
    },
  ]
  for (const row of table) {
    it.effect(`${row.profile} ${JSON.stringify(row.measured)} -> ${row.expected ? "fails" : "passes"}`, () =>
      Effect.gen(function* () {
        const exit = yield* Effect.exit(
          ResourceValidator.validate(settings({ resource_profile: row.profile }), Effect.succeed(row.measured)),
        )
        if (row.expected === undefined) expect(Exit.isSuccess(exit)).toBe(true)
        else {
          expect(Exit.isFailure(exit)).toBe(true)
          const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
          expect(error?._tag === "Some" && error.value.message).toBe(row.expected)
        }
      }),
    )
  }

  it("overrides replace the profile's minimums, 0 keeps them", () => {
    expect(Profile.requirements("production", { min_cpus: 1, min_memory: 0, min_disk: GiB })).toEqual({
      cpus: 1,
      memory: 8 * GiB,
      disk: GiB,
    })
  })
})

describe("ResourceValidator on this host", () => {
  it.effect("measures CPUs, memory and the free disk that df reports", () =>
    Effect.gen(function* () {
      const dir = tmp()
      const m = yield* ResourceValidator.measure(join(dir, "not", "yet", "created"))
      expect(m.cpus).toBe(availableParallelism())
      expect(m.memory).toBe(totalmem())
      const df = Number(execFileSync("df", ["-B1", "--output=avail", dir], { encoding: "utf8" }).trim().split("\n")[1])
      expect(Math.abs(m.disk - df) / df).toBeLessThan(0.01)
    }),
  )
})

/** Starts the lock-holding child; resolves with its first JSON line. */
const child = (dir: string) => {
  const proc = spawn(process.execPath, ["--conditions=@novacron/source", "--import", "tsx", fixture, dir], {
    stdio: ["pipe", "pipe", "inherit"],
  })
  const first = new Promise<{ locked?: number; tookOverFrom?: number | null; error?: string; tag?: string }>((ok) => {
    createInterface({ input: proc.stdout! }).once("line", (line) => ok(JSON.parse(line)))
  })
  return { proc, first }
}
const exited = (proc: ChildProcess) =>
  new Promise<void>((ok) => (proc.exitCode !== null ? ok() : proc.once("exit", () => ok())))

describe("data-directory lock, two real processes", () => {
  it.live("a second agent on the same directory fails naming the holder; the holder's exit releases it", () =>
    Effect.gen(function* () {
      const dir = tmp()
      const holder = child(dir)
      const held = yield* Effect.promise(() => holder.first)
      expect(held.locked).toBe(holder.proc.pid)
      const lockFile = join(dir, ConflictCheck.lockFileName)
      expect(readFileSync(lockFile, "utf8").split("\n")[0]).toBe(String(holder.proc.pid))

      const error = yield* Effect.flip(Effect.scoped(ConflictCheck.lockDataDir(dir)))
      expect(error.message).toBe(
        `data directory ${dir} is in use by another agent (pid ${holder.proc.pid}); lock file ${lockFile}`,
      )

      holder.proc.stdin!.end()
      yield* Effect.promise(() => exited(holder.proc))
      expect(existsSync(lockFile)).toBe(false)
      const mine = yield* Effect.scoped(ConflictCheck.lockDataDir(dir))
      expect(mine.tookOverFrom).toBeUndefined()
      expect(existsSync(lockFile)).toBe(false)
    }),
  )

  it.live("a lock left by a killed process is taken over; ours blocks a child and is released on scope close", () =>
    Effect.gen(function* () {
      const dir = tmp()
      const holder = child(dir)
      expect((yield* Effect.promise(() => holder.first)).locked).toBe(holder.proc.pid)
      holder.proc.kill("SIGKILL")
      yield* Effect.promise(() => exited(holder.proc))
      const lockFile = join(dir, ConflictCheck.lockFileName)
      expect(existsSync(lockFile)).toBe(true)

      const scope = yield* Scope.make()
      const lock = yield* Scope.extend(ConflictCheck.lockDataDir(dir), scope)
      expect(lock.tookOverFrom).toBe(holder.proc.pid)
      expect(readFileSync(lockFile, "utf8").split("\n")[0]).toBe(String(process.pid))

      const second = child(dir)
      const refused = yield* Effect.promise(() => second.first)
      expect(refused).toEqual({
        tag: "DataDirInUse",
        error: `data directory ${dir} is in use by another agent (pid ${process.pid}); lock file ${lockFile}`,
      })
      yield* Effect.promise(() => exited(second.proc))
      yield* Scope.close(scope, Exit.void)
      expect(existsSync(lockFile)).toBe(false)
    }),
  )

  it.live("two processes racing for a stale lock: exactly one wins", () =>
    Effect.gen(function* () {
      const dir = tmp()
      // A pid that is certainly dead: a process that has already exited.
      const dead = spawn(process.execPath, ["-e", ""])
      yield* Effect.promise(() => exited(dead))
      writeFileSync(join(dir, ConflictCheck.lockFileName), `${dead.pid}\n${hostname()}\n`)
      const a = child(dir)
      const b = child(dir)
      const results = yield* Effect.promise(() => Promise.all([a.first, b.first]))
      const winners = results.filter((r) => r.locked !== undefined)
      expect(winners).toHaveLength(1)
      // Usually the winner is the one that moved the stale lock aside; but the other may link its
      // own lock in the moment between that move and the mover's link, and then wins a lock it
      // found free (it reports no takeover). Either way exactly one holds it.
      expect([dead.pid, null, undefined]).toContain(winners[0]!.tookOverFrom)
      const loser = results.find((r) => r.locked === undefined)!
      expect(loser.error).toContain(`in use by another agent (pid ${winners[0]!.locked})`)
      a.proc.stdin!.end()
      b.proc.stdin!.end()
      yield* Effect.promise(() => Promise.all([exited(a.proc), exited(b.proc)]))
    }),
  )
})

describe("data-directory lock: whose pid is it", () => {
  const startTime = (pid: number) => {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!
  }

  it.live("a live pid with another start time is a reused pid: the lock is stale and taken over", () =>
    Effect.gen(function* () {
      const other = spawn("sleep", ["30"])
      const pid = other.pid!
      const dir = tmp()
      const lockFile = join(dir, ConflictCheck.lockFileName)
      // The real owner of that pid: refused.
      writeFileSync(lockFile, `${pid}\n${hostname()}\n${startTime(pid)}\n`)
      const refused = yield* Effect.flip(Effect.scoped(ConflictCheck.lockDataDir(dir)))
      expect(refused.message).toBe(
        `data directory ${dir} is in use by another agent (pid ${pid}); lock file ${lockFile}`,
      )
      // A lock left by an earlier process that had the same pid: taken over.
      writeFileSync(lockFile, `${pid}\n${hostname()}\n${Number(startTime(pid)) - 1}\n`)
      const lock = yield* Effect.scoped(ConflictCheck.lockDataDir(dir))
      expect(lock.tookOverFrom).toBe(pid)
      other.kill("SIGKILL")
      yield* Effect.promise(() => exited(other))
    }),
  )

  it.effect("a lock written on another host is never taken over, and the message says what to do", () =>
    Effect.gen(function* () {
      const dir = tmp()
      const lockFile = join(dir, ConflictCheck.lockFileName)
      writeFileSync(lockFile, "4242\nother-host\n123\n")
      const error = yield* Effect.flip(Effect.scoped(ConflictCheck.lockDataDir(dir)))
      expect(error.message).toBe(
        `data directory ${dir} is locked by pid 4242 on host other-host; if that agent is gone, delete ${lockFile}`,
      )
      expect(readFileSync(lockFile, "utf8")).toBe("4242\nother-host\n123\n")
    }),
  )
})

const listen = (port = 0) =>
  Effect.acquireRelease(
    Effect.async<Server>((resume) => {
      const s = createServer()
      s.listen(port, "127.0.0.1", () => resume(Effect.succeed(s)))
    }),
    (s) =>
      Effect.async<void>((resume) => {
        s.close(() => resume(Effect.void))
      }),
  )
const portOf = (s: Server) => (s.address() as { port: number }).port

describe("ports", () => {
  it.scoped("names every taken port with its setting", () =>
    Effect.gen(function* () {
      const a = portOf(yield* listen())
      const b = portOf(yield* listen())
      const error = yield* Effect.flip(
        ConflictCheck.checkPorts([
          { setting: "network.bind_port", host: "127.0.0.1", port: a },
          { setting: "system.health_check_port", host: "127.0.0.1", port: 0 },
          { setting: "monitoring.metrics_port", host: "127.0.0.1", port: b },
        ]),
      )
      expect(error.message).toBe(
        `ports unavailable: 127.0.0.1:${a} (network.bind_port) is already in use, 127.0.0.1:${b} (monitoring.metrics_port) is already in use`,
      )
    }),
  )

  it.effect("an address that is not on this host is named as such", () =>
    Effect.gen(function* () {
      // 192.0.2.0/24 is TEST-NET-1: never assigned to a local interface.
      const error = yield* Effect.flip(
        ConflictCheck.checkPorts([{ setting: "network.bind_port", host: "192.0.2.1", port: 7700 }]),
      )
      expect(error.message).toBe(
        "ports unavailable: 192.0.2.1:7700 (network.bind_port) has an address not on this host (EADDRNOTAVAIL)",
      )
    }),
  )

  it.scoped("a free port passes and stays free", () =>
    Effect.gen(function* () {
      const s = yield* listen()
      const free = portOf(s)
      yield* Effect.async<void>((resume) => {
        s.close(() => resume(Effect.void))
      })
      yield* ConflictCheck.checkPorts([{ setting: "network.bind_port", host: "127.0.0.1", port: free }])
      yield* listen(free)
    }),
  )
})

describe("as @novacron/init components", () => {
  it.live("resources and conflict-check boot under the kernel; the lock lives as long as the node", () =>
    Effect.gen(function* () {
      const dir = tmp()
      const lockFile = join(dir, ConflictCheck.lockFileName)
      const conflict = Schema.decodeSync(ConflictCheck.Settings)({
        data_dir: dir,
        bind_port: 0,
        health_check_port: 0,
        metrics_port: 0,
      })
      yield* Effect.scoped(
        Effect.gen(function* () {
          const node = yield* Boot.boot([
            Component.place(ConflictCheck.component(conflict), { phase: "pre-init", criticality: "CRITICAL" }),
            Component.place(
              ResourceValidator.component(settings({ data_dir: dir }), {
                measurements: Effect.succeed({ cpus: 2, memory: 4 * GiB, disk: 10 * GiB }),
              }),
              { phase: "pre-init", criticality: "CRITICAL" },
            ),
          ])
          const ctx = node.context as Context.Context<ConflictCheck.ConflictCheck | ResourceValidator.ResourceValidator>
          expect(Context.get(ctx, ConflictCheck.ConflictCheck).pid).toBe(process.pid)
          expect(Context.get(ctx, ResourceValidator.ResourceValidator).measured.cpus).toBe(2)
          expect(existsSync(lockFile)).toBe(true)
          const health = yield* node.health
          // Exact values: "not unhealthy" would also pass a degraded node.
          expect(health.status).toBe("healthy")
          expect(health.components.map((c) => [c.name, c.health])).toEqual([
            ["conflict-check", "healthy"],
            ["resources", "healthy"],
          ])
        }),
      )
      expect(existsSync(lockFile)).toBe(false)
    }),
  )

  it.scoped("the conflict-check layer fails on a taken port and releases the lock it took", () =>
    Effect.gen(function* () {
      const dir = tmp()
      const port = portOf(yield* listen())
      const conflict = Schema.decodeSync(ConflictCheck.Settings)({
        data_dir: dir,
        bind_port: port,
        health_check_port: 0,
        metrics_port: 0,
      })
      const error = yield* Effect.flip(Effect.scoped(Layer.build(ConflictCheck.layer(conflict))))
      expect(error._tag).toBe("PortsInUse")
      expect(existsSync(join(dir, ConflictCheck.lockFileName))).toBe(false)
    }),
  )

  it.scoped(
    "with a lock the host already holds, the layer uses it, checks it, and leaves its release to the host",
    () =>
      Effect.gen(function* () {
        const dir = tmp()
        const lockFile = join(dir, ConflictCheck.lockFileName)
        const conflict = Schema.decodeSync(ConflictCheck.Settings)({ data_dir: dir, bind_port: 0 })
        const held = yield* ConflictCheck.lockDataDir(dir)
        // Without `held` the component finds the lock taken by this very process and refuses.
        const refused = yield* Effect.flip(Effect.scoped(Layer.build(ConflictCheck.layer(conflict))))
        expect(refused._tag).toBe("DataDirInUse")
        const ctx = yield* Effect.scoped(Layer.build(ConflictCheck.layer(conflict, { held })))
        expect(Context.get(ctx, ConflictCheck.ConflictCheck)).toBe(held)
        expect(readFileSync(lockFile, "utf8").split("\n")[0]).toBe(String(process.pid))
        // A held lock someone removed is not trusted.
        writeFileSync(lockFile, "1\nother\n\n")
        const lost = yield* Effect.flip(Effect.scoped(Layer.build(ConflictCheck.layer(conflict, { held }))))
        expect(lost.message).toBe(`cannot lock ${lockFile}: no longer holds pid ${process.pid}`)
      }),
  )

  it.live("a data directory under /proc fails with an error instead of spinning in mkdir", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Effect.scoped(ConflictCheck.lockDataDir(`/proc/novacron-${process.pid}/data`)))
      expect(error._tag).toBe("LockError")
      expect(error.message).toMatch(/^cannot lock \/proc\/novacron-\d+\/data\/novacron.lock: ENOENT/)
    }).pipe(Effect.timeout("20 seconds")),
  )

  it.effect("monitoring ports are checked on the monitoring address, not the cluster listener's", () =>
    Effect.sync(() => {
      const s = Schema.decodeSync(ConflictCheck.Settings)({ listen_address: "0.0.0.0" })
      expect(s.monitoring_address).toBe("127.0.0.1")
    }),
  )
})
