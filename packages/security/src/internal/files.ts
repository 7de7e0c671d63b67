import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"

const fsyncDir = async (dir: string) => {
  const handle = await fs.open(dir, "r")
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Writes a file durably and atomically (temp file, fsync, rename, fsync of the directory). */
export const writeAtomic = async (file: string, data: string | Uint8Array, mode: number): Promise<void> => {
  const dir = path.dirname(file)
  await fs.mkdir(dir, { recursive: true, mode: 0o700 })
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`)
  const handle = await fs.open(tmp, "wx", mode)
  try {
    await handle.writeFile(data)
    // open's mode is masked by the umask; set it exactly.
    await handle.chmod(mode)
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    await fs.rename(tmp, file)
  } catch (e) {
    await fs.rm(tmp, { force: true })
    throw e
  }
  await fsyncDir(dir)
}

export const renameDurable = async (from: string, to: string): Promise<void> => {
  await fs.rename(from, to)
  await fsyncDir(path.dirname(to))
}

/** The file's contents; `undefined` when it, or a directory above it, does not exist. */
export const readIfExists = async (file: string): Promise<Buffer | undefined> => {
  try {
    return await fs.readFile(file)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    // ENOTDIR: a file stands where a directory above would be, so this file cannot exist.
    if (code === "ENOENT" || code === "ENOTDIR") return undefined
    throw e
  }
}

export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))
