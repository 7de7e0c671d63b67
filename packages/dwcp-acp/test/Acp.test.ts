import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Boot, Component } from "@novacron/init"
import { type Context, Effect, Exit, Layer, Scope } from "effect"
import { Acp, CongestionControl } from "../src/index.js"
import { loopbackPair, ssInfo } from "./helpers.js"

const settings = (raw: unknown) => Effect.runSync(Acp.decodeSettings(raw))
const dctcpLoaded = readFileSync(CongestionControl.availablePath, "utf8").split(/\s+/).includes("dctcp")

describe("Acp service", () => {
  it("decodes the ACP keys of dwcp.transport, ignoring the others", () => {
    expect(settings({ min_streams: 4, chunk_size: 1 << 20 })).toEqual({
      congestion_algorithm: "auto",
      mode: "hybrid",
      link_share: 1,
    })
    expect(settings({ mode: "internet", pacing_rate_bps: 1e9, link_share: 0.5 })).toMatchObject({
      mode: "internet",
      pacing_rate_bps: 1e9,
    })
    expect(() => settings({ mode: "lan" })).toThrow()
    expect(() => settings({ link_share: 0 })).toThrow()
  })

  it.scoped("builds in a scope, configures sockets, counts fallbacks, follows allocations", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(
        Acp.layer(settings({ mode: "datacenter", pacing_rate_bps: 800e6, link_share: 0.5 })),
        scope,
      )
      const acp = yield* Effect.provide(Acp.Acp, ctx)
      const { client } = yield* loopbackPair
      const s = yield* acp.configure(client)
      expect(s.requested).toBe("dctcp")
      expect(ssInfo(client.localPort as number)).toMatch(new RegExp(`\\b${s.obtained}\\b`))
      expect(yield* acp.stats).toEqual({
        configured: 1,
        fallbacks: dctcpLoaded ? 0 : 1,
        obtained: { [s.obtained]: 1 },
      })
      // 800 Mbit/s ceiling at half share = 50 MB/s; an allocation above the ceiling is capped.
      expect((yield* acp.pacer.stats).rate).toBe(50e6)
      yield* acp.setAllocation(200e6)
      expect((yield* acp.pacer.stats).rate).toBe(12.5e6)
      yield* acp.setAllocation(2e9)
      expect((yield* acp.pacer.stats).rate).toBe(50e6)
      const health = yield* Effect.provide(Acp.healthCheck, ctx)
      expect(health.status).toBe("healthy")
      expect(health.message === undefined).toBe(dctcpLoaded)
      yield* Scope.close(scope, Exit.void)
    }),
  )

  it.live("boots under the @novacron/init kernel and answers for the other components", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const node = yield* Boot.boot([
          Component.place(Acp.component(settings({ mode: "internet" })), { phase: "core", criticality: "DEGRADED" }),
        ])
        const acp = yield* Effect.provide(Acp.Acp, node.context as Context.Context<Acp.Acp>)
        const { client } = yield* loopbackPair
        expect(yield* acp.configure(client)).toMatchObject({ requested: "bbr", obtained: "bbr" })
        const health = yield* node.health
        expect(health.components.find((c) => c.name === "dwcp-acp")).toMatchObject({
          status: "running",
          health: "healthy",
        })
        yield* node.shutdown
      }),
    ),
  )
})
