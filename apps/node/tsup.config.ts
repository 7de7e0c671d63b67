import { defineConfig } from "tsup"

// The agent ships as one bundle: loading effect and the workspace packages module by module took
// most of the start-up time. Native addons stay external; CommonJS dependencies get a `require`.
export default defineConfig({
  entry: ["src/main.ts"],
  format: ["esm"],
  clean: true,
  sourcemap: true,
  target: "node20",
  platform: "node",
  // tsup's noExternal wins over external, so the native addons (and the DWCP packages, which load
  // them) are left out of the noExternal pattern itself.
  noExternal: [/^(?!better-sqlite3$|zstd-napi$|lz4-napi$|onnxruntime-node$|@novacron\/dwcp-)/],
  external: [/\.node$/],
  banner: {
    js: [
      "#!/usr/bin/env node",
      'import { createRequire as __novacronCreateRequire } from "node:module";',
      "const require = __novacronCreateRequire(import.meta.url);",
    ].join("\n"),
  },
})
