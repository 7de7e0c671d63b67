/**
 * `analyze blame|critical-chain|plot` (like systemd-analyze): the boot record a host keeps in its
 * data directory, read back and rendered for people or as JSON.
 *
 * @since 0.2.0
 */
import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Data, Effect, Either } from "effect"
import * as BootChart from "./BootChart.js"
import * as BootReport from "./BootReport.js"
import { CorruptRecord, recordFile } from "./Checkpoint.js"
import { decodeRecord } from "./internal/record.js"

/**
 * Where a host keeps its boot record inside its data directory.
 *
 * @since 0.2.0
 * @category constants
 */
export const bootDir = (dataDir: string): string => join(dataDir, "boot")

/**
 * The views, in the order they are offered.
 *
 * @since 0.2.0
 * @category constants
 */
export const views = ["blame", "critical-chain", "plot"] as const

/**
 * No boot record, or one that cannot be read (a record that reads but does not decode is a
 * `Checkpoint.CorruptRecord`).
 *
 * @since 0.2.0
 * @category errors
 */
export class BootRecordError extends Data.TaggedError("BootRecordError")<{
  readonly path: string
  readonly reason: "missing" | "unreadable"
  readonly cause?: unknown
}> {
  override get message(): string {
    return this.reason === "missing"
      ? `no boot record at ${this.path}: start the agent once with this data directory`
      : `cannot read boot record ${this.path}: ${String((this.cause as Error)?.message ?? this.cause)}`
  }
}

/**
 * A view that does not exist.
 *
 * @since 0.2.0
 * @category errors
 */
export class UnknownView extends Data.TaggedError("UnknownView")<{ readonly view: string }> {
  override get message(): string {
    return `unknown analyze view "${this.view}" (expected ${views.join(", ")})`
  }
}

/**
 * The plot could not be written.
 *
 * @since 0.2.0
 * @category errors
 */
export class OutputError extends Data.TaggedError("OutputError")<{ readonly path: string; readonly cause: unknown }> {
  override get message(): string {
    return `cannot write ${this.path}: ${String((this.cause as Error)?.message ?? this.cause)}`
  }
}

/**
 * The boot record of `dataDir`, decoded with the same Schema the boot kernel reads it with: a file
 * that is not JSON or not a boot record (truncated, hand-edited, from another program) is a
 * `CorruptRecord` naming the file and what is wrong, never a cast that fails later in a view.
 *
 * @since 0.2.0
 * @category reading
 */
export const readRecord = (dataDir: string): Effect.Effect<BootReport.BootReport, BootRecordError | CorruptRecord> => {
  const path = join(bootDir(dataDir), recordFile)
  return Effect.tryPromise({
    try: () => readFile(path, "utf8"),
    catch: (cause) =>
      new BootRecordError({
        path,
        reason: (cause as NodeJS.ErrnoException)?.code === "ENOENT" ? "missing" : "unreadable",
        cause,
      }),
  }).pipe(
    Effect.flatMap((text) =>
      Either.match(decodeRecord(text), {
        onLeft: (e) => Effect.fail(new CorruptRecord({ path, reason: e })),
        onRight: (record) => Effect.succeed(record),
      }),
    ),
  )
}

const ms = (n: number) => `${n.toFixed(1)} ms`

/**
 * One view of the record of `dataDir`, as text (`json`: as JSON). `plot` is an SVG boot chart,
 * written to `output` when given.
 *
 * @since 0.2.0
 * @category rendering
 */
export const analyze = (
  dataDir: string,
  view: string,
  options: { readonly json: boolean; readonly output?: string | undefined },
): Effect.Effect<string, BootRecordError | CorruptRecord | UnknownView | OutputError> =>
  Effect.gen(function* () {
    if (!(views as ReadonlyArray<string>).includes(view)) return yield* new UnknownView({ view })
    const record = yield* readRecord(dataDir)
    switch (view) {
      case "blame": {
        const rows = BootReport.blame(record)
        if (options.json) return JSON.stringify(rows, null, 2)
        return rows.map((r) => `${ms(r.millis).padStart(12)} ${r.name}`).join("\n")
      }
      case "critical-chain": {
        const chain = BootReport.criticalChain(record)
        if (options.json) return JSON.stringify(chain, null, 2)
        return [
          `boot ${record.bootId}: ${record.outcome}, ${ms(record.totalMillis ?? 0)}`,
          ...chain.map((l, i) => `${"  ".repeat(i)}└─ ${l.name} @${ms(l.at)} +${ms(l.millis)}`),
        ].join("\n")
      }
      default: {
        const svg = BootChart.svg(record)
        const output = options.output
        if (output === undefined) return svg
        yield* Effect.tryPromise({
          try: () => writeFile(output, svg),
          catch: (cause) => new OutputError({ path: output, cause }),
        })
        return options.json ? JSON.stringify({ written: output }) : `wrote ${output}`
      }
    }
  })
