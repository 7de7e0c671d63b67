import { readFileSync } from "node:fs"
import { Effect } from "effect"
import { Hde, HdeSettings } from "../src/index.js"

const d = readFileSync("/work/main/.cache/hde-bench/text.bin")
await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const hde = yield* Hde.make({ ...HdeSettings.defaults, algorithm: "zstd", workers: 2 }, { pages: true })
      yield* hde.encode(Buffer.alloc(1 << 20, 1))
      const t0 = performance.now()
      const e = yield* hde.encode(d)
      console.log((d.length / 1e6 / ((performance.now() - t0) / 1000)).toFixed(1), e.length)
    }),
  ),
)
