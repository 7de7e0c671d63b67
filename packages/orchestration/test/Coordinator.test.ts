import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { EtcdStore, LocalStore, StateStore } from "@novacron/dwcp-ass"
import { tempDir } from "@novacron/testing"
import { Effect, Layer, Option, Ref, Schedule } from "effect"
import * as Coordinator from "../src/Coordinator.js"
import * as Tasks from "../src/Tasks.js"
import { etcdMember, haveEtcd } from "./etcd.js"

const probeTable = (sql: SqlClient.SqlClient) =>
  sql`CREATE TABLE IF NOT EXISTS orch_probe (node TEXT NOT NULL, seq INTEGER NOT NULL, term INTEGER NOT NULL)`

describe("one coordinator (local mode, in process)", () => {
  it.scopedLive("a stalled coordinator is replaced within TTL + 1 s and its late writes are refused", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const ctx = yield* Layer.build(
        Layer.merge(
          LocalStore.layer({ leaseTtl: "1 second" }).pipe(Layer.provide(Database.layerSqlite({ path: ":memory:" }))),
          Tasks.layerSql({ _tag: "sqlite", filename: path.join(dir, "orch.db") }),
        ),
      )
      const store = Layer.succeedContext(ctx)
      const sql = ctx.unsafeMap.get(SqlClient.SqlClient.key) as SqlClient.SqlClient
      const state = ctx.unsafeMap.get(StateStore.StateStore.key) as StateStore.StateStoreApi
      yield* probeTable(sql)
      const aliveA = yield* Ref.make(true)
      const a = yield* Coordinator.make({ node: "a", ttl: "1 second", keepAlive: Ref.get(aliveA) }).pipe(
        Effect.provide(store),
      )
      const la = yield* a.elected
      const b = yield* Coordinator.make({ node: "b", ttl: "1 second" }).pipe(Effect.provide(store))
      // Never two: b stays a candidate while a keeps its lease alive.
      yield* Effect.sleep("1500 millis")
      expect(Option.isNone(yield* b.term)).toBe(true)
      yield* a.put("probe", "a:1")
      yield* a.fenced(sql`INSERT INTO orch_probe (node, seq, term) VALUES ('a', 1, ${la.token})`)

      yield* Ref.set(aliveA, false)
      const stalled = Date.now()
      const lb = yield* b.elected
      const failover = Date.now() - stalled
      expect(failover).toBeLessThanOrEqual(1000 + 1000)
      expect(lb.token).toBeGreaterThan(la.token)
      expect(Option.isNone(yield* a.term)).toBe(true)

      // a, acting on the leadership it had: refused by the store and by the term row.
      const put = yield* Effect.flip(state.put("probe", "a:late", { fence: la }))
      expect(put._tag).toBe("Deposed")
      const row = yield* Effect.flip(
        Coordinator.withTerm(la.token, sql`INSERT INTO orch_probe (node, seq, term) VALUES ('a', 2, ${la.token})`).pipe(
          Effect.provideService(SqlClient.SqlClient, sql),
        ),
      )
      expect(row).toMatchObject({ _tag: "CoordinatorDeposed", term: la.token, current: lb.token })
      expect((yield* Effect.flip(a.put("probe", "a:late")))._tag).toBe("NotCoordinator")
      // b's writes go through.
      yield* b.put("probe", "b:1")
      yield* b.fenced(sql`INSERT INTO orch_probe (node, seq, term) VALUES ('b', 1, ${lb.token})`)
      expect(Option.map(yield* state.get("probe"), (e) => e.value)).toEqual(Option.some("b:1"))
      const rows = yield* sql<{ node: string; seq: number }>`SELECT node, seq FROM orch_probe ORDER BY node, seq`
      expect(rows.map((r) => `${r.node}:${r.seq}`)).toEqual(["a:1", "b:1"])
    }),
  )
})

const fixture = path.join(import.meta.dirname, "fixtures", "coordinator.ts")
const TTL = 2

interface Candidate {
  readonly proc: ChildProcess
  readonly lines: Array<string>
  readonly term: number
}

