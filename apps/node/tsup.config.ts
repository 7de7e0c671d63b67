import { defineConfig } from "tsup"

export default defineConfig([
  // The agent ships as one CommonJS bundle: loading effect and the workspace packages module by
  // module took most of the start-up time, and `bin` can run one script through a V8 code cache.
  // Native addons stay external (tsup's noExternal wins over external, so they are left out of its
  // pattern), as do the DWCP packages, which load them and are imported only when enabled.
  {
    entry: { agent: "src/main.ts" },
    format: ["cjs"],
    outExtension: () => ({ js: ".cjs" }),
    sourcemap: true,
    // Less to read and to check against the code cache on every start.
    minify: true,
    target: "node20",
    platform: "node",
    noExternal: [/^(?!better-sqlite3$|zstd-napi$|lz4-napi$|onnxruntime-node$|@novacron\/dwcp-)/],
    external: [/\.node$/],
  },
  // `novacron-node`: compiles the bundle with the code cache of an earlier run.
  {
    entry: { main: "src/bin.ts" },
    format: ["esm"],
    target: "node20",
    platform: "node",
    banner: { js: "#!/usr/bin/env node" },
  },
])
