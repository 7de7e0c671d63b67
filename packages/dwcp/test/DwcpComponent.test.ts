import { describe, expect, it } from "@effect/vitest"
import { EnvironmentDetector } from "@novacron/environment"
import { Context, Effect, Layer, Option } from "effect"
import * as Dwcp from "../src/Dwcp.js"
import * as DwcpComponent from "../src/DwcpComponent.js"
import type * as Engine from "../src/Engine.js"

const ok = <A>(a: A) => Effect.succeed(a)
const send: Engine.Transport = { send: (r) => Effect.succeed({ bytes: r.payload.length, streams: 1, carrier: "t" }) }

describe("DwcpComponent", () => {
  it.scoped("a part that cannot start leaves the component up, its health degraded naming the part", () =>
    Effect.gen(function* () {
      const spec = DwcpComponent.component({
        nodeId: "n1",
        flags: {
          v3_rollout_percentage: 100,
          enable_v3_transport: true,
          enable_v3_compression: true,
          enable_v3_prediction: true,
          enable_v3_state_sync: true,
          enable_v3_consensus: true,
          enable_v3_placement: true,
        },
        v3: {
          transport: ok(send),
          congestion: ok({ order: (row) => Effect.succeed({ order: row.congestion }) }),
          compression: Effect.fail(new Error("HDE worker did not start")),
          prediction: ok({ predict: () => Effect.succeed(undefined), observe: () => Effect.void }),
          state_sync: ok({ kind: "m", put: () => Effect.void, get: () => Effect.succeed(Option.none()) }),
          placement: ok({ place: (_w, h) => Effect.succeed(h[0]!.id) }),
        },
        v1Transport: send,
      })
      expect(spec.name).toBe("dwcp")
      const env = EnvironmentDetector.layer({ ...EnvironmentDetector.Settings.make({}), forced_mode: "datacenter" })
      const ctx = yield* Layer.build(spec.layer.pipe(Layer.provide(env)))
      const health = yield* Effect.provide(spec.healthCheck!, ctx)
      expect(health).toMatchObject({
        status: "degraded",
        message: "compression on v1: v3 failed at start (HDE worker did not start)",
        details: { mode: "datacenter", parts: { compression: "v1 (down: HDE worker did not start)", transport: "v3" } },
      })
      // This host has no RDMA: /status says what the datacenter row uses instead.
      const status = yield* Context.get(ctx, Dwcp.Dwcp).status
      expect(status.mode).toBe("datacenter")
      if (status.modeRow.transport !== "rdma-multistream") {
        expect(health?.details?.downgrades).toContainEqual(
          "datacenter transport: tcp-multistream instead of rdma-multistream (no RDMA device in /sys/class/infiniband)",
        )
      }
    }),
  )
})
