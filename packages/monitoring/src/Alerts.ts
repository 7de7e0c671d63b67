/**
 * The Prometheus alerting rules shipped with the package (`alerts/novacron.yml`, unit-tested by
 * `alerts/novacron.test.yml` with `promtool test rules`): agent down or crash-looping, not READY,
 * boot degraded, a component unhealthy (CRITICAL pages sooner), data directory disk low, no or
 * split leadership of a cluster-state election, state operations failing, a DWCP part on its v1
 * fallback, peer connections refused, migrations failing. The agent exports the metrics; it
 * never pages itself.
 *
 * @since 0.2.0
 */
import { fileURLToPath } from "node:url"

/**
 * The directory holding the rule files (in the published package too).
 *
 * @example
 * ```ts
 * import { Alerts } from "@novacron/monitoring"
 *
 * // prometheus.yml: rule_files: [<Alerts.rulesFile()>]
 * console.log(Alerts.rulesFile())
 * ```
 *
 * @since 0.2.0
 * @category paths
 */
// A function, so bundling the package into a CommonJS agent (no import.meta) costs nothing until called.
export const directory = (): string => fileURLToPath(new URL("../alerts/", import.meta.url))

/**
 * The rules, for Prometheus' `rule_files`.
 *
 * @since 0.2.0
 * @category paths
 */
export const rulesFile = (): string => `${directory()}novacron.yml`

/**
 * Their unit tests, for `promtool test rules`.
 *
 * @since 0.2.0
 * @category paths
 */
export const testFile = (): string => `${directory()}novacron.test.yml`
