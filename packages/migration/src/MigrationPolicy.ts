/**
 * What QEMU is told for one migration, decided from the link: the DWCP mode row (transport and
 * compression cells), PBA's bandwidth prediction, the guest's memory and the `migration` settings.
 * Pure: the same inputs give the same plan, so the host can show it before anything moves.
 *
 * @since 0.1.0
 */
import { Duration } from "effect"
import type { MigrationSettings } from "./MigrationSettings.js"

/**
 * The cells of a DWCP mode-table row the policy reads (structurally `ModeTable.Row` of
 * `@novacron/dwcp`, so this package does not pull DWCP in).
 *
 * @since 0.1.0
 * @category models
 */
export interface LinkRow {
  readonly transport: "rdma-multistream" | "tcp-multistream" | "tcp-single"
  readonly compression: { readonly algorithm: "none" | "lz4" | "zstd" | "adaptive"; readonly level: number }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Input {
  readonly row: LinkRow
  /** PBA's predicted bandwidth to the peer in bytes per second; absent: unlimited. */
  readonly predictedBandwidth?: number | undefined
  /** Guest memory in bytes (sizes the completion timeout). */
  readonly memoryBytes: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Plan {
  readonly capabilities: ReadonlyArray<{ readonly capability: string; readonly state: boolean }>
  readonly parameters: {
    readonly "downtime-limit": number
    readonly "max-bandwidth"?: number
    readonly "multifd-channels"?: number
  }
  /** Multifd channels (1: multifd off, one stream). */
  readonly channels: number
  /** zstd level on the tunnel's data connections (0: none), from the row's compression cell. */
  readonly tunnelZstd: number
  /** Whether a non-converging precopy may switch to postcopy. */
  readonly postcopy: boolean
  readonly postcopyAfterPasses: number
  readonly completionTimeoutMs: number
  readonly progressTimeoutMs: number
}

// QEMU's max-bandwidth default is 128 MiB/s; with no prediction we do not cap (the tunnel is the cap).
const UNLIMITED = 2 ** 53 - 1

// The row's zstd is for files (internet rows ask level 9); a live stream must keep up with the
// link, so the tunnel stays at fast levels: at most 3, adaptive rows 1. lz4 is not offered: none.
const zstdLevel = (c: LinkRow["compression"]): number =>
  c.algorithm === "zstd" ? Math.max(1, Math.min(3, c.level)) : c.algorithm === "adaptive" ? 1 : 0

/**
 * The plan for one migration.
 *
 * @example
 * ```ts
 * import { MigrationPolicy, MigrationSettings } from "@novacron/migration"
 *
 * const plan = MigrationPolicy.plan(MigrationSettings.defaults, {
 *   row: { transport: "tcp-multistream", compression: { algorithm: "zstd", level: 9 } },
 *   predictedBandwidth: 25_000_000,
 *   memoryBytes: 2 * 1024 ** 3,
 * })
 * // plan.channels === 4, plan.parameters["max-bandwidth"] === 25_000_000, plan.completionTimeoutMs === 1_600_000
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const plan = (settings: MigrationSettings, input: Input): Plan => {
  // Postcopy and multifd do not mix before QEMU 10.0 (the destination crashes at the switch).
  const channels = input.row.transport === "tcp-single" || settings.postcopy ? 1 : settings.multifd_channels
  const multifd = channels > 1
  const bandwidth =
    input.predictedBandwidth !== undefined && Number.isFinite(input.predictedBandwidth) && input.predictedBandwidth > 0
      ? Math.floor(input.predictedBandwidth)
      : UNLIMITED
  const gib = Math.max(1, input.memoryBytes) / 1024 ** 3
  return {
    capabilities: [
      { capability: "multifd", state: multifd },
      { capability: "auto-converge", state: settings.auto_converge },
      { capability: "postcopy-ram", state: settings.postcopy },
      // Counters of the downtime and pause-before-switchover are QEMU's; events drive nothing here.
      { capability: "events", state: true },
    ],
    parameters: {
      "downtime-limit": Math.max(1, Math.round(Duration.toMillis(settings.downtime_limit))),
      "max-bandwidth": bandwidth,
      ...(multifd ? { "multifd-channels": channels } : {}),
    },
    channels,
    tunnelZstd: zstdLevel(input.row.compression),
    postcopy: settings.postcopy,
    postcopyAfterPasses: settings.postcopy_after_passes,
    completionTimeoutMs: Math.ceil(Duration.toMillis(settings.completion_timeout_per_gib) * Math.max(gib, 1 / 8)),
    progressTimeoutMs: Duration.toMillis(settings.progress_timeout),
  }
}
