import { readFileSync } from "node:fs"
import { defineConfig } from "tsup"

const { version } = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")) as { version: string }

export default defineConfig([
  // The agent ships as one CommonJS bundle: loading effect and the workspace packages module by
  // module took most of the start-up time, and `main.js` can run one script through a V8 code cache.
  // Native addons stay external (tsup's noExternal wins over external, so they are left out of its
  // pattern), as do the DWCP part packages, which load them and which `@novacron/dwcp` (bundled)
  // imports through the bundle's importer when a part starts (but
  // dwcp-ass, the cluster state every node runs, is bundled; its etcd client stays external and is
  // loaded only in etcd mode); their
  // settings subpaths (`@novacron/dwcp-amst/TransportSettings`) are schemas only and are bundled.
  // Each source builds its own name: src/cli.ts -> dist/cli.cjs, src/main.ts -> dist/main.js.
  {
    entry: { cli: "src/cli.ts" },
    format: ["cjs"],
    outExtension: () => ({ js: ".cjs" }),
    sourcemap: true,
    // Less to read and to check against the code cache on every start.
    minify: true,
    target: "node20",
    platform: "node",
    noExternal: [
      /^(?!better-sqlite3$|zstd-napi$|lz4-napi$|onnxruntime-node$|node-unix-socket$|etcd3$|cockatiel$|@novacron\/dwcp-(?!ass$)[a-z]+$)/,
    ],
    external: [/\.node$/],
    // The version is compiled in; the commit only when the build is told it (CI), so a cached
    // build never claims a commit it was not built from.
    define: {
      __NOVACRON_VERSION__: JSON.stringify(version),
      __NOVACRON_COMMIT__: JSON.stringify(process.env.NOVACRON_BUILD_COMMIT ?? ""),
    },
  },
  // `novacron-node`: compiles the bundle with the code cache of an earlier run.
  {
    entry: { main: "src/main.ts" },
    format: ["esm"],
    target: "node20",
    platform: "node",
    banner: { js: "#!/usr/bin/env node" },
  },
])
