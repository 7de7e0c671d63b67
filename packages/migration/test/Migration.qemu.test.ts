// Real QEMU under TCG, two agents in this process over real mTLS on loopback: a counting guest
// migrated A -> B (precopy, multifd), then cancelled, then with its destination killed, then a guest
// dirtying memory faster than a throttled link, then with its source agent SIGKILLed in precopy and
// at the switchover (the source then runs as a child process), then with the link cut (nft) and
// restored.
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import * as tls from "node:tls"
import { pathToFileURL } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { requireService } from "@novacron/testing"
import { Qmp } from "@novacron/vm"
import { Chunk, Effect, Exit, Fiber, Scope, Stream } from "effect"
import type * as Migration from "../src/Migration.js"
import * as MigrationSettings from "../src/MigrationSettings.js"
import * as Wire from "../src/Wire.js"
import {
  type Agent,
  agents,
  type Certificates,
  type CounterGuest,
  certificates,
  counterGuest,
  eventually,
  guest,
  haveQemu,
  spec,
  sums,
  ticks,
} from "./agents.js"

const enabled = await haveQemu()

// Cutting the link drops the tunnel's packets on loopback with nft: root only.
const nftTable = `novacron_migtest_${process.pid}`
const nft = (script: string) => execFileSync("nft", ["-f", "-"], { input: script, stdio: ["pipe", "pipe", "pipe"] })
const canCut =
  enabled &&
  (await requireService("nft (root, to cut the migration link)", () => {
    if (process.getuid?.() !== 0) throw new Error("not root")
    nft(`table inet ${nftTable}_probe {}\ndelete table inet ${nftTable}_probe`)
    return true
  }))

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")
  } catch {
    return false
  }
}

const qemusUnder = (dir: string) =>
  fs
    .readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return fs.readFileSync(`/proc/${d}/cmdline`, "utf8").includes(`${dir}/`)
      } catch {
        return false
      }
    })
    .map(Number)

