/**
 * Environment overrides.
 *
 * Five named variables:
 *
 * | variable                  | key                      |
 * |---------------------------|--------------------------|
 * | `NOVACRON_NODE_ID`        | `system.node_id`         |
 * | `NOVACRON_DATA_DIR`       | `system.data_dir`        |
 * | `NOVACRON_LOG_LEVEL`      | `system.log_level`       |
 * | `NOVACRON_DWCP_MODE`      | `dwcp.forced_mode`       |
 * | `NOVACRON_LISTEN_ADDRESS` | `network.listen_address` |
 *
 * and one scheme that reaches any key: `NOVACRON__` followed by the path with `__` between
 * segments, in any case: `NOVACRON__DWCP__COMPRESSION__LEVEL=5` sets `dwcp.compression.level`.
 * Values of string keys are taken verbatim; others are read as YAML (`5`, `true`,
 * `[a:1, b:2]`). When a named variable and the scheme name the same key, the scheme wins.
 *
 * @since 0.1.0
 */
import * as Origin from "./Origin.js"

/**
 * A value set from outside the file.
 *
 * @since 0.1.0
 */
export interface Override {
  readonly path: string
  readonly value: string
  readonly origin: Origin.Origin
}

/**
 * The named variables and the keys they set.
 *
 * @since 0.1.0
 */
export const aliases: Readonly<Record<string, string>> = {
  NOVACRON_NODE_ID: "system.node_id",
  NOVACRON_DATA_DIR: "system.data_dir",
  NOVACRON_LOG_LEVEL: "system.log_level",
  NOVACRON_DWCP_MODE: "dwcp.forced_mode",
  NOVACRON_LISTEN_ADDRESS: "network.listen_address",
}

/**
 * The prefix of the general scheme.
 *
 * @since 0.1.0
 */
export const prefix = "NOVACRON__"

/**
 * Reads the overrides out of an environment, named variables first so the scheme wins.
 *
 * @since 0.1.0
 */
export const overrides = (env: Readonly<Record<string, string | undefined>>): ReadonlyArray<Override> => {
  const named: Array<Override> = []
  const scheme: Array<Override> = []
  // Code-unit order: the same in every locale, and no ICU collator to load at start-up.
  for (const [variable, value] of Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (value === undefined) continue
    const alias = aliases[variable]
    if (alias !== undefined) named.push({ path: alias, value, origin: Origin.Origin.Env({ variable }) })
    else if (variable.startsWith(prefix) && variable.length > prefix.length) {
      const path = variable.slice(prefix.length).toLowerCase().split("__").join(".")
      scheme.push({ path, value, origin: Origin.Origin.Env({ variable }) })
    }
  }
  return [...named, ...scheme]
}
