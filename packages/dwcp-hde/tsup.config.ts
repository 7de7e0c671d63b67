import { defineConfig } from "tsup"

// The worker is its own entry, emitted next to index.js: the pool loads it as `./worker.js`
// relative to the bundle (see src/internal/pool.ts).
export const entry = { index: "src/index.ts", worker: "src/internal/worker.ts", HdeSettings: "src/HdeSettings.ts" }

export default defineConfig({
  entry,
  format: ["esm"],
  dts: { entry: { index: "src/index.ts", HdeSettings: "src/HdeSettings.ts" } },
  clean: true,
  sourcemap: true,
  target: "node20",
})
