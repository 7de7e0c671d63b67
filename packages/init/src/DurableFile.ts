/**
 * Files that survive a crash whole: a write leaves either the old content or the new, never a
 * torn mix, and is on disk when the Effect succeeds. Boot records, certificates, keys, the
 * secrets store and join tokens are written this way.
 *
 * @since 0.2.0
 */
import { Data, Effect } from "effect"
import * as internal from "./internal/durableFile.js"

/**
 * A durable write or rename failed; `reason` is the system's message (`EACCES: permission
 * denied, open '…'`), `path` the file it was for.
 *
 * @since 0.2.0
 * @category errors
 */
export class DurableFileError extends Data.TaggedError("DurableFileError")<{
  readonly path: string
  readonly operation: "write" | "rename"
  readonly reason: string
  readonly cause: unknown
}> {
  override get message(): string {
    return this.reason
  }
}

/**
 * How {@link write} creates the file.
 *
 * @since 0.2.0
 * @category models
 */
export interface WriteOptions {
  /** Exact mode bits of the file, whatever the umask: `0o600` for secrets. Default `0o644`. */
  readonly mode?: number | undefined
  /** Create missing parent directories with this mode; without it a missing parent is an error. */
  readonly directoryMode?: number | undefined
}

/**
 * Replaces `path` with `data` atomically and durably: a temporary file in the same directory,
 * fsync, rename over the target, fsync of the directory.
 *
 * @example
 * ```ts
 * import { DurableFile } from "@novacron/init"
 *
 * const saveKey = DurableFile.write("/var/lib/novacron/node.key", "-----BEGIN PRIVATE KEY-----\n", {
 *   mode: 0o600,
 *   directoryMode: 0o700,
 * })
 * ```
 *
 * @since 0.2.0
 * @category writing
 */
export const write = (
  path: string,
  data: string | Uint8Array,
  options: WriteOptions = {},
): Effect.Effect<void, DurableFileError> =>
  Effect.tryPromise({
    try: () => internal.writeAtomic(path, data, options),
    catch: (cause) => new DurableFileError({ path, operation: "write", reason: internal.errorText(cause), cause }),
  })

/**
 * Renames `from` to `to` and fsyncs the target's directory, so the rename survives a crash.
 *
 * @since 0.2.0
 * @category writing
 */
export const rename = (from: string, to: string): Effect.Effect<void, DurableFileError> =>
  Effect.tryPromise({
    try: () => internal.renameDurable(from, to),
    catch: (cause) => new DurableFileError({ path: to, operation: "rename", reason: internal.errorText(cause), cause }),
  })

/**
 * The Promise form of {@link write}, for code already inside an async critical section (a file
 * lock held across a read-modify-write). Rejects with the system error.
 *
 * @since 0.2.0
 * @category writing
 */
export const writePromise: (path: string, data: string | Uint8Array, options?: WriteOptions) => Promise<void> =
  internal.writeAtomic
