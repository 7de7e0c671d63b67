/**
 * The `novacron-node` executable (`dist/main.js`): runs the agent's bundle (`src/cli.ts`, bundled
 * as `dist/cli.cjs`) through a V8 code cache.
 *
 * Compiling the bundle and its start-up functions is most of the time between process start
 * and READY. Node 20 has no module compile cache (`module.enableCompileCache` is Node 22), so the
 * bundle is compiled as a `vm.Script` with the cached data of an earlier run, kept per user under
 * `$XDG_CACHE_HOME/novacron` (or `~/.cache/novacron`), keyed by the bundle file and the Node
 * version. v8-compile-cache does the same for `require` but breaks `import()` in the cached code,
 * which the agent uses for the DWCP packages (so does plain `vm.Script` on Node 20: see
 * internal/importEsm.ts). `NOVACRON_COMPILE_CACHE=off` turns it off, `NOVACRON_COMPILE_CACHE=DIR`
 * moves it. A rejected, unreadable or unwritable cache only costs time.
 */
import { createHash } from "node:crypto"
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { homedir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as vm from "node:vm"

const bundle = fileURLToPath(new URL("./cli.cjs", import.meta.url))
const source = readFileSync(bundle, "utf8")

const setting = process.env.NOVACRON_COMPILE_CACHE
const cacheDir =
  setting === "off"
    ? undefined
    : setting !== undefined && setting !== ""
      ? setting
      : join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "novacron")
// V8 checks only the source length before using cached code, so the key names this very file:
// its size, modification time and inode (cheaper than hashing 1 MB on every start).
const stat = statSync(bundle, { bigint: true })
const key = createHash("sha256")
  .update(`${process.version} ${process.arch} ${stat.size} ${stat.mtimeNs} ${stat.ino} ${bundle}`)
  .digest("hex")
const cacheFile = cacheDir === undefined ? undefined : join(cacheDir, `agent-${key.slice(0, 24)}.v8cache`)

// Cached code runs in the agent: a cache directory or file that another user owns or may write
// (a shared XDG_CACHE_HOME, a mistyped NOVACRON_COMPILE_CACHE) is neither read nor written.
const unsafe = (path: string): string | undefined => {
  try {
    const st = lstatSync(path)
    const uid = process.getuid?.()
    if (st.isSymbolicLink()) return `${path} is a symbolic link`
    if (uid !== undefined && st.uid !== uid) return `${path} is owned by uid ${st.uid}, not ${uid}`
    if ((st.mode & 0o022) !== 0) return `${path} is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`
    return undefined
  } catch {
    return undefined // missing: created below with private modes
  }
}
const refused = cacheFile === undefined ? undefined : (unsafe(dirname(cacheFile)) ?? unsafe(cacheFile))
if (refused !== undefined) process.stderr.write(`novacron: V8 code cache not used: ${refused}\n`)
const usable = refused === undefined ? cacheFile : undefined

let cachedData: Buffer | undefined
if (usable !== undefined) {
  try {
    cachedData = readFileSync(usable)
  } catch {
    cachedData = undefined
  }
}

// Module.wrap's parameters, plus the importer the bundle uses for `import()` (see internal/importEsm.ts).
const wrapped = `(function (exports, require, module, __filename, __dirname, __novacronImportEsm) { ${source}\n});`
const script = new vm.Script(wrapped, {
  filename: bundle,
  ...(cachedData === undefined ? {} : { cachedData }),
  importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
})

// Written once the agent has run a while, so the functions compiled during boot are in it too.
if (usable !== undefined && (cachedData === undefined || script.cachedDataRejected === true)) {
  setTimeout(() => {
    try {
      mkdirSync(dirname(usable), { recursive: true, mode: 0o700 })
      const partial = `${usable}.${process.pid}.tmp`
      writeFileSync(partial, script.createCachedData(), { mode: 0o600 })
      renameSync(partial, usable)
      // Caches of other builds or Node versions would pile up; another install's cache in use is
      // spared for a week (it is rewritten after that at the cost of one cold start).
      const weekAgo = Date.now() - 7 * 24 * 3600 * 1000
      for (const name of readdirSync(dirname(usable))) {
        const other = join(dirname(usable), name)
        if (/^agent-[0-9a-f]{24}\.v8cache$/.test(name) && other !== usable && statSync(other).mtimeMs < weekAgo) {
          rmSync(other, { force: true })
        }
      }
    } catch {
      // An unwritable cache directory only means the next start compiles again.
    }
  }, 2000).unref()
}

const module = { exports: {} }
const wrapper = script.runInThisContext() as (
  exports: unknown,
  require: NodeJS.Require,
  module: unknown,
  filename: string,
  dirname: string,
  importEsm: (specifier: string) => Promise<unknown>,
) => void
wrapper.call(
  module.exports,
  module.exports,
  createRequire(bundle),
  module,
  bundle,
  dirname(bundle),
  (specifier) => import(specifier),
)
