/**
 * `dwcp.placement` and `dwcp.enable_v3_placement`: this package owns their schema, bounds and
 * defaults; `@novacron/config` composes them into `dwcp` (subpath
 * `@novacron/dwcp-itp/PlacementSettings`, which loads no scheduler).
 *
 * @since 0.2.0
 */
import { bool, int, oneOf, section, withDefault } from "@novacron/init/CommonSettings"
import { Schema } from "effect"

/**
 * The placement policy; `auto` means `fragmentation` when `enable_v3_placement` is on, else
 * `binpack` (the v1 behaviour).
 *
 * @since 0.2.0
 * @category schemas
 */
export const PolicySetting = oneOf("auto", "binpack", "spread", "balanced", "fragmentation")

/**
 * The `dwcp.placement` section.
 *
 * @since 0.2.0
 * @category schemas
 */
export const PlacementSection = Schema.Struct({
  policy: withDefault(PolicySetting, () => "auto" as const),
  /** Seeds tie-breaking, so two runs over the same events place alike. */
  seed: withDefault(int(0, 2 ** 32 - 1), () => 0),
  fragmentation_classes: withDefault(int(1, 1024), () => 64),
  /** Placements after which a workload class's weight in the fragmentation score halves. */
  fragmentation_half_life: withDefault(int(1, 1_000_000_000), () => 10_000),
  /** How many of the best-ranked hosts an optimiser hook may choose among. */
  optimizer_top_k: withDefault(int(1, 100), () => 5),
})

/**
 * @since 0.2.0
 * @category models
 */
export type PlacementSection = typeof PlacementSection.Type

/**
 * The `dwcp` keys this package reads: the v3 switch and its section.
 *
 * @since 0.2.0
 * @category schemas
 */
export const PlacementSettings = Schema.Struct({
  enable_v3_placement: withDefault(bool, () => false),
  placement: section(PlacementSection),
})

/**
 * @since 0.2.0
 * @category models
 */
export type PlacementSettings = typeof PlacementSettings.Type
