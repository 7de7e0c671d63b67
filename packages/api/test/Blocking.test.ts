import * as https from "node:https"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import WebSocket from "ws"
import * as ApiServer from "../src/ApiServer.js"
import * as EventLog from "../src/EventLog.js"
import { call, type Fixture, start, tokens } from "./helpers.js"

const op = { token: tokens.operator }
const create = (fx: Fixture, id: string) =>
  Effect.promise(() => call(fx, "POST", "/v1/vms", { ...op, body: { id, vcpus: 1, memory_mb: 64 } }))

/** Reads NDJSON lines from the event stream until `until` says stop. */
const readEvents = (fx: Fixture, query: string, until: (lines: Array<any>) => boolean) =>
  Effect.promise(
    () =>
      new Promise<Array<any>>((resolve, reject) => {
        const lines: Array<any> = []
        let rest = ""
        const req = https.request(
          `${fx.url}/v1/event/stream${query}`,
          { ca: fx.ca, headers: { authorization: `Bearer ${tokens.reader}` }, agent: false },
          (res) => {
            if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`))
            res.setEncoding("utf8")
            res.on("data", (chunk: string) => {
              rest += chunk
              const parts = rest.split("\n")
              rest = parts.pop()!
              for (const p of parts) if (p !== "") lines.push(JSON.parse(p))
              if (until(lines)) {
                req.destroy()
                resolve(lines)
              }
            })
          },
        )
        req.on("error", (e) => (lines.length > 0 && until(lines) ? resolve(lines) : reject(e)))
        req.setTimeout(10_000, () => reject(new Error(`timed out with ${JSON.stringify(lines)}`)))
        req.end()
      }),
  )

describe("blocking queries", () => {
  it("wait: default 5 min, capped at 10 min, up to 1/16 jitter", () => {
    expect(ApiServer.waitMillis(undefined, 0)).toBe(300_000)
    expect(ApiServer.waitMillis("30s", 0)).toBe(30_000)
    expect(ApiServer.waitMillis("500ms", 0)).toBe(500)
    expect(ApiServer.waitMillis("60m", 0)).toBe(600_000)
    expect(ApiServer.waitMillis("60m", 0.999)).toBeLessThanOrEqual(600_000 + 600_000 / 16)
    expect(ApiServer.waitMillis("16s", 1)).toBe(17_000)
  })

  it.scopedLive("GET /v1/vms?index= returns when the list changes, with a higher X-Novacron-Index", () =>
    Effect.gen(function* () {
      const fx = yield* start("token")
      yield* create(fx, "a1")
      const first = yield* Effect.promise(() => call(fx, "GET", "/v1/vms", op))
      const index = Number(first.headers["x-novacron-index"])
      expect(index).toBeGreaterThan(0)
      expect(first.json.index).toBe(index)
      const started = Date.now()
      const [blocked] = yield* Effect.all(
        [
          Effect.promise(() => call(fx, "GET", `/v1/vms?index=${index}&wait=20s`, op)),
          Effect.delay(create(fx, "a2"), "300 millis"),
        ],
        { concurrency: 2 },
      )
      const took = Date.now() - started
      expect(took).toBeGreaterThanOrEqual(250)
      expect(took).toBeLessThan(5_000)
      expect(Number(blocked.headers["x-novacron-index"])).toBeGreaterThan(index)
      expect(blocked.json.vms.map((v: { id: string }) => v.id)).toEqual(["a1", "a2"])
    }),
  )

  it.scopedLive("a change outside the API (a VM that crashed) wakes a blocking query too", () =>
    Effect.gen(function* () {
      const fx = yield* start("token")
      yield* create(fx, "c1")
      const index = Number((yield* Effect.promise(() => call(fx, "GET", "/v1/vms", op))).headers["x-novacron-index"])
      const [blocked] = yield* Effect.all(
        [
          Effect.promise(() => call(fx, "GET", `/v1/vms?index=${index}&wait=20s`, op)),
          Effect.delay(
            Effect.sync(() => fx.vms.set("c1", { ...fx.vms.get("c1")!, state: "crashed", exit_reason: "signal 9" })),
            "200 millis",
          ),
        ],
        { concurrency: 2 },
      )
      expect(blocked.json.vms[0].state).toBe("crashed")
    }),
  )

  it.scopedLive("without a change it returns after wait, with the same index", () =>
    Effect.gen(function* () {
      const fx = yield* start("token")
      const index = Number((yield* Effect.promise(() => call(fx, "GET", "/v1/vms", op))).headers["x-novacron-index"])
      const started = Date.now()
      const r = yield* Effect.promise(() => call(fx, "GET", `/v1/vms?index=${index}&wait=400ms`, op))
      const took = Date.now() - started
      expect(r.status).toBe(200)
      expect(took).toBeGreaterThanOrEqual(400)
      expect(took).toBeLessThan(3_000)
      expect(Number(r.headers["x-novacron-index"])).toBe(index)
    }),
  )

  it.scopedLive("bad blocking parameters are a typed 400 naming the parameter", () =>
    Effect.gen(function* () {
      const fx = yield* start("token")
      const r = yield* Effect.promise(() => call(fx, "GET", "/v1/vms?index=-3&wait=soon", op))
      expect(r.status).toBe(400)
      expect(r.json._tag).toBe("HttpApiDecodeError")
      expect(r.json.issues.map((i: { path: Array<string> }) => i.path[0])).toContain("index")
    }),
  )
})

describe("event stream", () => {
  it.scopedLive("replays from an index, filters by topic:key, then follows live", () =>
    Effect.gen(function* () {
      const fx = yield* start("token")
      yield* create(fx, "web-1")
      yield* create(fx, "db-1")
      yield* Effect.promise(() => call(fx, "POST", "/v1/vms/web-1/start", op))
      // Replay: only web-1's events, from the start.
      const replay = yield* readEvents(fx, "?index=0&topic=VM:web-1", (l) => l.length >= 2)
      expect(replay.map((e) => [e.topic, e.key, e.type])).toEqual([
        ["VM", "web-1", "VmCreated"],
        ["VM", "web-1", "VmUpdated"],
      ])
      expect(replay[1].payload.state).toBe("running")
      expect(replay[0].index).toBeLessThan(replay[1].index)
      // From the second event's index: the rest, then a live one.
      const [live] = yield* Effect.all(
        [
          readEvents(fx, `?index=${replay[0].index}&topic=VM`, (l) => l.some((e) => e.key === "late-1")),
          Effect.delay(create(fx, "late-1"), "300 millis"),
        ],
        { concurrency: 2 },
      )
      const events = live.filter((e) => e.heartbeat === undefined)
      const keys = events.map((e) => e.key)
      expect(keys).toContain("db-1")
      expect(keys).toContain("late-1")
      expect(keys.indexOf("late-1")).toBe(keys.length - 1)
      const indexes = events.map((e) => e.index)
      expect([...indexes].sort((a, b) => a - b)).toEqual(indexes)
    }),
  )

  it.scopedLive("over WebSocket: the same events as messages, role-checked, parameters validated", () =>
    Effect.gen(function* () {
      const fx = yield* start("token")
      yield* create(fx, "ws-1")
      const url = `${fx.url.replace(/^https/, "wss")}/v1/event/ws`
      const open = (query: string, token?: string) =>
        new WebSocket(`${url}${query}`, {
          ca: fx.ca,
          headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
        })
      const refusal = (ws: WebSocket) =>
        new Promise<number>((resolve) => {
          ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0))
          ws.on("open", () => resolve(101))
          ws.on("error", () => {})
        })
      expect(yield* Effect.promise(() => refusal(open("?index=0")))).toBe(401)
      expect(yield* Effect.promise(() => refusal(open("?index=-1", tokens.reader)))).toBe(400)
      const ws = open("?index=0&topic=VM", tokens.reader)
      const messages: Array<any> = []
      const got = new Promise<void>((resolve) =>
        ws.on("message", (data) => {
          messages.push(JSON.parse(String(data)))
          if (messages.some((m) => m.key === "ws-2")) resolve()
        }),
      )
      yield* Effect.promise(() => new Promise((resolve) => ws.once("open", resolve)))
      yield* create(fx, "ws-2")
      yield* Effect.promise(() => got)
      ws.close()
      expect(messages.filter((m) => m.topic === "VM").map((m) => [m.key, m.type])).toEqual([
        ["ws-1", "VmCreated"],
        ["ws-2", "VmCreated"],
      ])
    }),
  )

  it.scopedLive("heartbeats while idle", () =>
    Effect.gen(function* () {
      const fx = yield* start("token")
      const lines = yield* readEvents(fx, "?topic=Task&heartbeat=1", (l) => l.length >= 2)
      expect(lines.slice(0, 2)).toEqual([{ heartbeat: true }, { heartbeat: true }])
    }),
  )

  it.effect("a replay from before the retained events says it is truncated", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const log = yield* EventLog.make(3)
        for (let i = 0; i < 6; i++) yield* log.publish("VM", "VmUpdated", `v${i}`, {})
        const { truncated } = yield* log.follow(1, [])
        expect(truncated).toBe(true)
        const recent = yield* log.follow(3, [])
        expect(recent.truncated).toBe(false)
      }),
    ),
  )
})
