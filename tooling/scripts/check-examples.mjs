#!/usr/bin/env node
// Type-checks every `@example` block in the packages' TSDoc, so the examples a README or an editor
// shows compile against today's API. Each block becomes a module under `<pkg>/.examples/` (ignored
// by git) and is checked with the package's own tsconfig; the package imports itself by name.
import { spawnSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const only = process.argv.slice(2)

const walk = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const full = join(dir, name)
    return statSync(full).isDirectory() ? walk(full) : full.endsWith(".ts") ? [full] : []
  })

// The fenced ```ts block after each `@example` tag, with the leading ` * ` of the comment removed.
const examples = (file) => {
  const lines = readFileSync(file, "utf8").split("\n")
  const found = []
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\*\s*@example\b/.test(lines[i])) continue
    let j = i + 1
    while (j < lines.length && !/^\s*\*\s*```/.test(lines[j])) j++
    const start = j + 1
    let end = start
    while (end < lines.length && !/^\s*\*\s*```/.test(lines[end])) end++
    const code = lines.slice(start, end).map((l) => l.replace(/^\s*\* ?/, ""))
    found.push({ line: start + 1, code: code.join("\n") })
    i = end
  }
  return found
}

const packages = ["packages", "apps"].flatMap((group) =>
  readdirSync(join(root, group)).map((name) => join(root, group, name)),
)
let failed = 0
let checked = 0
for (const pkg of packages) {
  const name = relative(root, pkg)
  if (only.length > 0 && !only.some((o) => name.endsWith(o))) continue
  let src
  try {
    src = walk(join(pkg, "src"))
  } catch {
    continue
  }
  const blocks = src.flatMap((file) => examples(file).map((e) => ({ ...e, file })))
  if (blocks.length === 0) continue
  const out = join(pkg, ".examples")
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out)
  const origin = new Map()
  for (const b of blocks) {
    const base = `${relative(join(pkg, "src"), b.file).replace(/[/.]/g, "_")}_${b.line}.ts`
    origin.set(base, `${relative(root, b.file)}:${b.line}`)
    // `export {}` keeps each example its own module, so their top-level names do not clash.
    writeFileSync(join(out, base), `${b.code}\nexport {}\n`)
    checked++
  }
  writeFileSync(
    join(out, "tsconfig.json"),
    JSON.stringify({
      extends: "../tsconfig.json",
      compilerOptions: { noUnusedLocals: false, noEmit: true },
      include: ["./*.ts"],
    }),
  )
  const tsc = spawnSync(join(root, "node_modules/.bin/tsc"), ["-p", join(out, "tsconfig.json"), "--pretty", "false"], {
    cwd: pkg,
    encoding: "utf8",
  })
  if (tsc.status !== 0) {
    failed++
    // Name the source line of the example, not the generated file.
    const text = `${tsc.stdout}${tsc.stderr}`.replace(/(?:\.examples\/)?([\w]+\.ts)\((\d+),(\d+)\)/g, (m, f, l) =>
      origin.has(f) ? `${origin.get(f)} (example line ${l})` : m,
    )
    process.stderr.write(`${name}: @example blocks do not compile:\n${text}\n`)
  }
  rmSync(out, { recursive: true, force: true })
}
process.stdout.write(`checked ${checked} @example block(s); ${failed} package(s) with errors\n`)
process.exit(failed > 0 ? 1 : 0)
