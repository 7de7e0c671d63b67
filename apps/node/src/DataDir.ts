/**
 * The data directory, created before anything is written into it, with an error that names the
 * path and the cause instead of a defect.
 *
 * @since 0.1.0
 */
import { mkdir, stat } from "node:fs/promises"
import { basename, dirname, resolve } from "node:path"
import { Data, Effect } from "effect"

const explain = (code: string | undefined, at: string): string => {
  switch (code) {
    case "EACCES":
    case "EPERM":
      return `permission denied creating ${at}: run the agent as a user who may write there, or choose another --data-dir`
    case "ENOTDIR":
    case "EEXIST":
      return `${at} is a file, not a directory`
    case "EROFS":
      return `${at} is on a read-only file system`
    case "ENOENT":
      return `${dirname(at)} refuses to create ${basename(at)} (ENOENT from an existing directory: a virtual file system such as /proc?)`
    case "ENOSPC":
      return `no space left on the device holding ${at}`
    default:
      return `${code ?? "error"} creating ${at}`
  }
}

/**
 * The data directory cannot be created or is not a directory.
 *
 * @since 0.1.0
 * @category errors
 */
export class DataDirError extends Data.TaggedError("DataDirError")<{
  readonly dataDir: string
  /** The path the system refused: the data directory or one of its parents. */
  readonly at: string
  readonly code: string | undefined
}> {
  override get message(): string {
    return `cannot use data directory ${this.dataDir} (system.data_dir): ${explain(this.code, this.at)}`
  }
}

class Refused {
  constructor(
    readonly at: string,
    readonly code: string | undefined,
  ) {}
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException | undefined)?.code

/** The nearest ancestor that exists but is not a directory (what ENOTDIR is about). */
const fileAncestor = async (dir: string): Promise<string> => {
  for (let p = dirname(dir); p !== dirname(p); p = dirname(p)) {
    const s = await stat(p).catch(() => undefined)
    if (s !== undefined) return s.isDirectory() ? dir : p
  }
  return dir
}

const refused = async (dir: string, e: unknown): Promise<Refused> =>
  errno(e) === "ENOTDIR" ? new Refused(await fileAncestor(dir), "ENOTDIR") : new Refused(dir, errno(e))

// `mkdir({ recursive: true })` on Node 20 spins forever under /proc (ENOENT from an existing
// parent): each level is tried once here, parents first only when the level itself is missing.
const mkdirp = async (dir: string, mode: number): Promise<void> => {
  try {
    await mkdir(dir, { mode })
    return
  } catch (e) {
    const code = errno(e)
    if (code === "EEXIST") {
      if ((await stat(dir)).isDirectory()) return
      throw new Refused(dir, "ENOTDIR")
    }
    if (code !== "ENOENT" || dirname(dir) === dir) throw await refused(dir, e)
  }
  await mkdirp(dirname(dir), mode)
  try {
    await mkdir(dir, { mode })
  } catch (e) {
    if (errno(e) === "EEXIST" && (await stat(dir)).isDirectory()) return
    throw await refused(dir, e)
  }
}

/**
 * Creates the data directory (mode 0700, parents as needed) or checks the existing one is a directory.
 *
 * @since 0.1.0
 * @category constructors
 */
export const prepare = (dataDir: string): Effect.Effect<void, DataDirError> => {
  const dir = resolve(dataDir)
  return Effect.tryPromise({
    try: () => mkdirp(dir, 0o700),
    catch: (e) =>
      e instanceof Refused
        ? new DataDirError({ dataDir: dir, at: e.at, code: e.code })
        : new DataDirError({ dataDir: dir, at: dir, code: errno(e) }),
  })
}
