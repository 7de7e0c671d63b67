import { link, mkdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises"
import { createServer } from "node:net"
import { hostname } from "node:os"
import { dirname, join, resolve } from "node:path"
import { Process } from "@novacron/init"
import { Effect } from "effect"
import { DataDirInUse, type DataDirLock, LockError, lockFileName } from "../ConflictCheck.js"

interface Owner {
  readonly pid: number
  readonly host: string
  /** Start time of the process (clock ticks since boot, /proc/<pid>/stat field 22); "" if unknown. */
  readonly start: string
}

/** Field 22 of /proc/<pid>/stat: with the pid it names one process, even after the pid is reused. */
const startTime = async (pid: number): Promise<string> => {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? ""
  } catch {
    return ""
  }
}

const readOwner = async (file: string): Promise<Owner | undefined> => {
  const [pidText = "", host = "", start = ""] = (await readFile(file, "utf8")).split("\n")
  const pid = Number.parseInt(pidText, 10)
  return Number.isInteger(pid) && pid > 0 ? { pid, host, start } : undefined
}

const readPid = async (file: string): Promise<number | undefined> => (await readOwner(file))?.pid

/** Live on this host, or unknowable because the lock was written on another host (shared file system). */
const live = async (owner: Owner): Promise<boolean> => {
  if (owner.host !== "" && owner.host !== hostname()) return true
  if (!Process.alive(owner.pid)) return false
  // Same pid, different start time: the owner died and its pid went to an unrelated process.
  const now = owner.start === "" ? "" : await startTime(owner.pid)
  return owner.start === "" || now === "" || now === owner.start
}

const code = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code

// Not `mkdir({ recursive: true })`: on Node 20 it spins forever under /proc (ENOENT from a parent
// that exists). Each level is tried once, parents only when the level itself is missing.
const mkdirp = async (dir: string): Promise<void> => {
  try {
    await mkdir(dir)
    return
  } catch (e) {
    if (code(e) === "EEXIST" && (await stat(dir)).isDirectory()) return
    if (code(e) !== "ENOENT" || dirname(dir) === dir) throw e
  }
  await mkdirp(dirname(dir))
  await mkdir(dir).catch(async (e) => {
    if (!(code(e) === "EEXIST" && (await stat(dir)).isDirectory())) throw e
  })
}

class InUse {
  constructor(readonly owner: Owner) {}
}

/**
 * The lock appears atomically with its content: it is written to a private file and hard-linked
 * into place, which fails with EEXIST exactly like an O_EXCL create, but a reader can never
 * see an empty lock file.
 */
const acquireOnce = async (dir: string, lockFile: string): Promise<DataDirLock> => {
  await mkdirp(dir)
  const tmp = `${lockFile}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  const content = `${process.pid}\n${hostname()}\n${await startTime(process.pid)}\n${new Date().toISOString()}\n`
  await writeFile(tmp, content, { flag: "wx" })
  let tookOverFrom: number | undefined
  try {
    for (let attempt = 0; attempt < 8; attempt++) {
      try {
        await link(tmp, lockFile)
        return { dataDir: dir, lockFile, pid: process.pid, tookOverFrom }
      } catch (e) {
        if (code(e) !== "EEXIST") throw e
      }
      let owner: Owner | undefined
      try {
        owner = await readOwner(lockFile)
      } catch (e) {
        if (code(e) === "ENOENT") continue
        throw e
      }
      if (owner !== undefined && (await live(owner))) throw new InUse(owner)
      // Stale: move it aside atomically; if what we moved is no longer the stale lock, a
      // contender took it over meanwhile, so put it back.
      const aside = `${lockFile}.${process.pid}.stale`
      try {
        await rename(lockFile, aside)
      } catch (e) {
        if (code(e) === "ENOENT") continue
        throw e
      }
      const moved = await readOwner(aside).catch(() => undefined)
      const same = moved?.pid === owner?.pid && moved?.start === owner?.start
      if (!same && moved !== undefined && (await live(moved))) {
        await link(aside, lockFile).catch(() => undefined)
      } else tookOverFrom = owner?.pid ?? 0
      await unlink(aside).catch(() => undefined)
    }
    throw new Error("lock contended too long")
  } finally {
    await unlink(tmp).catch(() => undefined)
  }
}

export const acquire = (dataDir: string): Effect.Effect<DataDirLock, DataDirInUse | LockError> => {
  const dir = resolve(dataDir)
  const lockFile = join(dir, lockFileName)
  return Effect.tryPromise({
    try: () => acquireOnce(dir, lockFile),
    catch: (e) =>
      e instanceof InUse
        ? new DataDirInUse({
            dataDir: dir,
            lockFile,
            pid: e.owner.pid,
            host: e.owner.host === hostname() ? undefined : e.owner.host,
          })
        : new LockError({ lockFile, reason: code(e) ?? String(e) }),
  })
}

export const stillHeld = (lock: DataDirLock): Effect.Effect<boolean> =>
  Effect.promise(() =>
    readPid(lock.lockFile).then(
      (pid) => pid === lock.pid,
      () => false,
    ),
  )

export const release = (lock: DataDirLock): Effect.Effect<void> =>
  stillHeld(lock).pipe(
    Effect.flatMap((held) => (held ? Effect.promise(() => unlink(lock.lockFile).catch(() => undefined)) : Effect.void)),
  )

/** Resolves to the error code when `host:port` cannot be bound, undefined when it is free. */
export const probePort = (host: string, port: number): Effect.Effect<string | undefined> =>
  Effect.async<string | undefined>((resume) => {
    const server = createServer()
    server.once("error", (e) => resume(Effect.succeed(code(e) ?? String(e))))
    server.listen({ host, port, exclusive: true }, () => server.close(() => resume(Effect.succeed(undefined))))
    return Effect.sync(() => server.close())
  })
