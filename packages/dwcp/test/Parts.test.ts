import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Receiver } from "@novacron/dwcp-amst"
import { TransportSettings } from "@novacron/dwcp-amst/TransportSettings"
import { CompressionSettings } from "@novacron/dwcp-hde/HdeSettings"
import { type Pba, Predictor } from "@novacron/dwcp-pba"
import { EnvironmentDetector } from "@novacron/environment"
import { Context, Deferred, Effect, Layer, Option, Schema, Stream } from "effect"
import * as Dwcp from "../src/Dwcp.js"
import type * as Engine from "../src/Engine.js"
import * as LinkClassifier from "../src/LinkClassifier.js"
import * as Parts from "../src/Parts.js"
import type * as Rollout from "../src/Rollout.js"

type PbaModule = typeof import("@novacron/dwcp-pba")

const flags = (on: boolean): Rollout.Flags => ({
  v3_rollout_percentage: 100,
  enable_v3_transport: on,
  enable_v3_compression: on,
  enable_v3_prediction: on,
  enable_v3_state_sync: on,
  enable_v3_consensus: on,
  enable_v3_placement: on,
})

/** A node with the packages' engines (state sync aside: it needs a database) sending to `port`. */
const node = (nodeId: string, on: boolean, port: number, importer?: Parts.Importer) =>
  Effect.gen(function* () {
    const transport = Schema.decodeUnknownSync(TransportSettings)({ min_streams: 2, max_streams: 4 })
    const link: Parts.Link = { resolve: () => Effect.succeed({ host: "127.0.0.1", port }) }
    const real = Parts.fromPackages({
      transport,
      compression: Schema.decodeUnknownSync(CompressionSettings)({ workers: 1 }),
      link,
      importer,
    })
    const store = new Map<string, string>()
    const v3: Dwcp.V3Engines = {
      ...real,
      state_sync: Effect.succeed({
        kind: "memory",
        put: (k, v) => Effect.sync(() => void store.set(k, v)),
        get: (k) => Effect.sync(() => Option.fromNullable(store.get(k))),
      }),
    }
    const detector = EnvironmentDetector.layer({ ...EnvironmentDetector.Settings.make({}), forced_mode: "internet" })
    const layer = Dwcp.layer({ nodeId, flags: flags(on), v3, v1Transport: Parts.v1Transport(transport, link) }).pipe(
      Layer.provide(LinkClassifier.layer().pipe(Layer.provide(detector))),
    )
    return Context.get(yield* Layer.build(layer), Dwcp.Dwcp)
  })

describe("the packages' engines behind DWCP", () => {
  it.scoped(
    "a v3 node (AMST multi-stream, HDE) and a v1 node (one stream, zstd3) deliver to the same receiver; each payload opens where its encoding is known",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "dwcp-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
        const rx = yield* Receiver.listen({ dir, host: "127.0.0.1" })
        const v3 = yield* node("node-3", true, rx.port)
        const v1 = yield* node("node-1", false, rx.port)
        const data = Buffer.alloc(4 * 1024 * 1024)
        for (let i = 0; i < data.length; i += 4096) data.write(`page ${i}`, i)

        const a = yield* v3.send({ peer: "node-9", name: "a.bin", data })
        expect(a.served).toMatchObject({ transport: "v3", compression: "v3", prediction: "v3" })
        expect(a.encoding).toBe("hde")
        expect(a.delivery.carrier).toContain("tcp-multistream")
        const gotA = readFileSync((yield* rx.awaitCompleted()).path)

        const b = yield* v1.send({ peer: "node-9", name: "b.bin", data })
        expect(b.served).toMatchObject({ transport: "v1", compression: "v1", prediction: "v1" })
        expect(b).toMatchObject({ encoding: "zstd3", delivery: { carrier: "tcp-single", streams: 1 } })
        const gotB = readFileSync((yield* rx.awaitCompleted()).path)

        // v3 opens both; v1 opens its own and names what it lacks for the v3 one.
        expect(Buffer.from(yield* v3.open(gotA, data.length)).equals(data)).toBe(true)
        expect(Buffer.from(yield* v3.open(gotB, data.length)).equals(data)).toBe(true)
        expect(Buffer.from(yield* v1.open(gotB, data.length)).equals(data)).toBe(true)
        expect(yield* Effect.flip(v1.open(gotA, data.length))).toMatchObject({
          _tag: "EncodingUnavailable",
          encoding: "hde",
        })
      }),
    60_000,
  )

  it.scoped("ITP places on the snapshot; a workload nothing fits is named", () =>
    Effect.gen(function* () {
      const v3 = yield* node("node-3", true, 1)
      const hosts: ReadonlyArray<Engine.HostSpec> = [
        { id: "a", cpuMilli: 2000, memoryMib: 2048 },
        { id: "b", cpuMilli: 16000, memoryMib: 65536 },
      ]
      const r = yield* v3.place({ id: "vm", cpuMilli: 4000, memoryMib: 8192 }, hosts)
      expect(r).toEqual({ host: "b", served: "v3" })
      const e = yield* Effect.flip(v3.place({ id: "huge", cpuMilli: 64000, memoryMib: 1 }, hosts))
      expect(e).toMatchObject({ _tag: "NoHostFits", workload: "huge" })
    }),
  )

  it.scopedLive(
    "prediction loads no model of its own: PBA's baseline predicts until a predictor is served, which then names each prediction",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "dwcp-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
        const rx = yield* Receiver.listen({ dir, host: "127.0.0.1" })
        // The PBA the prediction part builds, caught on its way out of the importer.
        const made = yield* Deferred.make<Pba.PbaService>()
        const importer: Parts.Importer = async (specifier) => {
          const m = await Parts.nativeImport(specifier)
          if (specifier !== "@novacron/dwcp-pba") return m
          const pba = m as PbaModule
          return {
            ...pba,
            Pba: {
              ...pba.Pba,
              make: (s: Pba.PbaSettings) => Effect.tap(pba.Pba.make(s), (svc) => Deferred.succeed(made, svc)),
            },
          }
        }
        const dwcp = yield* node("node-3", true, rx.port, importer)
        // Live clock: a transfer's measured bandwidth is its bytes over the clock's elapsed time.
        const data = Buffer.alloc(64 * 1024, 3)
        let n = 0
        const send = Effect.zipLeft(
          Effect.suspend(() => dwcp.send({ peer: "node-9", name: `x${n++}.bin`, data })),
          rx.awaitCompleted(),
        )
        // The first send has no history to predict from; it leaves one sample.
        expect((yield* send).served.prediction).toBe("v3")
        // Nothing loads or is loading: the model the agent runs is the ML engine's alone.
        expect(yield* (yield* Deferred.await(made)).modelStatus).toEqual({ _tag: "Disabled" })
        const observed = yield* dwcp.observations
        const next = Effect.zipRight(send, Effect.map(Stream.runHead(Stream.fromQueue(observed)), Option.getOrThrow))
        expect((yield* next).predictor).toBe("last-value")
        expect((yield* dwcp.status).predictor).toBe("last-value (the prediction part's; none served)")
        const served = Predictor.harmonicMean(3)
        yield* dwcp.setPredictor({ name: "ml-engine: harmonic-mean(3)", predict: served.predict })
        expect((yield* next).predictor).toBe("harmonic-mean(3)")
        expect((yield* dwcp.status).predictor).toBe("ml-engine: harmonic-mean(3)")
        yield* dwcp.setPredictor(undefined)
        expect((yield* next).predictor).toBe("last-value")
      }),
    60_000,
  )
})
