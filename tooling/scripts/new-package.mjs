#!/usr/bin/env node
// Scaffolds packages/<dir> with the workspace's conventions: ESM + .d.ts via tsup, sources
// resolved in tests through the "@novacron/source" condition, README, src/index.ts, test/.
// usage: node tooling/scripts/new-package.mjs <dir> "<one-line description>"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const [dir, description = ""] = process.argv.slice(2)
if (!dir || !/^[a-z][a-z0-9-]*$/.test(dir)) {
  console.error('usage: new-package.mjs <dir> "<description>"')
  process.exit(2)
}
const base = join(root, "packages", dir)
if (existsSync(base)) {
  console.error(`packages/${dir} exists`)
  process.exit(1)
}
const name = `@novacron/${dir}`
const files = {
  "package.json": `${JSON.stringify(
    {
      name,
      version: "0.1.0",
      description,
      license: "Apache-2.0",
      type: "module",
      sideEffects: false,
      exports: {
        ".": { "@novacron/source": "./src/index.ts", types: "./dist/index.d.ts", import: "./dist/index.js" },
      },
      main: "./dist/index.js",
      types: "./dist/index.d.ts",
      files: ["dist", "src"],
      scripts: { build: "tsup", typecheck: "tsc --noEmit", test: "vitest run" },
      peerDependencies: { effect: "^3.22.0" },
      devDependencies: {
        "@novacron/tsconfig": "workspace:*",
        "@novacron/vitest-config": "workspace:*",
        effect: "^3.22.4",
      },
    },
    null,
    2,
  )}\n`,
  "tsconfig.json": `${JSON.stringify({ extends: "@novacron/tsconfig/tsconfig.base.json", include: ["src", "test", "bench"] }, null, 2)}\n`,
  "tsup.config.ts": `import { defineConfig } from "tsup"

export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm"],
  dts: true,
  clean: true,
  sourcemap: true,
  target: "node20",
})
`,
  "vitest.config.ts": `import { novacronProject } from "@novacron/vitest-config"

export default novacronProject("${dir}")
`,
  "README.md": `# ${name}\n\n${description}\n`,
  "src/index.ts": `/**\n * ${description}\n *\n * @packageDocumentation\n */\nexport {}\n`,
}
for (const [file, text] of Object.entries(files)) {
  mkdirSync(dirname(join(base, file)), { recursive: true })
  writeFileSync(join(base, file), text)
}
mkdirSync(join(base, "test"), { recursive: true })
console.log(`created packages/${dir}; run pnpm install to link it`)
