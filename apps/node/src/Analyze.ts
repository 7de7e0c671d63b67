import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { BootChart, BootReport, Checkpoint } from "@novacron/init"

/** Where the agent keeps its boot record inside the data directory. */
export const bootDir = (dataDir: string) => join(dataDir, "boot")

export const readRecord = async (dataDir: string): Promise<BootReport.BootReport> => {
  const path = join(bootDir(dataDir), Checkpoint.recordFile)
  try {
    return JSON.parse(await readFile(path, "utf8")) as BootReport.BootReport
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT")
      throw new Error(`no boot record at ${path}: start the agent once with this data directory`)
    throw new Error(`cannot read boot record ${path}: ${(e as Error).message}`)
  }
}

const ms = (n: number) => `${n.toFixed(1)} ms`

/** `analyze blame|critical-chain|plot`, rendered for people or as JSON. */
export const analyze = async (
  dataDir: string,
  view: string,
  options: { readonly json: boolean; readonly output?: string | undefined },
): Promise<string> => {
  const record = await readRecord(dataDir)
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
    case "plot": {
      const svg = BootChart.svg(record)
      if (options.output === undefined) return svg
      await writeFile(options.output, svg)
      return options.json ? JSON.stringify({ written: options.output }) : `wrote ${options.output}`
    }
    default:
      throw new UsageError(`unknown analyze view "${view}" (expected blame, critical-chain or plot)`)
  }
}

export class UsageError extends Error {}
