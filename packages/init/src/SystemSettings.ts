/**
 * The boot kernel's keys of the `system` section: who the node is, where its state lives, and
 * the bounds of a boot (concurrency, phase and shutdown deadlines). `log_level` is owned by
 * `@novacron/logging/LoggingSettings` and the resource minimums by
 * `@novacron/resources/ResourceSettings`; `@novacron/config` composes the three into `system`.
 * Its own subpath (`@novacron/init/SystemSettings`) loads no runtime.
 *
 * @since 0.2.0
 */
import { hostname } from "node:os"
import { Duration as D, Schema } from "effect"
import { Duration, int, nonEmpty, Port, section, withDefault } from "./CommonSettings.js"

/**
 * The deadline of each boot phase.
 *
 * @since 0.2.0
 * @category schemas
 */
export const PhaseTimeouts = Schema.Struct({
  pre_init: withDefault(Duration, () => D.seconds(10)),
  core: withDefault(Duration, () => D.seconds(20)),
  services: withDefault(Duration, () => D.seconds(20)),
  post_init: withDefault(Duration, () => D.seconds(10)),
})

/**
 * The kernel's keys of `system`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const SystemSettings = Schema.Struct({
  /** Default: the host name. */
  node_id: withDefault(nonEmpty(), () => hostname()),
  data_dir: withDefault(nonEmpty("path"), () => "./.novacron"),
  /** Components started at once within a level. */
  max_concurrency: withDefault(int(1, 1024), () => 8),
  health_check_port: withDefault(Port, () => 7780),
  shutdown_timeout: withDefault(Duration, () => D.seconds(30)),
  phase_timeouts: section(PhaseTimeouts),
})

/**
 * @since 0.2.0
 * @category models
 */
export type SystemSettings = typeof SystemSettings.Type

/**
 * Decodes the kernel's keys of a raw `system` section, filling the defaults; other keys are ignored.
 *
 * @since 0.2.0
 * @category decoding
 */
export const decode = (raw: unknown): SystemSettings => Schema.decodeUnknownSync(SystemSettings)(raw)
