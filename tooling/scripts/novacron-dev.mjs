#!/usr/bin/env node
// One entry point for the README's commands, so a fresh clone needs only Node.js 20 and npm:
// it finds pnpm (or installs the pinned version into .cache/), installs the workspace, builds,
// then runs the agent, the tests or the benchmarks.
//
// Set-up prints one line per step; the tools' own output goes to .cache/setup.log, which is
// shown (its tail) when a step fails. NOVACRON_VERBOSE=1 shows everything as it happens;
// NOVACRON_SKIP_SETUP=1 runs what is already installed and built (offline, or a quick restart).
// `start` runs the agent as a child and stays in front of it: signals are forwarded, and this
// process exits only after the agent, with its exit code.
import { spawn, spawnSync } from "node:child_process"
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { delimiter, dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const pinned = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).packageManager.split("@")[1]
// biome-ignore lint/suspicious/noUndeclaredEnvVars: read by this script, not by a turbo task
const verbose = process.env.NOVACRON_VERBOSE === "1"
const logFile = join(root, ".cache", "setup.log")
const env = {
  ...process.env,
  PATH: `${join(root, "node_modules", ".bin")}${delimiter}${process.env.PATH}`,
  // turbo otherwise prints a telemetry notice on every first run
  // biome-ignore lint/suspicious/noUndeclaredEnvVars: turbo's own setting, not an input of a task
  TURBO_TELEMETRY_DISABLED: process.env.TURBO_TELEMETRY_DISABLED ?? "1",
}

const say = (line) => process.stderr.write(`[novacron] ${line}\n`)

const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env, ...opts })
  if (r.error) throw r.error
  return r.status ?? 1
}
const quiet = (cmd, args) => spawnSync(cmd, args, { cwd: root, env, encoding: "utf8" })

/** One set-up step: a line saying what and how long; its output in the log, shown when it fails. */
const step = (what, cmd, args) => {
  const started = Date.now()
  if (verbose) {
    say(what)
    const code = run(cmd, args)
    if (code !== 0) process.exit(code)
    return
  }
  process.stderr.write(`[novacron] ${what} ... `)
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 })
  const output = `${r.stdout ?? ""}${r.stderr ?? ""}`
  appendFileSync(logFile, `\n$ ${cmd} ${args.join(" ")}\n${output}${r.error ? `${r.error.message}\n` : ""}`)
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  if (r.error === undefined && r.status === 0) {
    process.stderr.write(`ok (${seconds} s)\n`)
    return
  }
  process.stderr.write(`FAILED (${seconds} s)\n\n`)
  const tail = output.trimEnd().split("\n").slice(-40).join("\n")
  process.stderr.write(`${tail}${r.error ? `\n${r.error.message}` : ""}\n\n`)
  say(`the full output is in ${logFile}`)
  if (/gyp|node-gyp|make: |g\+\+|cc1plus|python/i.test(output))
    say("native addons need Python 3, make and a C/C++ compiler (see the README's prerequisites)")
  process.exit(r.status ?? 1)
}

let pnpmReady = false
const ensurePnpm = () => {
  if (pnpmReady) return
  pnpmReady = true
  const local = join(root, ".cache", "pnpm")
  const bin = join(local, "node_modules", ".bin")
  // The copy installed here earlier is the pinned one: no need to ask a pnpm on the PATH (a spawn).
  const installedHere = existsSync(join(bin, "pnpm"))
  if (!installedHere) {
    const found = quiet("pnpm", ["--version"])
    if (found.status === 0 && found.stdout.trim() === pinned) return
  }
  if (!installedHere)
    step(`installing pnpm ${pinned} into .cache/pnpm`, "npm", [
      "install",
      "--no-save",
      "--prefix",
      local,
      `pnpm@${pinned}`,
      "--loglevel=error",
    ])
  env.PATH = `${bin}${delimiter}${env.PATH}`
}

const mtime = (file) => {
  try {
    return statSync(file).mtimeMs
  } catch {
    return undefined
  }
}

// pnpm itself takes a second or more to find out that nothing changed; the install is current
// when node_modules was written after the lockfile and every package.json of the workspace.
const installCurrent = () => {
  const installed = mtime(join(root, "node_modules", ".modules.yaml"))
  if (installed === undefined) return false
  const manifests = [join(root, "package.json"), join(root, "pnpm-lock.yaml"), join(root, "pnpm-workspace.yaml")]
  for (const group of ["packages", "apps", "tooling"]) {
    const dir = join(root, group)
    if (!existsSync(dir)) continue
    for (const name of readdirSync(dir)) manifests.push(join(dir, name, "package.json"))
  }
  return manifests.every((m) => (mtime(m) ?? 0) <= installed)
}

