import { open, rename, unlink } from "node:fs/promises"
import { dirname } from "node:path"

/**
 * Replaces `path` with `data` so that a crash leaves either the old or the new content:
 * write a temporary file, fsync it, rename it over the target, fsync the directory.
 */
export const writeFileAtomic = async (path: string, data: string): Promise<void> => {
  const tmp = `${path}.tmp-${process.pid}`
  const fh = await open(tmp, "w", 0o644)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, path)
  } catch (e) {
    await unlink(tmp).catch(() => undefined)
    throw e
  }
  const dir = await open(dirname(path), "r")
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}
