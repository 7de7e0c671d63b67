/**
 * The `dwcp` keys of network-environment detection (`enable_auto_detection`, `forced_mode`,
 * `detection_interval`): this package owns their schema and defaults; `@novacron/config`
 * composes them into `dwcp` (subpath `@novacron/environment/DetectionSettings`, which loads no probe).
 *
 * @since 0.2.0
 */
import { bool, Duration, oneOf, withDefault } from "@novacron/init/CommonSettings"
import { Duration as D, Schema } from "effect"

/**
 * The three network environments DWCP adapts to; `""` = auto-detect.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Mode = oneOf("", "datacenter", "internet", "hybrid")

/**
 * @since 0.2.0
 * @category models
 */
export type Mode = typeof Mode.Type

/**
 * The detection keys of `dwcp`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DetectionSettings = Schema.Struct({
  enable_auto_detection: withDefault(bool, () => true),
  /** Skips detection: the mode is taken as given. */
  forced_mode: withDefault(Mode, () => "" as const),
  /** How often the environment is measured again. */
  detection_interval: withDefault(Duration, () => D.seconds(30)),
})

/**
 * @since 0.2.0
 * @category models
 */
export type DetectionSettings = typeof DetectionSettings.Type