const candidate = (endpoint: string, file: string, node: string) =>
  Effect.acquireRelease(
    Effect.async<Candidate, Error>((resume) => {
      const proc = spawn(
        process.execPath,
        ["--conditions", "@novacron/source", "--import", "tsx", fixture, endpoint, file, node, String(TTL)],
        { stdio: ["ignore", "pipe", "inherit"], cwd: import.meta.dirname },
      )
      const lines: Array<string> = []
      let buf = ""
      proc.stdout!.on("data", (d: Buffer) => {
        buf += d.toString()
        const parts = buf.split("\n")
        buf = parts.pop()!
        for (const l of parts) {
          lines.push(l)
          const m = /^elected (\d+)$/.exec(l)
          if (m) resume(Effect.succeed({ proc, lines, term: Number(m[1]) }))
        }
      })
      proc.once("exit", (code) => resume(Effect.fail(new Error(`candidate exited with ${code} before elected`))))
    }),
    (c) => Effect.sync(() => c.proc.kill("SIGKILL")),
  )

const signal = (c: Candidate, sig: NodeJS.Signals) => Effect.sync(() => c.proc.kill(sig))

const etcd = await haveEtcd()

describe("one coordinator on etcd, candidates in real processes", () => {
  const setup = Effect.gen(function* () {
    const member = yield* etcdMember
    const dir = yield* tempDir
    const file = path.join(dir, "orch.db")
    const ctx = yield* Layer.build(
      Layer.merge(
        EtcdStore.layer({ endpoints: [member.url], leaseTtl: `${TTL} seconds`, callTimeout: "1 second" }),
        Tasks.layerSql({ _tag: "sqlite", filename: file }),
      ),
    )
    const sql = ctx.unsafeMap.get(SqlClient.SqlClient.key) as SqlClient.SqlClient
    yield* probeTable(sql)
    return { member, file, ctx, sql, state: ctx.unsafeMap.get(StateStore.StateStore.key) as StateStore.StateStoreApi }
  })

  it.scopedLive.skipIf(!etcd)(
    "SIGKILLed coordinator: a new one within the lease TTL + 1 s",
    () =>
      Effect.gen(function* () {
        const { member, file, ctx } = yield* setup
        const child = yield* candidate(member.url, file, "child")
        const parent = yield* Coordinator.make({ node: "parent", ttl: `${TTL} seconds` }).pipe(
          Effect.provide(Layer.succeedContext(ctx)),
        )
        yield* Effect.sleep("1 second")
        expect(Option.isNone(yield* parent.term)).toBe(true)
        const killed = Date.now()
        yield* signal(child, "SIGKILL")
        const lp = yield* parent.elected
        const failover = Date.now() - killed
        console.log(`coordinator failover after SIGKILL: ${failover} ms (TTL ${TTL} s)`)
        expect(failover).toBeLessThanOrEqual(TTL * 1000 + 1000)
        expect(lp.token).toBeGreaterThan(child.term)
      }),
    60_000,
  )

  it.scopedLive.skipIf(!etcd)(
    "a paused coordinator that resumes after its successor was elected has every write refused",
    () =>
      Effect.gen(function* () {
        const { member, file, ctx, sql, state } = yield* setup
        const child = yield* candidate(member.url, file, "child")
        const parent = yield* Coordinator.make({ node: "parent", ttl: `${TTL} seconds` }).pipe(
          Effect.provide(Layer.succeedContext(ctx)),
        )
        // the child writes while it leads
        yield* Effect.sync(() => child.lines.filter((l) => l.startsWith("write")).length).pipe(
          Effect.filterOrFail((n) => n >= 3),
          Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("10 seconds"))),
        )
        yield* signal(child, "SIGSTOP")
        yield* Effect.sleep("300 millis")
        const before = child.lines.filter((l) => l.startsWith("write"))
        expect(before.every((l) => l.endsWith("ok ok"))).toBe(true)
        const lp = yield* parent.elected
        yield* parent.put("probe", "parent:1")
        yield* signal(child, "SIGCONT")
        yield* Effect.sleep("1 second")
        const after = child.lines.filter((l) => l.startsWith("write")).slice(before.length)
        expect(after.length).toBeGreaterThan(0)
        for (const l of after) expect(l).toMatch(/^write \d+ refused:\w+ refused:CoordinatorDeposed$/)
        expect(Option.map(yield* state.get("probe"), (e) => e.value)).toEqual(Option.some("parent:1"))
        const rows = yield* sql<{ n: number }>`SELECT COUNT(*) AS n FROM orch_probe WHERE node = 'child'`
        expect(Number(rows[0]!.n)).toBe(before.length)
        expect(lp.token).toBeGreaterThan(child.term)
      }),
    60_000,
  )
})
