/**
 * Typed configuration errors: one `ConfigError` carrying every problem found, each a
 * {@link ConfigIssue} with its path, origin, (redacted) value and what is allowed.
 *
 * @since 0.1.0
 */
import { Data } from "effect"
import * as Origin from "./Origin.js"

/**
 * What kind of problem an issue is.
 *
 * - `file`: the file cannot be read or parsed.
 * - `unknown-key`: a key the schema does not know (with a suggestion when one is close).
 * - `invalid`: a value of the wrong type or out of range.
 * - `rule`: a cross-field rule is broken (e.g. `min_streams <= max_streams`).
 * - `flag`: a malformed command-line flag.
 *
 * @since 0.1.0
 */
export type IssueKind = "file" | "unknown-key" | "invalid" | "rule" | "flag"

/**
 * One problem.
 *
 * @since 0.1.0
 */
export interface ConfigIssue {
  readonly kind: IssueKind
  /** Dotted path, e.g. `dwcp.compression.level` or `security.tokens[0].sha256`; `""` for the whole file. */
  readonly path: string
  /** Where the offending value came from (file:line, env variable, flag); the default when nothing set it. */
  readonly origin: Origin.Origin
  /** The offending value, secrets redacted; absent when the value is missing. */
  readonly value?: unknown
  /** What is wrong or what is allowed, e.g. `expected an integer 1..22 for algorithm "zstd"`. */
  readonly message: string
}

/**
 * Renders one issue on one line:
 * `dwcp.compression.level = 30 (novacron.yaml:14): expected an integer 1..22 for algorithm "zstd"`.
 *
 * @since 0.1.0
 */
export const renderIssue = (issue: ConfigIssue): string => {
  const where = Origin.render(issue.origin)
  const value = "value" in issue ? ` = ${JSON.stringify(issue.value)}` : ""
  const subject = issue.path === "" ? where : `${issue.path}${value} (${where})`
  return `${subject}: ${issue.message}`
}

/**
 * The configuration could not be loaded; `issues` holds every problem found, in file order.
 *
 * @since 0.1.0
 */
export class ConfigError extends Data.TaggedError("ConfigError")<{ readonly issues: ReadonlyArray<ConfigIssue> }> {
  override get message(): string {
    return format(this)
  }
}

/**
 * Renders the error for humans: a header line then one indented line per issue.
 *
 * @since 0.1.0
 */
export const format = (error: ConfigError): string => {
  const n = error.issues.length
  return [
    `invalid configuration (${n} problem${n === 1 ? "" : "s"}):`,
    ...error.issues.map((i) => `  - ${renderIssue(i)}`),
  ].join("\n")
}
