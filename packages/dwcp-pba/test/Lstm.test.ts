import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Lstm, Predictor } from "../src/index.js"
import reference from "./fixtures/lstm-reference.json" with { type: "json" }

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "dwcp-pba-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true })),
)

describe("shipped model", () => {
  it.scoped("loads and reproduces the outputs PyTorch computed at training time", () =>
    Effect.gen(function* () {
      const model = yield* Lstm.load()
      expect(model.metadata.window).toBe(20)
      expect(reference.samples.length).toBeGreaterThan(0)
      for (const [k, samples] of reference.samples.entries()) {
        const out = yield* model.run(samples)
        const want = reference.outputs[k]!
        expect(out.length).toBe(6)
        for (let i = 0; i < 6; i++) expect(out[i]).toBeCloseTo(want[i]!, 4)
      }
    }),
  )

  it.scoped("predicts with an ordered interval from a full window", () =>
    Effect.gen(function* () {
      const p = Lstm.predictor(yield* Lstm.load())
      const pred = yield* p.predict(reference.samples[0]!)
      expect(pred.status).toBe("ok")
      expect(pred.predictor).toBe("lstm")
      for (const f of [pred.oneSecond, pred.fiveSeconds]) {
        expect(Number.isFinite(f.mean)).toBe(true)
        expect(f.lower).toBeLessThanOrEqual(f.mean)
        expect(f.upper).toBeGreaterThanOrEqual(f.mean)
      }
    }),
  )

  it.scoped("falls back, degraded, when the history is shorter than the window", () =>
    Effect.gen(function* () {
      const p = Lstm.predictor(yield* Lstm.load())
      const xs = [1e6, 2e6, 3e6]
      const pred = yield* p.predict(xs)
      expect(pred.status).toBe("degraded")
      expect(pred.oneSecond).toEqual(Predictor.lastValue().predictSync(xs).oneSecond)
    }),
  )
})

describe("fallback", () => {
  const xs = reference.samples[1]!
  const fallback = Predictor.lastValue().predictSync(xs)

  it.scoped("a missing model falls back to the baseline and says why", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { predictor, error } = yield* Lstm.loadOrFallback(join(dir, "absent.onnx"))
      expect(error?._tag).toBe("ModelLoadError")
      const pred = yield* predictor.predict(xs)
      expect(pred.status).toBe("degraded")
      expect(pred.reason).toMatch(/unavailable/)
      expect(pred.oneSecond).toEqual(fallback.oneSecond)
    }),
  )

  it.scoped("a corrupt model file is rejected by onnxruntime and falls back", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const path = join(dir, "pba-lstm.onnx")
      yield* Effect.promise(() =>
        copyFile(Lstm.defaultModelPath.replace(/\.onnx$/, ".json"), join(dir, "pba-lstm.json")),
      )
      yield* Effect.promise(() => writeFile(path, Buffer.from("not an onnx model, just bytes".repeat(40))))
      const { predictor, error } = yield* Lstm.loadOrFallback(path)
      expect(error?.reason).toBe("onnxruntime rejected the model")
      expect((yield* predictor.predict(xs)).status).toBe("degraded")
    }),
  )

  it.scoped("corrupt metadata is rejected before the model is read", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* Effect.promise(() => copyFile(Lstm.defaultModelPath, join(dir, "m.onnx")))
      yield* Effect.promise(() => writeFile(join(dir, "m.json"), JSON.stringify({ format: "other" })))
      const { error } = yield* Lstm.loadOrFallback(join(dir, "m.onnx"))
      expect(error?.reason).toBe("invalid model metadata")
    }),
  )

  it.scoped("a model that outputs NaN loads, but each prediction falls back, degraded", () =>
    Effect.gen(function* () {
      const { predictor, error } = yield* Lstm.loadOrFallback(fixture("nan-model.onnx"))
      expect(error).toBeUndefined()
      const pred = yield* predictor.predict(xs)
      expect(pred.status).toBe("degraded")
      expect(pred.reason).toBe("lstm output is not finite")
      expect(pred.oneSecond).toEqual(fallback.oneSecond)
      expect(pred.fiveSeconds).toEqual(fallback.fiveSeconds)
    }),
  )
})
