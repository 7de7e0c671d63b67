/**
 * The `logging` section of `novacron.yaml`, and `system.log_level`: this package owns their
 * schema, bounds and defaults; `@novacron/config` composes them (subpath
 * `@novacron/logging/LoggingSettings`, which loads no logger).
 *
 * @since 0.2.0
 */
import { bytes, int, oneOf, str, withDefault } from "@novacron/init/CommonSettings"
import { Schema } from "effect"

/**
 * `system.log_level`: the least severe level written.
 *
 * @since 0.2.0
 * @category schemas
 */
export const LogLevel = oneOf("debug", "info", "warn", "error")

/**
 * @since 0.2.0
 * @category models
 */
export type LogLevel = typeof LogLevel.Type

/**
 * The `system.log_level` key, for the `system` section.
 *
 * @since 0.2.0
 * @category schemas
 */
export const SystemLogLevel = Schema.Struct({
  log_level: withDefault(LogLevel, () => "info" as const),
})

/**
 * The `logging` section: where logs go besides stdout.
 *
 * @since 0.2.0
 * @category schemas
 */
export const LoggingSettings = Schema.Struct({
  /** `auto`: readable on a terminal, JSON otherwise. The file is always JSON. */
  format: withDefault(oneOf("auto", "json", "pretty"), () => "auto" as const),
  /** Log file, relative to `system.data_dir`; empty: stdout only. */
  file: withDefault(str, () => ""),
  /** Rotate when the file reaches this many bytes. */
  max_size: withDefault(bytes(4096), () => 10 * 1024 * 1024),
  /** Rotated files kept (`file.1` newest ... `file.N`). */
  max_files: withDefault(int(1, 100), () => 5),
})

/**
 * @since 0.2.0
 * @category models
 */
export type LoggingSettings = typeof LoggingSettings.Type

/**
 * Decodes a raw `logging` section, filling the defaults.
 *
 * @since 0.2.0
 * @category decoding
 */
export const decode = (raw: unknown): LoggingSettings => Schema.decodeUnknownSync(LoggingSettings)(raw)
