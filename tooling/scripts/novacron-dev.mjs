#!/usr/bin/env node
// One entry point for the README's commands, so a fresh clone needs only Node.js 20 and npm:
// it finds pnpm (or installs the pinned version into .cache/), installs the workspace, builds,
// then runs the agent, the tests or the benchmarks.
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { delimiter, dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const pinned = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).packageManager.split("@")[1]
const env = {
  ...process.env,
  PATH: `${join(root, "node_modules", ".bin")}${delimiter}${process.env.PATH}`,
  // turbo otherwise prints a telemetry notice on every first run
  TURBO_TELEMETRY_DISABLED: process.env.TURBO_TELEMETRY_DISABLED ?? "1",
}

const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env, ...opts })
  if (r.error) throw r.error
  return r.status ?? 1
}
const must = (cmd, args) => {
  const code = run(cmd, args)
  if (code !== 0) process.exit(code)
}
const quiet = (cmd, args) => spawnSync(cmd, args, { cwd: root, env, encoding: "utf8" })

const ensurePnpm = () => {
  const found = quiet("pnpm", ["--version"])
  if (found.status === 0 && found.stdout.trim() === pinned) return
  const local = join(root, ".cache", "pnpm")
  const bin = join(local, "node_modules", ".bin")
  if (!existsSync(join(bin, "pnpm"))) {
    console.error(`[novacron] installing pnpm ${pinned} into .cache/pnpm`)
    must("npm", ["install", "--no-save", "--prefix", local, `pnpm@${pinned}`, "--loglevel=error"])
  }
  env.PATH = `${bin}${delimiter}${env.PATH}`
}

const setup = () => {
  ensurePnpm()
  const frozen = existsSync(join(root, "pnpm-lock.yaml")) && process.env.CI ? ["--frozen-lockfile"] : []
  must("pnpm", ["install", ...frozen, "--reporter=append-only"])
}

const [command = "test", ...rest] = process.argv.slice(2)
switch (command) {
  case "start": {
    setup()
    must("pnpm", ["exec", "turbo", "run", "build", "--filter=@novacron/node...", "--output-logs=errors-only"])
    process.exit(run("node", [join(root, "apps/node/dist/main.js"), "start", ...rest]))
    break
  }
  case "test": {
    setup()
    must("pnpm", ["exec", "turbo", "run", "build", "--output-logs=errors-only"])
    process.exit(run("pnpm", ["exec", "vitest", "run", ...rest]))
    break
  }
  case "bench": {
    setup()
    must("pnpm", ["exec", "turbo", "run", "build", "--output-logs=errors-only"])
    process.exit(run("pnpm", ["exec", "turbo", "run", "bench", "--concurrency=1", ...rest]))
    break
  }
  case "lint": {
    setup()
    process.exit(run("pnpm", ["exec", "biome", "ci", "."]))
    break
  }
  case "typecheck": {
    setup()
    process.exit(run("pnpm", ["exec", "turbo", "run", "typecheck", "--output-logs=errors-only"]))
    break
  }
  case "setup":
    setup()
    break
  default:
    console.error(`usage: novacron-dev.mjs start|test|bench|lint|typecheck|setup [args]`)
    process.exit(2)
}