// biome-ignore lint/suspicious/noUndeclaredEnvVars: read by this script, not by a turbo task
const skipSetup = process.env.NOVACRON_SKIP_SETUP === "1"

const setup = () => {
  if (skipSetup) return
  mkdirSync(dirname(logFile), { recursive: true })
  writeFileSync(logFile, `novacron set-up, ${new Date().toISOString()}\n`)
  if (installCurrent()) return
  ensurePnpm()
  const frozen = existsSync(join(root, "pnpm-lock.yaml")) && process.env.CI ? ["--frozen-lockfile"] : []
  step("installing dependencies (pnpm install)", "pnpm", ["install", ...frozen, "--reporter=append-only"])
}

// turbo itself, not `pnpm exec turbo`: pnpm's own start-up costs most of a second on every start.
// turbo needs the package manager's binary on the PATH to read the workspace.
const build = (filter) =>
  skipSetup ||
  ensurePnpm() ||
  step(
    `building${filter ? " the agent" : ""} (turbo; unchanged packages come from its cache)`,
    join(root, "node_modules", ".bin", "turbo"),
    ["run", "build", ...(filter ? [`--filter=${filter}`] : []), "--output-logs=errors-only"],
  )

const signalNumber = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }

/**
 * Runs the agent and stays in front of it until it exits. The agent gets its own process group, so
 * a Ctrl-C reaches it once, through here: a terminal sends SIGINT to the whole foreground group
 * and npm forwards its own copy too, and the agent reads a second signal as "force". The copies of
 * one keypress arrive together; a signal of the same name within half a second is one of them.
 */
const runAgent = (args) => {
  const child = spawn(process.execPath, [join(root, "apps/node/dist/main.js"), ...args], {
    cwd: process.cwd(),
    stdio: "inherit",
    env: process.env,
    detached: true,
  })
  const last = new Map()
  const forward = (signal) => {
    const now = Date.now()
    const previous = last.get(signal)
    last.set(signal, now)
    if (previous !== undefined && now - previous < 500) return
    // A closed terminal (SIGHUP) stops the agent like SIGTERM does.
    const to = signal === "SIGHUP" ? "SIGTERM" : signal
    try {
      process.kill(-child.pid, to)
    } catch {
      // already gone
    }
  }
  for (const signal of Object.keys(signalNumber)) process.on(signal, forward)
  // npm runs this under `sh -c`; dash neither forwards a SIGTERM nor waits, so when npm is told to
  // stop, the shell dies and this process is re-parented. Its parent gone, the agent is stopped too.
  const parent = process.ppid
  const watch = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(watch)
    forward("SIGTERM")
  }, 250)
  watch.unref()
  child.on("error", (e) => {
    say(`cannot start the agent: ${e.message}`)
    process.exit(1)
  })
  child.on("exit", (code, signal) => {
    const status = code ?? 128 + (signalNumber[signal] ?? 1)
    if (process.stderr.isTTY) say(`agent exited with code ${status}`)
    process.exit(status)
  })
}

const [command = "test", ...rest] = process.argv.slice(2)
switch (command) {
  case "start": {
    setup()
    build("@novacron/node...")
    runAgent(["start", ...rest])
    break
  }
  case "test": {
    setup()
    ensurePnpm()
    build()
    process.exit(run("pnpm", ["exec", "vitest", "run", ...rest]))
    break
  }
  case "bench": {
    setup()
    ensurePnpm()
    build()
    process.exit(run("pnpm", ["exec", "turbo", "run", "bench", "--concurrency=1", ...rest]))
    break
  }
  case "lint": {
    setup()
    ensurePnpm()
    process.exit(run("pnpm", ["exec", "biome", "ci", "."]))
    break
  }
  case "typecheck": {
    setup()
    ensurePnpm()
    const types = run("pnpm", ["exec", "turbo", "run", "typecheck", "--output-logs=errors-only"])
    // The TSDoc @example blocks compile against today's API too.
    const examples = run("node", [join(root, "tooling/scripts/check-examples.mjs")])
    process.exit(types !== 0 ? types : examples)
    break
  }
  case "setup":
    setup()
    break
  default:
    say("usage: novacron-dev.mjs start|test|bench|lint|typecheck|setup [args]")
    process.exit(2)
}
