import { existsSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Scope } from "effect"
import { vi } from "vitest"
import {
  freePort,
  fuzzSeed,
  haveRedisServer,
  isCI,
  privateRedis,
  reachable,
  requireService,
  ServiceMissing,
  startRedis,
  stopRedis,
  tempDir,
} from "../src/index.js"

describe("requireService", () => {
  it("is true when the probe finds the service, in CI or not", async () => {
    expect(await requireService("x", () => true, "gone", { CI: "true" })).toBe(true)
    expect(await requireService("x", async () => true, "gone", {})).toBe(true)
  })

  it("outside CI a missing service skips with a message naming it", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {})
    try {
      expect(await requireService("qemu", () => false, "/usr/bin/qemu missing", {})).toBe(false)
      expect(await requireService("qemu", () => false, "d", { CI: "false" })).toBe(false)
      expect(await requireService("qemu", () => false, "d", { CI: "0" })).toBe(false)
      expect(warn).toHaveBeenCalledWith(
        "skipping qemu tests: /usr/bin/qemu missing (set CI=true to make this an error)",
      )
    } finally {
      warn.mockRestore()
    }
  })

  it("in CI a missing service fails, naming it and why", async () => {
    await expect(
      requireService("PostgreSQL", () => false, "127.0.0.1:5432 unreachable", { CI: "true" }),
    ).rejects.toThrow(new ServiceMissing("PostgreSQL", "127.0.0.1:5432 unreachable"))
    await expect(requireService("PostgreSQL", () => false, "d", { CI: "1" })).rejects.toBeInstanceOf(ServiceMissing)
  })

  it("a probe that throws counts as missing, with its message", async () => {
    const boom = () => {
      throw new Error("EACCES")
    }
    await expect(requireService("kvm", boom, "/dev/kvm", { CI: "true" })).rejects.toThrow(
      "kvm is required in CI but missing: /dev/kvm (EACCES)",
    )
  })

  it("isCI: set and not empty, 0 or false", () => {
    expect([isCI({}), isCI({ CI: "" }), isCI({ CI: "false" }), isCI({ CI: "FALSE" }), isCI({ CI: "0" })]).toEqual([
      false,
      false,
      false,
      false,
      false,
    ])
    expect([isCI({ CI: "true" }), isCI({ CI: "1" }), isCI({ CI: "yes" })]).toEqual([true, true, true])
  })
})

describe("fuzzSeed", () => {
  it("is the fallback unless FUZZ_SEED holds an integer", () => {
    expect(fuzzSeed(7, {})).toBe(7)
    expect(fuzzSeed(7, { FUZZ_SEED: "" })).toBe(7)
    expect(fuzzSeed(7, { FUZZ_SEED: "-12" })).toBe(-12)
    expect(() => fuzzSeed(7, { FUZZ_SEED: "abc" })).toThrow('FUZZ_SEED must be an integer, got "abc"')
  })
})

describe("tempDir", () => {
  it.effect("exists inside its scope and is removed with its contents when the scope closes", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const dir = yield* Scope.extend(tempDir, scope)
      yield* Effect.promise(() => import("node:fs/promises").then((fs) => fs.writeFile(`${dir}/f`, "x")))
      expect(existsSync(`${dir}/f`)).toBe(true)
      yield* Scope.close(scope, Exit.void)
      expect(existsSync(dir)).toBe(false)
    }),
  )
})

describe.skipIf(!(await haveRedisServer()))("privateRedis", () => {
  it.live("answers on its port inside the scope and is gone after it", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const redis = yield* Scope.extend(privateRedis, scope)
      expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`)
      expect(yield* Effect.promise(() => reachable(redis.url))).toBe(true)
      yield* Scope.close(scope, Exit.void)
      expect(redis.child.exitCode !== null || redis.child.signalCode !== null).toBe(true)
      expect(yield* Effect.promise(() => reachable(redis.url))).toBe(false)
      // Stopping an exited server is a no-op rather than a hang.
      yield* stopRedis(redis.child)
    }),
  )

  it.scopedLive("a server on a port another one holds is an error, not the other server passed off as it", () =>
    Effect.gen(function* () {
      const redis = yield* privateRedis
      const second = yield* Effect.exit(startRedis(redis.port))
      expect(Exit.isFailure(second) && String(Cause.squash(second.cause))).toMatch(
        new RegExp(`redis-server on ${redis.port} exited with 1 \\(port taken\\?\\)`),
      )
    }),
  )

  it.live("freePort gives a port nothing listens on", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      expect(port).toBeGreaterThan(0)
      expect(yield* Effect.promise(() => reachable(`tcp://127.0.0.1:${port}`))).toBe(false)
    }),
  )
})
