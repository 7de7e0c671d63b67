import { link, mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises"
import { createServer } from "node:net"
import { hostname } from "node:os"
import { join, resolve } from "node:path"
import { Effect } from "effect"
import { DataDirInUse, type DataDirLock, LockError, lockFileName } from "../ConflictCheck.js"

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const readPid = async (file: string): Promise<number | undefined> => {
  const text = await readFile(file, "utf8")
  const pid = Number.parseInt(text.split("\n")[0] ?? "", 10)
  return Number.isInteger(pid) && pid > 0 ? pid : undefined
}

const code = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code

class InUse {
  constructor(readonly pid: number) {}
}

/**
 * The lock appears atomically with its content: it is written to a private file and hard-linked
 * into place, which fails with EEXIST exactly like an O_EXCL create, but a reader can never
 * see an empty lock file.
 */
const acquireOnce = async (dir: string, lockFile: string): Promise<DataDirLock> => {
  await mkdir(dir, { recursive: true })
  const tmp = `${lockFile}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  await writeFile(tmp, `${process.pid}\n${hostname()}\n${new Date().toISOString()}\n`, { flag: "wx" })
  let tookOverFrom: number | undefined
  try {
    for (let attempt = 0; attempt < 8; attempt++) {
      try {
        await link(tmp, lockFile)
        return { dataDir: dir, lockFile, pid: process.pid, tookOverFrom }
      } catch (e) {
        if (code(e) !== "EEXIST") throw e
      }
      let pid: number | undefined
      try {
        pid = await readPid(lockFile)
      } catch (e) {
        if (code(e) === "ENOENT") continue
        throw e
      }
      if (pid !== undefined && alive(pid)) throw new InUse(pid)
      // Stale: move it aside atomically; if what we moved is no longer the stale lock, a
      // contender took it over meanwhile, so put it back.
      const aside = `${lockFile}.${process.pid}.stale`
      try {
        await rename(lockFile, aside)
      } catch (e) {
        if (code(e) === "ENOENT") continue
        throw e
      }
      const moved = await readPid(aside).catch(() => undefined)
      if (moved !== pid && moved !== undefined && alive(moved)) {
        await link(aside, lockFile).catch(() => undefined)
      } else tookOverFrom = pid ?? 0
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
        ? new DataDirInUse({ dataDir: dir, lockFile, pid: e.pid })
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
