import { describe, expect, it } from "@effect/vitest"
import { fuzzSeed } from "@novacron/testing"
import { Effect } from "effect"
import fc from "fast-check"
import { call, memoryTasks, start, tokens } from "./helpers.js"

const seed = fuzzSeed(24)
const op = { token: tokens.admin }

// A 4xx must say what was wrong: a JSON body with a _tag.
const typed = (r: { status: number; json: any; text: string }, what: string) => {
  expect(r.status, `${what}: ${r.text.slice(0, 200)}`).toBeLessThan(500)
  if (r.status >= 400) expect(r.json?._tag, `${what}: ${r.text.slice(0, 200)}`).toEqual(expect.any(String))
}

describe("fuzzed requests never get a 5xx", () => {
  it.scopedLive("JSON bodies of any shape on every route that takes one", () =>
    Effect.gen(function* () {
      const fx = yield* start("token", { rate_limit: 0 }, memoryTasks())
      const routes = ["/v1/vms", "/v1/vms/fz-1/migrate", "/v1/nodes/node-b/drain"]
      const spec = fc.record(
        {
          id: fc.oneof(fc.string(), fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,10}$/)),
          vcpus: fc.oneof(fc.integer(), fc.double(), fc.string()),
          memory_mb: fc.oneof(fc.integer({ min: -10, max: 1 << 20 }), fc.constant(null)),
          disks: fc.anything(),
          nics: fc.array(
            fc.record({ kind: fc.constantFrom("user", "tap"), hostfwd: fc.anything() }, { requiredKeys: [] }),
          ),
          target_node: fc.string(),
          deadline_s: fc.anything(),
          force: fc.anything(),
        },
        { requiredKeys: [] },
      )
      const body = fc.oneof(fc.jsonValue(), spec)
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.constantFrom(...routes), body, async (route, value) => {
            typed(await call(fx, "POST", route, { ...op, body: value }), `POST ${route} ${JSON.stringify(value)}`)
          }),
          { seed, numRuns: 120 },
        ),
      )
    }),
  )

  it.scopedLive("raw bytes, content types, paths and query strings", () =>
    Effect.gen(function* () {
      const fx = yield* start("token", { rate_limit: 0 }, memoryTasks())
      const segment = fc.oneof(fc.string(), fc.stringMatching(/^[a-z0-9%.-]{1,70}$/))
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.oneof(
              fc.string(),
              fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)),
            ),
            fc.constantFrom(
              "application/json",
              "text/plain",
              "application/x-www-form-urlencoded",
              "multipart/form-data",
            ),
            segment,
            fc.string(),
            async (raw, type, id, query) => {
              const path = `/v1/vms/${encodeURIComponent(id)}`
              typed(await call(fx, "POST", "/v1/vms", { ...op, raw, headers: { "content-type": type } }), `raw ${type}`)
              typed(await call(fx, "GET", path, op), `GET ${path}`)
              typed(
                await call(fx, "POST", `${path}/stop?${encodeURIComponent(query)}=${encodeURIComponent(query)}`, op),
                `stop ${query}`,
              )
              typed(await call(fx, "GET", `/v1/vms?index=${encodeURIComponent(query)}&wait=1ms`, op), `index ${query}`)
              typed(
                await call(fx, "GET", `/v1/event/stream?topic=${encodeURIComponent(query)}&index=x`, op),
                `topic ${query}`,
              )
            },
          ),
          { seed, numRuns: 60 },
        ),
      )
    }),
  )

  it.scopedLive("bodies over the limit: 413 before reading them; bodies without a length: 411", () =>
    Effect.gen(function* () {
      const fx = yield* start("token", { max_body_bytes: 4096 })
      const big = JSON.stringify({ id: "x", pad: "y".repeat(10_000) })
      const declared = yield* Effect.promise(() => call(fx, "POST", "/v1/vms", { ...op, raw: big }))
      expect(declared.status).toBe(413)
      expect(declared.json).toEqual({ _tag: "PayloadTooLarge", limit_bytes: 4096 })
      const chunked = yield* Effect.promise(() =>
        call(fx, "POST", "/v1/vms", { ...op, raw: big, headers: { "transfer-encoding": "chunked" } }),
      )
      expect(chunked.status).toBe(411)
      expect(chunked.json._tag).toBe("LengthRequired")
      // The connection still answers the next call.
      const ok = yield* Effect.promise(() =>
        call(fx, "POST", "/v1/vms", { ...op, body: { id: "ok-1", vcpus: 1, memory_mb: 64 } }),
      )
      expect(ok.status).toBe(201)
    }),
  )
})
