/**
 * Why a placement went where it went.
 *
 * @since 0.1.0
 */

/**
 * What one filter removed.
 *
 * @since 0.1.0
 */
export interface FilterOutcome {
  readonly name: string
  readonly removed: number
  /** Ids of the hosts removed, with `explain: true`. */
  readonly hosts?: ReadonlyArray<string> | undefined
}

/**
 * A ranked host: its weighted total and each plugin's normalised (0..100) score.
 *
 * @since 0.1.0
 */
export interface RankedHost {
  readonly host: string
  readonly total: number
  readonly scores: Readonly<Record<string, number>>
}

/**
 * The explanation of one decision.
 *
 * @since 0.1.0
 */
export interface Explanation {
  readonly workload: string
  readonly policy: string
  /** Live hosts when the decision was made. */
  readonly hosts: number
  /** Filters in the order they ran; a host is counted by the first filter that removed it. */
  readonly filters: ReadonlyArray<FilterOutcome>
  readonly feasible: number
  /** Best hosts first (up to `top`, default 5). */
  readonly ranking: ReadonlyArray<RankedHost>
  readonly chosen: string | undefined
  /** Set when an optimiser hook overrode the ranking. */
  readonly optimizer?: { readonly name: string; readonly chose: string } | undefined
}
