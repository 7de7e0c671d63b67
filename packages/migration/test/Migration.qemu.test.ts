// Real QEMU under TCG, two agents in this process over real mTLS on loopback: a counting guest
// migrated A -> B (precopy, multifd), then cancelled, then with its destination killed, then a guest
// dirtying memory faster than a throttled link.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Scope, Stream } from "effect"
import type * as Migration from "../src/Migration.js"
import {
  type Agent,
  agents,
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

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")
  } catch {
    return false
  }
}

describe.skipIf(!enabled)("live migration between two agents on real QEMU", () => {
  let g: CounterGuest
  let root: string
  let scope: Scope.CloseableScope
  let a: Agent
  let b: Agent
  const pids = new Set<number>()

  beforeAll(async () => {
    g = counterGuest(guest())
    root = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-mig-"))
    scope = Effect.runSync(Scope.make())
    const certs = await Effect.runPromise(certificates)
    ;({ a, b } = await Effect.runPromise(agents(root, certs, scope)))
  }, 120_000)

  afterAll(async () => {
    for (const pid of pids) {
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
  const pidOf = (agent: Agent, id: string) =>
    Effect.map(Effect.orDie(agent.vms.status(id)), (s) => s.record.pid ?? undefined)

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
        all.forEach(([n], i) => i > 0 && expect(n).toBe(all[i - 1]![0] + 1))
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
})
