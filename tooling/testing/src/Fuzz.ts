/**
 * Property tests run with a fixed seed, so a run that passes passes again; `FUZZ_SEED=<n>`
 * explores other draws (and reproduces a failure fast-check reports).
 *
 * @since 0.1.0
 */

/**
 * The seed for a property test: `FUZZ_SEED` when set to an integer, else `fallback`.
 *
 * @example
 * ```ts
 * import { fuzzSeed } from "@novacron/testing"
 *
 * const parameters = { numRuns: 200, seed: fuzzSeed(42) }
 * ```
 *
 * @since 0.1.0
 * @category seeds
 */
export const fuzzSeed = (fallback: number, env: Readonly<Record<string, string | undefined>> = process.env): number => {
  const raw = env.FUZZ_SEED?.trim()
  if (raw === undefined || raw === "") return fallback
  const n = Number(raw)
  if (!Number.isSafeInteger(n)) throw new Error(`FUZZ_SEED must be an integer, got ${JSON.stringify(raw)}`)
  return n
}
