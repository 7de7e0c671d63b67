/**
 * Where an effective configuration value came from.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * @since 0.1.0
 */
export type Origin = Data.TaggedEnum<{
  /** The embedded default. */
  Default: {}
  /** A configuration file; `line` and `column` are 1-based. */
  File: { readonly file: string; readonly line: number; readonly column: number }
  /** An environment variable. */
  Env: { readonly variable: string }
  /** A command-line flag, e.g. `--set dwcp.compression.level` or `--log-level`. */
  Flag: { readonly flag: string }
}>

/**
 * Constructors and matchers for {@link Origin}.
 *
 * @since 0.1.0
 */
export const Origin = Data.taggedEnum<Origin>()

/**
 * Renders an origin for humans: `default`, `novacron.yaml:12`, `env NOVACRON_LOG_LEVEL`,
 * `flag --log-level`.
 *
 * @since 0.1.0
 */
export const render = (origin: Origin): string =>
  Origin.$match(origin, {
    Default: () => "default",
    File: ({ file, line }) => `${file}:${line}`,
    Env: ({ variable }) => `env ${variable}`,
    Flag: ({ flag }) => `flag ${flag}`,
  })
