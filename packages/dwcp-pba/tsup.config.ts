import { defineConfig } from "tsup"

export default defineConfig({
  // Predictor alone: the baselines without loading onnxruntime (@novacron/ml serves them at once).
  entry: ["src/index.ts", "src/Predictor.ts"],
  format: ["esm"],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "node20",
})
