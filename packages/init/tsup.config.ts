import { defineConfig } from "tsup"

export default defineConfig({
  entry: ["src/index.ts", "src/CommonSettings.ts", "src/SystemSettings.ts"],
  format: ["esm"],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "node20",
})
