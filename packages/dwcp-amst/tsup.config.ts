import { defineConfig } from "tsup"

export default defineConfig([
  {
    entry: ["src/index.ts", "src/TransportSettings.ts"],
    format: ["esm"],
    dts: true,
    clean: true,
    sourcemap: true,
    target: "node20",
  },
  // The `amst` CLI as one tree-shaken file with its JavaScript dependencies: loading effect's and
  // the workspace packages' modules one by one cost 0.6-0.8 s before the first byte was sent.
  // Native modules stay external (they are loaded from node_modules at run time).
  {
    entry: ["src/cli.ts"],
    format: ["esm"],
    dts: false,
    clean: false,
    sourcemap: true,
    target: "node20",
    noExternal: [/^(?!@node-rs\/)/],
    banner: {
      js: 'import { createRequire as __amstRequire } from "node:module"; const require = __amstRequire(import.meta.url);',
    },
  },
])
