/**
 * Command-line flags: `--config <file>` (`-c`), `--set key.path=value` (repeatable, reaches any
 * key) and named shortcuts for the keys most often changed on one run:
 *
 * | flag                     | key                         |
 * |--------------------------|-----------------------------|
 * | `--node-id`              | `system.node_id`            |
 * | `--data-dir`             | `system.data_dir`           |
 * | `--log-level`            | `system.log_level`          |
 * | `--dwcp-mode`            | `dwcp.forced_mode`          |
 * | `--listen-address`       | `network.listen_address`    |
 * | `--bind-port`            | `network.bind_port`         |
 * | `--health-check-port`    | `system.health_check_port`  |
 * | `--metrics-port`         | `monitoring.metrics_port`   |
 * | `--resource-profile`     | `system.resource_profile`   |
 *
 * Other arguments are left for the caller. Flags apply in the order given, after the named ones.
 *
 * @since 0.1.0
 */
import { parseArgs } from "node:util"
import type { ConfigIssue } from "./ConfigError.js"
import type { Override } from "./Env.js"
import * as Origin from "./Origin.js"

/**
 * Named flags and the keys they set.
 *
 * @since 0.1.0
 */
export const named: Readonly<Record<string, string>> = {
  "node-id": "system.node_id",
  "data-dir": "system.data_dir",
  "log-level": "system.log_level",
  "dwcp-mode": "dwcp.forced_mode",
  "listen-address": "network.listen_address",
  "bind-port": "network.bind_port",
  "health-check-port": "system.health_check_port",
  "metrics-port": "monitoring.metrics_port",
  "resource-profile": "system.resource_profile",
}

/**
 * The configuration part of a command line.
 *
 * @since 0.1.0
 */
export interface Parsed {
  /** `--config` / `-c`, when given. */
  readonly file?: string | undefined
  readonly overrides: ReadonlyArray<Override>
  /** Malformed flags (e.g. `--set` without `=`). */
  readonly issues: ReadonlyArray<ConfigIssue>
}

/**
 * Parses the configuration flags out of `argv` (without the node and script paths).
 *
 * @example
 * ```ts
 * import { Flags } from "@novacron/config"
 *
 * Flags.parse(["--log-level", "debug", "--set", "dwcp.compression.level=5"]).overrides
 * // [{ path: "system.log_level", value: "debug", ... }, { path: "dwcp.compression.level", value: "5", ... }]
 * ```
 *
 * @since 0.1.0
 */
export const parse = (argv: ReadonlyArray<string>): Parsed => {
  const { values } = parseArgs({
    args: [...argv],
    strict: false,
    allowPositionals: true,
    options: {
      config: { type: "string", short: "c" },
      set: { type: "string", multiple: true },
      ...Object.fromEntries(Object.keys(named).map((k) => [k, { type: "string" as const }])),
    },
  })
  const overrides: Array<Override> = []
  const issues: Array<ConfigIssue> = []
  for (const [flag, path] of Object.entries(named)) {
    const value = values[flag]
    if (value === undefined) continue
    if (typeof value !== "string") {
      issues.push({
        kind: "flag",
        path,
        origin: Origin.Origin.Flag({ flag: `--${flag}` }),
        message: "expected a value",
      })
    } else overrides.push({ path, value, origin: Origin.Origin.Flag({ flag: `--${flag}` }) })
  }
  const sets = values.set
  for (const item of Array.isArray(sets) ? sets : []) {
    const eq = typeof item === "string" ? item.indexOf("=") : -1
    if (typeof item !== "string" || eq <= 0) {
      issues.push({
        kind: "flag",
        path: "",
        origin: Origin.Origin.Flag({ flag: `--set ${String(item)}` }),
        message: "expected --set key.path=value",
      })
      continue
    }
    const path = item.slice(0, eq).trim()
    overrides.push({ path, value: item.slice(eq + 1), origin: Origin.Origin.Flag({ flag: `--set ${path}` }) })
  }
  const file = values.config
  return { file: typeof file === "string" ? file : undefined, overrides, issues }
}