describe.skipIf(!enabled)("live migration between two agents on real QEMU", () => {
  let g: CounterGuest
  let root: string
  let scope: Scope.CloseableScope
  let a: Agent
  let b: Agent
  let certs: Certificates
  let start: (node: "node-a" | "node-b") => Effect.Effect<Agent>
  const pids = new Set<number>()

  beforeAll(async () => {
    g = counterGuest(guest())
    root = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-mig-"))
    scope = Effect.runSync(Scope.make())
    certs = await Effect.runPromise(certificates)
    ;({ a, b, start } = await Effect.runPromise(agents(root, certs, scope)))
  }, 120_000)

  afterAll(async () => {
    // Every QEMU started under this file's data dirs (daemonized: not our children).
    for (const pid of [...pids, ...(root ? qemusUnder(root) : [])]) {
      try {
        process.kill(pid, "SIGKILL")
      } catch {}
    }
    if (scope) await Effect.runPromise(Scope.close(scope, Exit.void))
    if (root) fs.rmSync(root, { recursive: true, force: true })
  })

  const consoleOf = (agent: Agent, id: string) => Effect.orElseSucceed(agent.vms.console(id, 1 << 20), () => "")
  const boot = (agent: Agent, id: string, dirty = false) =>
    Effect.gen(function* () {
      yield* Effect.orDie(agent.vms.define(spec(g, id, 128, dirty)))
      const rec = yield* Effect.orDie(agent.vms.start(id))
      pids.add(rec.pid!)
      yield* eventually(
        `${id} counting`,
        Effect.map(consoleOf(agent, id), (t) => ticks(t).length >= 3),
        90,
      )
      return rec
    })
  /** QEMU processes whose argv names a path under the agent's data dir. */
  const qemusOf = (agent: Agent) => qemusUnder(`${agent.dataDir}/vms`).filter(alive)
  /** QEMU processes of one VM on an agent. */
  const qemusOfVm = (agent: Agent, id: string) => qemusUnder(`${agent.dataDir}/vms/${id}`).filter(alive)
  /** [the agent that has the VM, the other one]. */
  const holder = (id: string) =>
    Effect.map(Effect.either(a.vms.status(id)), (st): [Agent, Agent] => (st._tag === "Right" ? [a, b] : [b, a]))
  /** Runs a migration, collecting its progress; returns the reports and the result's exit. */
  const run = (
    from: Agent,
    id: string,
    to: Agent,
    options?: Migration.MigrateOptions,
    during?: (h: Migration.Handle) => Effect.Effect<void>,
  ) =>
    Effect.scoped(
      Effect.gen(function* () {
        const h = yield* Effect.orDie(from.migration.migrate(id, to.node, options))
        const collected = yield* Effect.fork(Stream.runCollect(h.progress))
        if (during) yield* during(h)
        const exit = yield* Effect.exit(h.result)
        const reports = Chunk.toReadonlyArray(yield* Fiber.join(collected))
        return { exit, reports, handle: h }
      }),
    )

  it.live(
    "a counting guest moves A -> B: the counter continues, memory checksum matches, the term moves, the source forgets it",
    () =>
      Effect.gen(function* () {
        const started = yield* boot(a, "web-1")
        const before = yield* consoleOf(a, "web-1")
        const { exit, reports } = yield* run(a, "web-1", b)
        if (Exit.isFailure(exit)) throw new Error(`migration failed: ${exit.cause.toString()}`)
        const result = exit.value
        // Ownership moved: B holds the next term, A's is stale.
        expect(result.term).toBe(started.term! + 1)
        yield* b.ownership.assert("web-1", result.term)
        const stale = yield* Effect.flip(a.ownership.assert("web-1", started.term!))
        expect(stale.message).toContain("node node-b holds term")
        // The source forgot the VM and its QEMU is gone; B runs it.
        expect((yield* Effect.flip(a.vms.status("web-1")))._tag).toBe("VmNotFound")
        expect(alive(started.pid!)).toBe(false)
        const onB = yield* Effect.orDie(b.vms.status("web-1"))
        expect(onB).toMatchObject({ attached: true, qmp_status: "running", record: { state: "running" } })
        pids.add(onB.record.pid!)
        // The guest keeps counting on B from where it was; no reset (one READY), no tick missing.
        const lastBefore = ticks(before).at(-1)![0]
        yield* eventually(
          "ticks and a checksum on B",
          Effect.map(consoleOf(b, "web-1"), (t) => ticks(t).length >= 25 && sums(t).length >= 1),
          60,
        )
        const after = yield* consoleOf(b, "web-1")
        expect(after).not.toContain("NOVACRON-GUEST-READY")
        const afterTicks = ticks(after)
        expect(afterTicks[0]![0]).toBeGreaterThan(lastBefore)
        // Across the two consoles (a line may be cut by the switchover) ticks are consecutive.
        const sourceText = fs.readFileSync(path.join(a.dataDir, "vms/web-1.migrated.console.log"), "utf8")
        const all = ticks(`${sourceText}${after}`)
        expect(all.map(([n]) => n)).toEqual(all.map((_, i) => all[0]![0] + i))
        // Memory survived: every checksum the guest printed, on both sides, is the first one.
        const allSums = sums(`${sourceText}${after}`)
        expect(allSums.length).toBeGreaterThanOrEqual(2)
        expect(new Set(allSums).size).toBe(1)
        // The guest's clock shows no gap beyond its sleep plus the measured downtime (and slack for TCG).
        const gaps = all.slice(1).map(([, t], i) => t - all[i]![1])
        expect(Math.max(...gaps)).toBeLessThan(1.5 + (result.downtimeMs ?? 0) / 1000)
        // Result and progress.
        expect(result).toMatchObject({ vm: "web-1", to: "node-b", mode: "precopy" })
        expect(result.downtimeMs).toBeGreaterThanOrEqual(0)
        expect(result.wireBytes).toBeGreaterThan(result.transferred * 0.5)
        expect(reports.at(-1)!.phase).toBe("completed")
        const order = ["preparing", "setup", "precopy", "postcopy", "switchover", "completed"]
        reports.forEach((r, i) => {
          if (i === 0) return
          expect(order.indexOf(r.phase)).toBeGreaterThanOrEqual(order.indexOf(reports[i - 1]!.phase))
          expect(r.transferred).toBeGreaterThanOrEqual(reports[i - 1]!.transferred)
        })
        expect(reports.some((r) => r.phase === "precopy" && r.transferred > 0)).toBe(true)
      }),
    150_000,
  )

  // A slow link (the policy caps QEMU at the predicted bandwidth) keeps the next ones mid-way long enough.
  const slow = { predictedBandwidth: 3_000_000 }

  it.live(
    "cancel mid-way: the destination QEMU exits and its agent forgets the VM; the guest keeps running on the source",
    () =>
      Effect.gen(function* () {
        const before = yield* Effect.orDie(b.vms.status("web-1"))
        const { exit, reports } = yield* run(b, "web-1", a, slow, (h) =>
          Effect.gen(function* () {
            yield* eventually(
              "a QEMU receiving on A",
              Effect.sync(() => qemusOf(a).length === 1),
              60,
            )
            yield* Effect.sleep("1500 millis")
            yield* h.cancel
          }),
        )
        expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("MigrationCancelled")
        expect(reports.some((r) => r.transferred > 0)).toBe(true)
        yield* eventually(
          "no QEMU left on A",
          Effect.sync(() => qemusOf(a).length === 0),
          20,
        )
        yield* eventually(
          "A forgot the VM",
          Effect.map(Effect.either(a.vms.status("web-1")), (e) => e._tag === "Left"),
          20,
        )
        expect(fs.existsSync(path.join(a.dataDir, "vms/web-1"))).toBe(false)
        const after = yield* Effect.orDie(b.vms.status("web-1"))
        expect(after).toMatchObject({ qmp_status: "running", record: { state: "running", pid: before.record.pid } })
        yield* b.ownership.assert("web-1", before.record.term!)
        const n = ticks(yield* consoleOf(b, "web-1")).at(-1)![0]
        yield* eventually(
          "still counting on B",
          Effect.map(consoleOf(b, "web-1"), (t) => ticks(t).at(-1)![0] > n + 5),
          30,
        )
      }),
    90_000,
  )

  it.live(
    "destination QEMU killed mid-way: the migration fails, the source keeps the running copy and its term",
    () =>
      Effect.gen(function* () {
        const before = yield* Effect.orDie(b.vms.status("web-1"))
        const { exit } = yield* run(b, "web-1", a, slow, () =>
          Effect.gen(function* () {
            yield* eventually(
              "a QEMU receiving on A",
              Effect.sync(() => qemusOf(a).length === 1),
              60,
            )
            yield* Effect.sleep("1500 millis")
            for (const pid of qemusOf(a)) process.kill(pid, "SIGKILL")
          }),
        )
        expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("MigrationFailed")
        yield* eventually(
          "A forgot the VM",
          Effect.map(Effect.either(a.vms.status("web-1")), (e) => e._tag === "Left"),
          20,
        )
        const after = yield* Effect.orDie(b.vms.status("web-1"))
        expect(after).toMatchObject({ qmp_status: "running", record: { state: "running", pid: before.record.pid } })
        yield* b.ownership.assert("web-1", before.record.term!)
        const n = ticks(yield* consoleOf(b, "web-1")).at(-1)![0]
        yield* eventually(
          "still counting on B",
          Effect.map(consoleOf(b, "web-1"), (t) => ticks(t).at(-1)![0] > n + 5),
          30,
        )
      }),
    90_000,
  )

  it.live(
    "the caller's scope closing mid-way rolls back like a cancel: the source keeps running, the destination is cleaned up",
    () =>
      Effect.gen(function* () {
        const before = yield* Effect.orDie(b.vms.status("web-1"))
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* Effect.orDie(b.migration.migrate("web-1", a.node, slow))
            yield* eventually(
              "a QEMU receiving on A",
              Effect.sync(() => qemusOf(a).length === 1),
              60,
            )
            yield* Effect.sleep("1 second")
          }),
        )
        yield* eventually(
          "no QEMU left on A",
          Effect.sync(() => qemusOf(a).length === 0),
          20,
        )
        yield* eventually(
          "A forgot the VM",
          Effect.map(Effect.either(a.vms.status("web-1")), (e) => e._tag === "Left"),
          20,
        )
        const after = yield* Effect.orDie(b.vms.status("web-1"))
        expect(after).toMatchObject({ qmp_status: "running", record: { state: "running", pid: before.record.pid } })
        const migrateInfo = yield* Effect.orDie(Effect.flatMap(b.vms.qmp("web-1"), Qmp.queryMigrate))
        expect(migrateInfo.status).toBe("cancelled")
      }),
    90_000,
  )

  it.live(
    "on an internet row the tunnel carries zstd both ways: fewer bytes on the wire than QEMU sent, the guest intact",
    () =>
      Effect.gen(function* () {
        const row = { transport: "tcp-multistream", compression: { algorithm: "zstd", level: 9 } } as const
        const before = ticks(yield* consoleOf(b, "web-1")).at(-1)![0]
        const { exit } = yield* run(b, "web-1", a, { row })
        if (Exit.isFailure(exit)) throw new Error(`migration failed: ${exit.cause.toString()}`)
        const result = exit.value
        expect(result.wireBytes).toBeLessThan(result.transferred * 0.8)
        const onA = yield* Effect.orDie(a.vms.status("web-1"))
        pids.add(onA.record.pid!)
        expect(onA).toMatchObject({ qmp_status: "running", record: { state: "running" } })
        yield* eventually(
          "counting on A with a checksum",
          Effect.map(consoleOf(a, "web-1"), (t) => ticks(t).length >= 25 && sums(t).length >= 1),
          60,
        )
        const text = yield* consoleOf(a, "web-1")
        expect(ticks(text)[0]![0]).toBeGreaterThan(before)
        const first = sums(fs.readFileSync(path.join(a.dataDir, "vms/web-1.migrated.console.log"), "utf8"))[0]
        expect(new Set([first, ...sums(text)])).toEqual(new Set([first]))
      }),
    90_000,
  )

  it.live(
    "a guest dirtying memory faster than a throttled link converges (auto-converge, then postcopy) and keeps counting",
    () =>
      Effect.gen(function* () {
        yield* boot(a, "dirty-1", true)
        const settings = MigrationSettings.decode({ postcopy: true, postcopy_after_passes: 4, poll_interval: "100ms" })
        const { exit, reports } = yield* run(a, "dirty-1", b, { predictedBandwidth: 8_000_000, settings })
        if (Exit.isFailure(exit)) throw new Error(`migration failed: ${exit.cause.toString()}`)
        const result = exit.value
        expect(result.mode).toBe("postcopy")
        const converged = result.mode === "postcopy" || reports.some((r) => r.throttle > 0)
        expect(converged).toBe(true)
        // Precopy alone did not converge at this rate: the guest dirtied faster than the cap.
        expect(Math.max(...reports.map((r) => r.dirtyRate))).toBeGreaterThan(0)
        const onB = yield* Effect.orDie(b.vms.status("dirty-1"))
        pids.add(onB.record.pid!)
        expect(onB).toMatchObject({ qmp_status: "running", record: { state: "running" } })
        const n = ticks(fs.readFileSync(path.join(a.dataDir, "vms/dirty-1.migrated.console.log"), "utf8")).at(-1)![0]
        yield* eventually(
          "counting on B after the source's last tick",
          Effect.map(consoleOf(b, "dirty-1"), (t) => (ticks(t).at(-1)?.[0] ?? 0) > n + 5),
          60,
        )
      }),
    120_000,
  )

  /**
   * Stops the agent that has `id` (its QEMU runs on), runs a source agent on its data dir as a child
   * process that migrates `id` to the other agent, SIGKILLs it once `killWhen` holds for its progress
   * reports, then starts the agent again; returns the reports it printed and both agents.
   */
  const crashSource = (id: string, killWhen: (reports: ReadonlyArray<Migration.Progress>) => boolean) =>
    Effect.gen(function* () {
      const [from, dst] = yield* holder(id)
      yield* Scope.close(from.scope, Exit.void)
      const config = {
        node: from.node,
        dataDir: from.dataDir,
        cert: from === a ? certs.a : certs.b,
        ca: certs.ca.certPem,
        peer: dst.node,
        peerAddress: dst.migration.address,
        vm: id,
        predictedBandwidth: slow.predictedBandwidth,
      }
      // node itself with tsx's loader (tsx's CLI would put a process between: the kill would miss the agent).
      const loader = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm")).href
      const child = spawn(
        process.execPath,
        ["--import", loader, path.join(import.meta.dirname, "source-agent.ts"), JSON.stringify(config)],
        { stdio: ["ignore", "pipe", "pipe"] },
      )
      const reports: Array<Migration.Progress> = []
      let stderr = ""
      let pending = ""
      child.stdout.on("data", (d: Buffer) => {
        pending += d.toString()
        const lines = pending.split("\n")
        pending = lines.pop()!
        for (const l of lines) {
          if (!l.startsWith('{"migration"')) continue
          reports.push(JSON.parse(l))
          // What SIGKILL leaves: QEMU (daemonized) runs on, every socket of the agent dies, nothing is sent.
          if (killWhen(reports)) child.kill("SIGKILL")
        }
      })
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString()
      })
      yield* Effect.async<void>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) resume(Effect.void)
        else child.once("exit", () => resume(Effect.void))
      }).pipe(
        Effect.timeoutFail({
          duration: "60 seconds",
          onTimeout: () => new Error(`child agent: ${stderr.slice(-2000)}`),
        }),
        Effect.orDie,
        Effect.ensuring(Effect.sync(() => child.kill("SIGKILL"))),
      )
      expect(child.signalCode, stderr.slice(-2000)).toBe("SIGKILL")
      const src = yield* start(from.node as "node-a" | "node-b")
      if (from === a) a = src
      else b = src
      return { reports, src, dst }
    })

  it.live(
    "source agent SIGKILLed mid-way (precopy) and started again: the guest runs on the source under its term, the destination's QEMU is gone, never two running copies",
    () =>
      Effect.gen(function* () {
        const [src0, dst0] = yield* holder("web-1")
        const before = yield* Effect.orDie(src0.vms.status("web-1"))
        expect(before).toMatchObject({ qmp_status: "running", record: { state: "running" } })
        const term = before.record.term!
        // The destination's incoming copy must never run, whatever happens below.
        let bRan = false
        const watcher = yield* Effect.fork(
          Effect.gen(function* () {
            for (;;) {
              const st = yield* Effect.either(dst0.vms.status("web-1"))
              if (st._tag === "Right" && st.right.qmp_status === "running") bRan = true
              yield* Effect.sleep("100 millis")
            }
          }),
        )
        const { reports, src, dst } = yield* crashSource(
          "web-1",
          (rs) =>
            qemusOfVm(dst0, "web-1").length === 1 &&
            rs.some((r) => r.phase === "precopy" && r.transferred > 2 * 1024 * 1024),
        )
        expect(reports.at(-1)!.phase).toBe("precopy")
        // The destination saw its control connection drop without a switchover: its copy is discarded.
        yield* eventually(
          "no QEMU of web-1 left on the destination",
          Effect.sync(() => qemusOfVm(dst, "web-1").length === 0),
          20,
        )
        yield* eventually(
          "the destination forgot web-1",
          Effect.map(Effect.either(dst.vms.status("web-1")), (e) => e._tag === "Left"),
          20,
        )
        yield* Fiber.interrupt(watcher)
        expect(bRan).toBe(false)
        // The source re-attached to the same QEMU, which runs the guest under the unchanged term.
        expect(qemusOfVm(src, "web-1")).toEqual([before.record.pid])
        const after = yield* Effect.orDie(src.vms.status("web-1"))
        expect(after).toMatchObject({
          attached: true,
          qmp_status: "running",
          record: { state: "running", pid: before.record.pid, term },
        })
        yield* src.ownership.assert("web-1", term)
        const n = ticks(yield* consoleOf(src, "web-1")).at(-1)![0]
        yield* eventually(
          "still counting on the source",
          Effect.map(consoleOf(src, "web-1"), (t) => ticks(t).at(-1)![0] > n + 5),
          30,
        )
      }),
    120_000,
  )

  it.live(
    "source agent SIGKILLed at the switchover and started again: one running copy under the next term, on the destination if it took over (the source hands its paused copy off), else on the source",
    () =>
      Effect.gen(function* () {
        const [src0] = yield* holder("web-1")
        const before = yield* Effect.orDie(src0.vms.status("web-1"))
        const term = before.record.term!
        const lastOnSource = ticks(yield* consoleOf(src0, "web-1")).at(-1)![0]
        // QEMU completed the stream (the source's guest is paused) and the switchover is being asked for.
        const { reports, src, dst } = yield* crashSource("web-1", (rs) => rs.at(-1)!.phase === "switchover")
        expect(reports.some((r) => r.phase === "switchover")).toBe(true)
        yield* eventually(
          "one QEMU of web-1 left",
          Effect.sync(() => qemusOfVm(src, "web-1").length + qemusOfVm(dst, "web-1").length === 1),
          30,
        )
        const [runs, other] = qemusOfVm(dst, "web-1").length === 1 ? [dst, src] : [src, dst]
        // Whichever runs it holds the next term: the destination by its takeover, the source by
        // taking it back from itself.
        const st = yield* Effect.orDie(runs.vms.status("web-1"))
        pids.add(st.record.pid!)
        expect(st).toMatchObject({
          attached: true,
          qmp_status: "running",
          record: { state: "running", term: term + 1 },
        })
        yield* runs.ownership.assert("web-1", term + 1)
        yield* eventually(
          `${other.node} forgot web-1`,
          Effect.map(Effect.either(other.vms.status("web-1")), (e) => e._tag === "Left"),
          20,
        )
        yield* eventually(
          `counting on ${runs.node} past the source's last tick`,
          Effect.map(consoleOf(runs, "web-1"), (t) => (ticks(t).at(-1)?.[0] ?? 0) > lastOnSource + 5),
          30,
        )
      }),
    120_000,
  )

  /** Drops the tunnel's packets (both ways) on loopback until `restore`; the counter shows drops. */
  const cut = (port: number) =>
    Effect.sync(() =>
      nft(
        `table inet ${nftTable} {\n chain input {\n  type filter hook input priority -10; policy accept;\n` +
          `  iifname "lo" tcp dport ${port} counter drop\n  iifname "lo" tcp sport ${port} counter drop\n }\n}`,
      ),
    )
  const dropped = () => {
    const out = execFileSync("nft", ["-j", "list", "table", "inet", nftTable], { encoding: "utf8" })
    return [...out.matchAll(/"packets":\s*(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0)
  }
  const restore = Effect.sync(() => {
    try {
      execFileSync("nft", ["delete", "table", "inet", nftTable], { stdio: "ignore" })
    } catch {}
  })

  it.live.skipIf(!canCut)(
    "link cut for 4 s and restored: TCP recovers within the progress timeout, the migration completes, the guest intact",
    () =>
      Effect.gen(function* () {
        const [src, dst] = yield* holder("web-1")
        const started = yield* Effect.orDie(src.vms.status("web-1"))
        let drops = 0
        let midway = false
        const { exit, reports } = yield* run(src, "web-1", dst, slow, () =>
          Effect.gen(function* () {
            yield* eventually(
              "a QEMU receiving on the destination",
              Effect.sync(() => qemusOfVm(dst, "web-1").length === 1),
              60,
            )
            yield* Effect.sleep("1500 millis")
            yield* cut(dst.migration.address.port)
            yield* Effect.sleep("4 seconds").pipe(
              Effect.ensuring(Effect.sync(() => (drops = dropped()))),
              Effect.ensuring(restore),
            )
            // Still in flight when the link came back: the destination has not resumed the guest.
            const st = yield* Effect.either(dst.vms.status("web-1"))
            midway = st._tag === "Right" && st.right.record.state === "starting"
          }).pipe(Effect.ensuring(restore)),
        )
        if (Exit.isFailure(exit)) throw new Error(`migration failed: ${exit.cause.toString()}`)
        expect(drops).toBeGreaterThan(0)
        expect(midway).toBe(true)
        expect(reports.at(-1)!.phase).toBe("completed")
        expect(exit.value.term).toBe(started.record.term! + 1)
        const onB = yield* Effect.orDie(dst.vms.status("web-1"))
        pids.add(onB.record.pid!)
        expect(onB).toMatchObject({ qmp_status: "running", record: { state: "running" } })
        expect(qemusOfVm(src, "web-1")).toEqual([])
        expect(qemusOfVm(dst, "web-1")).toEqual([onB.record.pid])
        yield* eventually(
          "ticks and a checksum on the destination",
          Effect.map(consoleOf(dst, "web-1"), (t) => ticks(t).length >= 25 && sums(t).length >= 1),
          60,
        )
        const after = yield* consoleOf(dst, "web-1")
        expect(after).not.toContain("NOVACRON-GUEST-READY")
        const sourceText = fs.readFileSync(path.join(src.dataDir, "vms/web-1.migrated.console.log"), "utf8")
        const all = ticks(`${sourceText}${after}`)
        expect(all.map(([n]) => n)).toEqual(all.map((_, i) => all[0]![0] + i))
        expect(new Set(sums(`${sourceText}${after}`)).size).toBe(1)
      }),
    120_000,
  )

  it.live.skipIf(!canCut)(
    "link cut for good: the migration fails on the progress timeout, the destination gives up its incoming QEMU while the link is still down (keepalive), the source keeps the one running copy",
    () =>
      Effect.gen(function* () {
        const [src, dst] = yield* holder("web-1")
        const before = yield* Effect.orDie(src.vms.status("web-1"))
        const settings = MigrationSettings.decode({ progress_timeout: "3s", poll_interval: "100ms" })
        const { exit } = yield* run(src, "web-1", dst, { ...slow, settings }, () =>
          Effect.gen(function* () {
            yield* eventually(
              "a QEMU receiving on the destination",
              Effect.sync(() => qemusOfVm(dst, "web-1").length === 1),
              60,
            )
            yield* Effect.sleep("1500 millis")
            yield* cut(dst.migration.address.port)
          }),
        )
        expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error).toMatchObject({
          _tag: "MigrationTimeout",
          kind: "progress",
        })
        // Nothing the source says reaches the destination: it learns that the source is gone from its
        // own control connection (keepalive after the 3 s the prepare named, ten 1 s probes).
        yield* Effect.gen(function* () {
          yield* eventually(
            "no QEMU of web-1 left on the destination, the link still down",
            Effect.sync(() => qemusOfVm(dst, "web-1").length === 0),
            30,
          )
          yield* eventually(
            "the destination forgot web-1",
            Effect.map(Effect.either(dst.vms.status("web-1")), (e) => e._tag === "Left"),
            20,
          )
          expect(dropped()).toBeGreaterThan(0)
        }).pipe(Effect.ensuring(restore))
        const after = yield* Effect.orDie(src.vms.status("web-1"))
        expect(after).toMatchObject({ qmp_status: "running", record: { state: "running", pid: before.record.pid } })
        expect(qemusOfVm(src, "web-1")).toEqual([before.record.pid])
        yield* src.ownership.assert("web-1", before.record.term!)
        const n = ticks(yield* consoleOf(src, "web-1")).at(-1)![0]
        yield* eventually(
          "still counting on the source",
          Effect.map(consoleOf(src, "web-1"), (t) => ticks(t).at(-1)![0] > n + 5),
          30,
        )
      }),
    120_000,
  )

  /** Opens a TLS connection to B's tunnel with `cert`, writes `bytes`, and reports what came back before the close. */
  const poke = (cert: { certPem: string; keyPem: string }, bytes: Buffer) =>
    Effect.async<{ readonly received: number; readonly closed: boolean }>((resume) => {
      let received = 0
      const s = tls.connect({
        host: "127.0.0.1",
        port: b.migration.address.port,
        cert: cert.certPem,
        key: cert.keyPem,
        ca: certs.ca.certPem,
        checkServerIdentity: () => undefined,
      })
      const timer = setTimeout(() => {
        s.destroy()
        resume(Effect.succeed({ received, closed: false }))
      }, 5000)
      s.on("secureConnect", () => s.write(bytes))
      s.on("data", (d: Buffer) => {
        received += d.length
      })
      s.on("error", () => {})
      s.on("close", () => {
        clearTimeout(timer)
        resume(Effect.succeed({ received, closed: true }))
      })
    })

  it.live("a peer whose certificate is not a node's, or that names an unknown migration, gets the socket closed", () =>
    Effect.gen(function* () {
      const prepare = Wire.frame({
        _tag: "prepare",
        migration: "00000000-0000-4000-8000-000000000000",
        spec: spec(g, "intruder") as never,
        term: 1,
        capabilities: [],
        channels: 1,
      })
      const operator = yield* poke(certs.operator, prepare)
      expect(operator).toEqual({ received: 0, closed: true })
      const unknown = yield* poke(
        certs.a,
        Wire.frame({ _tag: "channel", migration: "11111111-1111-4111-8111-111111111111", index: 0, zstd: 0 }),
      )
      expect(unknown).toEqual({ received: 0, closed: true })
      // An oversized frame announcement is refused before anything is buffered.
      const huge = Buffer.alloc(8)
      huge.writeUInt32BE(Wire.maxFrame + 1, 0)
      expect(yield* poke(certs.a, huge)).toEqual({ received: 0, closed: true })
      // Nothing was started for the intruder.
      expect((yield* Effect.flip(b.vms.status("intruder")))._tag).toBe("VmNotFound")
    }),
  )
})
