/**
 * Durable boot checkpoints: the boot record is rewritten atomically (temporary file, fsync,
 * rename, fsync of the directory) at each checkpoint, on failure and on shutdown, so that after
 * a crash the next boot can say what happened.
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { Data, Effect, Either, Option } from "effect"
import type { BootReport, PreviousBoot } from "./BootReport.js"
import * as DurableFile from "./DurableFile.js"
import { decodeRecord } from "./internal/record.js"
import * as Process from "./Process.js"

/**
 * Reading or writing the record failed: the file is there but cannot be read (permissions, a
 * directory in its place), or cannot be written. A missing record is not an error.
 *
 * @since 0.1.0
 * @category errors
 */
export class CheckpointError extends Data.TaggedError("CheckpointError")<{
  readonly path: string
  readonly operation: "read" | "write"
  readonly cause: unknown
}> {
  override get message(): string {
    return `cannot ${this.operation} boot record ${this.path}: ${String((this.cause as Error)?.message ?? this.cause)}`
  }
}

/**
 * The record could be read but is not a boot record (truncated, not JSON, wrong shape). Boot
 * logs it and goes on: the record is only history, and this boot's first checkpoint replaces it.
 *
 * @since 0.2.0
 * @category errors
 */
export class CorruptRecord extends Data.TaggedError("CorruptRecord")<{
  readonly path: string
  /** What is wrong with it, rendered. */
  readonly reason: string
}> {
  override get message(): string {
    return `boot record ${this.path} is corrupt: ${this.reason}`
  }
}

/**
 * Where boot records live.
 *
 * @since 0.1.0
 * @category models
 */
export interface CheckpointStore {
  readonly path: string
  readonly write: (report: BootReport) => Effect.Effect<void, CheckpointError>
  /** The last record, `None` when there is none. */
  readonly read: Effect.Effect<Option.Option<BootReport>, CheckpointError | CorruptRecord>
}

/**
 * File name of the boot record inside the checkpoint directory.
 *
 * @since 0.1.0
 */
export const recordFile = "boot-record.json"

/**
 * A store keeping `boot-record.json` in `dir` (created if missing).
 *
 * @since 0.1.0
 */
export const fileStore = (dir: string): CheckpointStore => {
  const path = join(dir, recordFile)
  return {
    path,
    write: (report) =>
      DurableFile.write(path, `${JSON.stringify(report, null, 2)}\n`, { directoryMode: 0o755 }).pipe(
        Effect.mapError((e) => new CheckpointError({ path, operation: "write", cause: e.cause })),
      ),
    read: Effect.tryPromise({
      try: async () => {
        try {
          return await readFile(path, "utf8")
        } catch (e) {
          // No record: none yet, or the directory is not there (a file in its place fails the write).
          const code = (e as NodeJS.ErrnoException).code
          if (code === "ENOENT" || code === "ENOTDIR") return undefined
          throw e
        }
      },
      catch: (cause) => new CheckpointError({ path, operation: "read", cause }),
    }).pipe(
      Effect.flatMap((text) => {
        if (text === undefined) return Effect.succeed(Option.none<BootReport>())
        return Either.match(decodeRecord(text), {
          onLeft: (e) => Effect.fail(new CorruptRecord({ path, reason: e })),
          onRight: (record) => Effect.succeed(Option.some<BootReport>(record)),
        })
      }),
    ),
  }
}

/**
 * What the previous record says, or nothing when it ended cleanly. A record still `starting` or
 * `running` whose process is gone was left by a crash.
 *
 * @since 0.1.0
 */
export const previousBoot = (
  record: BootReport,
  isAlive: (pid: number) => boolean = Process.alive,
): PreviousBoot | undefined => {
  const last = record.checkpoints.at(-1)?.name
  const base = { bootId: record.bootId, pid: record.pid, startedAt: record.startedAt, lastCheckpoint: last }
  const unfinished = record.components.filter((c) => c.status === "starting").map((c) => c.name)
  if (record.outcome === "stopped") return undefined
  if (record.outcome === "failed")
    return {
      ...base,
      outcome: "failed",
      summary: `previous boot ${record.bootId} failed${record.failure?.component ? ` in component ${record.failure.component}` : ""}: ${record.failure?.message ?? "unknown cause"}; last valid checkpoint ${last ?? "none"}`,
    }
  if (isAlive(record.pid) && record.pid !== process.pid)
    return { ...base, outcome: record.outcome, summary: `boot ${record.bootId} (pid ${record.pid}) is still running` }
  const where =
    record.outcome === "running"
      ? "after reaching READY"
      : `during boot, after checkpoint ${last ?? "none"}${unfinished.length > 0 ? ` while starting ${unfinished.join(", ")}` : ""}`
  return { ...base, outcome: "crashed", summary: `previous boot ${record.bootId} (pid ${record.pid}) crashed ${where}` }
}
