import * as fs from "node:fs/promises"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { tempDir } from "@novacron/testing"
import { Effect, Fiber } from "effect"
import * as ApiCommand from "../src/ApiCommand.js"
import { call, start, tokens } from "./helpers.js"

describe("novacron-node api …", () => {
  it.scopedLive("renders tables, --json, and the API's typed refusal; follows events", () =>
    Effect.gen(function* () {
      const fx = yield* start("token")
      const dir = yield* tempDir
      yield* Effect.promise(() => fs.mkdir(path.join(dir, "tls")))
      yield* Effect.promise(() => fs.writeFile(path.join(dir, "tls", "ca.crt"), fx.ca))
      yield* Effect.promise(() =>
        call(fx, "POST", "/v1/vms", { token: tokens.operator, body: { id: "web-1", vcpus: 2, memory_mb: 128 } }),
      )
      const env = { NOVACRON_TOKEN: tokens.reader }
      const vms = yield* ApiCommand.run(dir, ["vms"], { address: `${fx.url}/v1` }, env)
      expect(vms.split("\n")[0]).toMatch(/^ID\s+STATE\s+VCPUS\s+MEMORY_MB\s+PID\s+EXIT$/)
      expect(vms.split("\n")[1]).toMatch(/^web-1\s+defined\s+2\s+128\s+-\s+-$/)
      const self = JSON.parse(yield* ApiCommand.run(dir, ["self"], { address: fx.url, json: true }, env))
      expect(self.principal).toEqual({ name: "reader-token", role: "reader", method: "token" })
      const refused = yield* Effect.flip(ApiCommand.run(dir, ["vm", "nope"], { address: fx.url }, env))
      expect(refused.message).toBe('HTTP 404: NotFound: {"kind":"vm","id":"nope","_tag":"NotFound"}')
      const noToken = yield* Effect.flip(ApiCommand.run(dir, ["vms"], { address: fx.url }, {}))
      expect(noToken.message).toMatch(/^HTTP 401: Unauthorized: no credentials/)
      const usage = yield* Effect.flip(ApiCommand.run(dir, ["fly"], { address: fx.url }, env))
      expect(usage._tag).toBe("ApiUsageError")

      const lines: Array<string> = []
      const follow = yield* Effect.fork(
        ApiCommand.run(dir, ["events"], { address: fx.url, topic: ["VM:web-2"] }, env, (t) => lines.push(t)),
      )
      yield* Effect.sleep("300 millis")
      yield* Effect.promise(() =>
        call(fx, "POST", "/v1/vms", { token: tokens.operator, body: { id: "web-2", vcpus: 1, memory_mb: 64 } }),
      )
      yield* Effect.promise(() =>
        call(fx, "POST", "/v1/vms", { token: tokens.operator, body: { id: "web-3", vcpus: 1, memory_mb: 64 } }),
      )
      for (let i = 0; i < 50 && lines.length === 0; i++) yield* Effect.sleep("100 millis")
      yield* Fiber.interrupt(follow)
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/ VM:web-2 {2}VmCreated\n$/)
    }),
  )
})
