import * as fs from "node:fs/promises"

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
