/**
 * Chooses how many parallel streams a transfer uses, from the goodput measured at each control
 * epoch: a hill climb on the stream count (see the README for the reasoning).
 *
 * - **up**: after adding streams, keep adding while goodput rises by more than `gain` (10 %); when it
 *   stops rising the extra streams bought nothing, so go back to the previous count and hold.
 * - **down**: after removing streams, keep removing while goodput does not fall by more than
 *   `gain` (fewer streams, same goodput, less overhead); when it falls, go back and hold.
 * - **hold**: watch goodput at a steady count. A drop of more than `change` means the path got
 *   worse: probe down. A rise of more than `change` means it got better: probe up. Otherwise probe
 *   every `probeEvery` epochs, alternately up and down, so a hidden improvement is found.
 * - **prediction** (optional, e.g. from the PBA package): when goodput already reaches the predicted
 *   bandwidth there is nothing to gain by probing up; when it is far below, jump up in proportion.
 *
 * After every change of count the next `settleEpochs` epochs are not judged (new streams are in
 * slow start, removed ones still draining).
 *
 * Pure: the caller measures, calls {@link step}, and applies `state.n`.
 *
 * @since 0.1.0
 */

/**
 * Controller tuning. Counts are clamped to `[min, max]`.
 *
 * @since 0.1.0
 */
export interface Config {
  readonly min: number
  readonly max: number
  /** Relative goodput change that counts as a gain or a loss after a move (default 0.10). */
  readonly gain?: number
  /** Relative change at a steady count that counts as the path changing (default 0.25). */
  readonly change?: number
  /** Epochs at a steady count between probes (default 4). */
  readonly probeEvery?: number
  /**
   * Epochs ignored after a change of count (default 1): new streams are still in slow start and
   * removed ones still draining, so the epoch right after a move says little about the new count.
   */
  readonly settleEpochs?: number
}

/**
 * Controller state; `n` is the stream count to use for the next epoch.
 *
 * @since 0.1.0
 */
export interface State {
  readonly n: number
  readonly phase: "start" | "up" | "down" | "hold"
  /** Count and goodput before the last move. */
  readonly prevN: number
  readonly prevGoodput: number
  /** Goodput observed when the hold began. */
  readonly reference: number | undefined
  readonly heldEpochs: number
  readonly nextProbe: "up" | "down"
  /** Epochs still to ignore after the last move. */
  readonly settling: number
  /** Why the last step did what it did (for logs and tests). */
  readonly reason: string
}

/**
 * The initial state at `n` streams (clamped). The first `settleEpochs` epochs are not judged, as
 * after any change of count: they include connection set-up and every stream's slow start, and a
 * later epoch compared with them would credit the first probe with the ramp-up.
 *
 * @since 0.1.0
 */
export const initial = (config: Config, n: number): State => ({
  n: clamp(config, n),
  phase: "start",
  prevN: clamp(config, n),
  prevGoodput: 0,
  reference: undefined,
  heldEpochs: 0,
  nextProbe: "up",
  settling: config.settleEpochs ?? 1,
  reason: "initial",
})

const clamp = (c: Config, n: number) => Math.max(c.min, Math.min(c.max, Math.round(n)))
const upFrom = (c: Config, n: number) => clamp(c, Math.max(n + 1, Math.ceil(n * 1.5)))
const downFrom = (c: Config, n: number) => clamp(c, Math.min(n - 1, Math.floor((n * 2) / 3)))

const hold = (s: State, n: number, reason: string): State => ({
  ...s,
  n,
  phase: "hold",
  reference: undefined,
  heldEpochs: 0,
  settling: n === s.n ? 0 : 1,
  reason,
})

const move = (c: Config, s: State, goodput: number, dir: "up" | "down", reason: string): State => {
  const n = dir === "up" ? upFrom(c, s.n) : downFrom(c, s.n)
  if (n === s.n)
    return { ...hold(s, s.n, `${reason}; at the ${dir === "up" ? "max" : "min"} bound`), reference: goodput }
  return {
    ...s,
    n,
    phase: dir,
    prevN: s.n,
    prevGoodput: goodput,
    reference: undefined,
    heldEpochs: 0,
    settling: c.settleEpochs ?? 1,
    reason,
  }
}

/**
 * One control epoch: `goodput` is what was measured (bytes/s) at `state.n` streams during the
 * epoch; `predicted` an optional bandwidth prediction in the same unit.
 *
 * @since 0.1.0
 */
export const step = (config: Config, state: State, goodput: number, predicted?: number): State => {
  const gain = config.gain ?? 0.1
  const change = config.change ?? 0.25
  const probeEvery = config.probeEvery ?? 4
  if (state.settling > 0) return { ...state, settling: state.settling - 1, reason: "settling after a move" }
  const saturated = predicted !== undefined && predicted > 0 && goodput >= predicted * (1 - gain)
  switch (state.phase) {
    case "start":
      if (saturated) return { ...hold(state, state.n, "prediction reached at start"), reference: goodput }
      return move(config, state, goodput, "up", "start: probe up")
    case "up":
      if (goodput > state.prevGoodput * (1 + gain) && !saturated) {
        return move(config, state, goodput, "up", "more streams raised goodput")
      }
      if (goodput > state.prevGoodput * (1 + gain))
        return { ...hold(state, state.n, "prediction reached"), reference: goodput }
      return hold(state, state.prevN, "more streams did not raise goodput: back")
    case "down":
      if (goodput >= state.prevGoodput * (1 - gain)) {
        return move(config, state, goodput, "down", "fewer streams kept goodput")
      }
      return hold(state, state.prevN, "fewer streams lost goodput: back")
    case "hold": {
      if (state.reference === undefined)
        return { ...state, reference: goodput, heldEpochs: 0, reason: "hold: measured" }
      if (goodput < state.reference * (1 - change)) return move(config, state, goodput, "down", "path got worse")
      if (goodput > state.reference * (1 + change) && !saturated) {
        return move(config, state, goodput, "up", "path got better")
      }
      if (predicted !== undefined && predicted > 0 && goodput < predicted * 0.8) {
        // Far below the prediction: jump toward the count the per-stream goodput says is needed.
        const perStream = goodput / state.n
        const want = perStream > 0 ? Math.ceil(predicted / perStream) : state.n * 2
        const n = clamp(config, Math.min(want, state.n * 2))
        if (n > state.n) {
          return {
            ...state,
            n,
            phase: "up",
            prevN: state.n,
            prevGoodput: goodput,
            settling: config.settleEpochs ?? 1,
            reason: "below prediction: jump",
          }
        }
      }
      const heldEpochs = state.heldEpochs + 1
      if (heldEpochs < probeEvery) return { ...state, heldEpochs, reason: "hold" }
      const dir = saturated ? "down" : state.nextProbe
      const next = move(config, state, goodput, dir, `periodic probe ${dir}`)
      return { ...next, nextProbe: dir === "up" ? "down" : "up" }
    }
  }
}
