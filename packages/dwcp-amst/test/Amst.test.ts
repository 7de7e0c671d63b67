import { describe, expect, it } from "@effect/vitest"
import { Boot, Component } from "@novacron/init"
import { Context, Effect, Either, Layer } from "effect"
import { Amst, Source, TransportSettings } from "../src/index.js"
import { digestOf, payload, tmp } from "./helpers.js"

describe("settings", () => {
  it.effect("decodes dwcp.transport with the shared defaults and rejects bad bounds", () =>
    Effect.gen(function* () {
      const d = yield* TransportSettings.decode({})
      expect(d).toEqual({
        min_streams: 4,
        max_streams: 256,
        initial_streams: 8,
        congestion_algorithm: "auto",
        enable_rdma: true,
        chunk_size: 262144,
      })
      const bad = yield* Effect.either(TransportSettings.decode({ min_streams: 64, max_streams: 8 }))
      expect(Either.isLeft(bad)).toBe(true)
      expect(Either.isLeft(yield* Effect.either(TransportSettings.decode({ max_streams: 1000 })))).toBe(true)
    }),
  )
})

describe("Amst service", () => {
  it.live("the layer builds, moves a transfer, and releases its receiver with the scope", () =>
    Effect.gen(function* () {
      const dir = yield* tmp
      const settings = { ...TransportSettings.defaults, chunk_size: 65536 }
      const ctx = yield* Layer.build(Amst.layer(settings))
      const amst = Context.get(ctx, Amst.Amst)
      expect(amst.settings).toBe(settings)
      const data = payload(500_000, 31)
      const port = yield* Effect.scoped(
        Effect.gen(function* () {
          const rx = yield* amst.listen({ dir })
          const r = yield* amst.send({ host: rx.host, port: rx.port, source: Source.fromBuffer(data, "svc.bin") })
          expect(r.digest).toBe(digestOf(data, r.integrity))
          expect(r.maxStreamsUsed).toBeGreaterThanOrEqual(4)
          return rx.port
        }),
      )
      // The scope closed: nothing listens any more.
      const refused = yield* Effect.either(
        amst.send({ host: "127.0.0.1", port, source: Source.fromBuffer(data, "late.bin"), maxReconnects: 0 }),
      )
      expect(Either.isLeft(refused) && refused.left.reason === "connect").toBe(true)
    }).pipe(Effect.scoped),
  )

  it.live("boots as the dwcp-amst component, placed as the node places it, and reports health", () =>
    Effect.gen(function* () {
      const spec = Amst.component(TransportSettings.defaults)
      // A bare spec: the host's boot table owns its placement.
      expect([spec.name, "phase" in spec, "criticality" in spec]).toEqual(["dwcp-amst", false, false])
      const c = Component.place(spec, { phase: "services", criticality: "DEGRADED" })
      const node = yield* Boot.boot([c])
      const amst = Context.get(node.context as Context.Context<Amst.Amst>, Amst.Amst)
      expect(amst.settings.max_streams).toBe(256)
      const h = yield* node.health
      // The component's own verdict: a regex on the JSON would also match "unhealthy".
      const mine = h.components.find((x) => x.name === "dwcp-amst")
      expect(mine?.health).toBe("healthy")
      expect(mine?.details).toMatchObject({ rdmaDevices: amst.rdma.devices.length })
    }).pipe(Effect.scoped),
  )
})
