/**
 * The agent's version, set at build time (tsup `define`, from package.json and the optional
 * `NOVACRON_BUILD_COMMIT` environment variable), for `version`, `/status`, `/metrics` and the logs.
 *
 * @since 0.1.0
 */
import { type Effect, Metric } from "effect"

declare const __NOVACRON_VERSION__: string | undefined
declare const __NOVACRON_COMMIT__: string | undefined

/**
 * The package version; `0.0.0-dev` when running the sources unbundled.
 *
 * @since 0.1.0
 * @category constants
 */
export const version: string = typeof __NOVACRON_VERSION__ === "string" ? __NOVACRON_VERSION__ : "0.0.0-dev"

/**
 * The commit the bundle was built from, when the build was told (`NOVACRON_BUILD_COMMIT`).
 *
 * @since 0.1.0
 * @category constants
 */
export const commit: string | undefined =
  typeof __NOVACRON_COMMIT__ === "string" && __NOVACRON_COMMIT__ !== "" ? __NOVACRON_COMMIT__ : undefined

/**
 * What `novacron-node version` prints.
 *
 * @since 0.1.0
 * @category constants
 */
export const describe = `novacron-node ${version}${commit === undefined ? "" : ` (${commit})`} on Node.js ${process.version}`

/**
 * `novacron_build_info{version,commit,node_version} 1`, the Prometheus convention for build metadata.
 *
 * @since 0.1.0
 * @category metrics
 */
export const recordBuildInfo: Effect.Effect<void> = Metric.set(
  Metric.gauge("novacron_build_info", { description: "The running agent's build; always 1." }).pipe(
    Metric.tagged("version", version),
    Metric.tagged("node_version", process.version),
    commit === undefined ? (m) => m : Metric.tagged("commit", commit),
  ),
  1,
)

/**
 * The version fields of `/status` and the log lines.
 *
 * @since 0.1.0
 * @category constants
 */
export const fields = { version, ...(commit === undefined ? {} : { commit }), node_version: process.version }
