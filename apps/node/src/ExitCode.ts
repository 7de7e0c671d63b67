/**
 * The agent's exit codes, documented in the README.
 */
export const ExitCode = {
  /** Clean shutdown, or a command that succeeded. */
  ok: 0,
  /** An unexpected internal error. */
  internal: 1,
  /** Bad command line. */
  usage: 2,
  /** The configuration is invalid (every problem is printed). */
  config: 3,
  /** A CRITICAL component failed: boot halted and rolled back. */
  critical: 4,
  /** A phase or the shutdown did not finish in time. */
  timeout: 5,
  /** Forced exit on a second signal. */
  forced: 130,
} as const

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]
