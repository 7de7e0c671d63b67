import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"

// A plain async engine: the cluster token store calls it inside its file lock, which is async.

const fsyncDir = async (dir: string): Promise<void> => {
  const handle = await fs.open(dir, "r")
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

export interface WriteOptions {
  readonly mode?: number | undefined
  readonly directoryMode?: number | undefined
}

/** Temp file beside the target (same filesystem, so rename is atomic), fsync, rename, fsync dir. */
export const writeAtomic = async (file: string, data: string | Uint8Array, options: WriteOptions = {}) => {
  const mode = options.mode ?? 0o644
  const dir = path.dirname(file)
  if (options.directoryMode !== undefined) await fs.mkdir(dir, { recursive: true, mode: options.directoryMode })
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`)
  // "wx": never follow or reuse a file someone placed at the temporary name.
  const handle = await fs.open(tmp, "wx", mode)
  try {
    await handle.writeFile(data)
    // open's mode is masked by the umask; a secret's 0600 must be exact.
    await handle.chmod(mode)
    await handle.sync()
  } catch (e) {
    await handle.close().catch(() => undefined)
    await fs.rm(tmp, { force: true })
    throw e
  }
  await handle.close()
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

export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))
