/**
 * The resource keys of the `system` section (`resource_profile`, `min_cpus`, `min_memory`,
 * `min_disk`): this package owns their schema, bounds and defaults; `@novacron/config` composes
 * them into `system` (subpath `@novacron/resources/ResourceSettings`, which loads no probe).
 *
 * @since 0.2.0
 */
import { bytes, int, oneOf, withDefault } from "@novacron/init/CommonSettings"
import { Schema } from "effect"

/**
 * Minimum CPU / memory / disk a node needs. `production` is the design's 4 CPU, 8 GiB, 100 GiB;
 * `minimal` (the default) lets the agent run on a 2-core laptop.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ResourceProfile = oneOf("production", "minimal")

/**
 * The resource keys of `system`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ResourceSettings = Schema.Struct({
  resource_profile: withDefault(ResourceProfile, () => "minimal" as const),
  /** Overrides of the profile's minimums; 0 keeps the profile's value. */
  min_cpus: withDefault(int(0, 4096), () => 0),
  min_memory: withDefault(bytes(0), () => 0),
  min_disk: withDefault(bytes(0), () => 0),
})

/**
 * @since 0.2.0
 * @category models
 */
export type ResourceSettings = typeof ResourceSettings.Type

/**
 * Decodes the resource keys of a raw `system` section, filling the defaults; other keys are ignored.
 *
 * @since 0.2.0
 * @category decoding
 */
export const decode = (raw: unknown): ResourceSettings => Schema.decodeUnknownSync(ResourceSettings)(raw)
