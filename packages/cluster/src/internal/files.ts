import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"

export const readIfExists = async (file: string): Promise<string | undefined> => {
  try {
    return await fs.readFile(file, "utf8")
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
}

export const exists = async (file: string): Promise<boolean> =>
  (await fs.stat(file).catch(() => undefined)) !== undefined

const STALE_MS = 30_000

/**
 * Runs `body` holding `<file>.lock`: the join server (in the node) and `cluster token …` (another
 * process) both read-modify-write the token file. A lock older than 30 s is from a crashed holder.
 */
export const withFileLock = async <A>(file: string, body: () => Promise<A>, waitMs = 10_000): Promise<A> => {
  const lock = `${file}.lock`
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
  const deadline = Date.now() + waitMs
  for (;;) {
    try {
      const handle = await fs.open(lock, "wx", 0o600)
      await handle.writeFile(String(process.pid))
      await handle.close()
      break
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
      const stat = await fs.stat(lock).catch(() => undefined)
      if (stat !== undefined && Date.now() - stat.mtimeMs > STALE_MS) {
        // Move aside rather than delete: of two processes finding it stale, only one rename succeeds.
        await fs.rename(lock, `${lock}.stale.${randomBytes(4).toString("hex")}`).catch(() => undefined)
        continue
      }
      if (Date.now() > deadline) throw new Error(`lock ${lock} held for more than ${waitMs} ms`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  try {
    return await body()
  } finally {
    await fs.rm(lock, { force: true })
  }
}

export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))
