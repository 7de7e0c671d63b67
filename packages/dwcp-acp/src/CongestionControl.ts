/**
 * Per-connection congestion control: choose an algorithm from the mode and measured conditions, set it
 * with `TCP_CONGESTION`, read it back, and report what was asked for and what was obtained.
 *
 * @since 0.1.0
 */

import { readFile } from "node:fs/promises"
import { Effect, Schema } from "effect"
import { type AddonUnavailable, type NoSocketFd, ProcReadError, type SocketOptionError } from "./AcpError.js"
import { call, type SocketLike } from "./internal/socket.js"
import * as TcpInfo from "./TcpInfo.js"

/**
 * A kernel congestion-control module name (`bbr`, `cubic`, `dctcp`, `reno`, ...).
 *
 * @since 0.1.0
 */
export type Algorithm = string

/**
 * The network a connection crosses, as configured.
 *
 * @since 0.1.0
 */
export const Mode = Schema.Literal("datacenter", "internet", "hybrid")

/**
 * @since 0.1.0
 */
export type Mode = typeof Mode.Type

/**
 * Measured path conditions (all optional: use what was measured). `lossRate` is a fraction (0.005 = 0.5 %).
 *
 * @since 0.1.0
 */
export interface Conditions {
  readonly rttMs?: number | undefined
  readonly lossRate?: number | undefined
  readonly deliveryRateBps?: number | undefined
}

/**
 * Where measured conditions stop looking like a datacenter: above `datacenterMaxRttMs` RTT or
 * `datacenterMaxLoss` loss, DCTCP's assumptions (ECN-marking switches, sub-ms RTT, no random loss) fail and
 * a loss-based algorithm collapses, so BBR is preferred. `hybridLanRttMs`/`hybridLanLoss` is the stricter
 * bar a hybrid connection must clear to be treated as datacenter traffic.
 *
 * @since 0.1.0
 */
export const thresholds = {
  datacenterMaxRttMs: 10,
  datacenterMaxLoss: 0.001,
  hybridLanRttMs: 2,
  hybridLanLoss: 0.0001,
} as const

/**
 * An ordered list of algorithms to try, and why.
 *
 * @since 0.1.0
 */
export interface Preference {
  readonly order: ReadonlyArray<Algorithm>
  readonly reason: string
}

const fmt = (c: Conditions): string =>
  [
    c.rttMs !== undefined ? `rtt ${c.rttMs.toFixed(2)} ms` : undefined,
    c.lossRate !== undefined ? `loss ${(c.lossRate * 100).toFixed(3)} %` : undefined,
  ]
    .filter((x) => x !== undefined)
    .join(", ")

/**
 * The algorithms to try, best first, for a mode and (optionally) measured conditions:
 * - `datacenter`: `dctcp`, `cubic`; `bbr`, `cubic` when the measurements contradict a datacenter;
 * - `internet`: `bbr`, `cubic`;
 * - `hybrid`: datacenter order on a measured LAN-like path, otherwise `bbr`, `cubic` (also when nothing was
 *   measured: BBR copes with both kinds of path, loss-based algorithms do not cope with WAN loss).
 *
 * @since 0.1.0
 */
export const preference = (mode: Mode, conditions: Conditions = {}): Preference => {
  const { rttMs, lossRate } = conditions
  const measured = fmt(conditions)
  switch (mode) {
    case "datacenter": {
      const wan =
        (rttMs !== undefined && rttMs >= thresholds.datacenterMaxRttMs) ||
        (lossRate !== undefined && lossRate >= thresholds.datacenterMaxLoss)
      return wan
        ? { order: ["bbr", "cubic"], reason: `datacenter mode, but measured ${measured} looks like a WAN path` }
        : { order: ["dctcp", "cubic"], reason: "datacenter mode" }
    }
    case "internet":
      return { order: ["bbr", "cubic"], reason: "internet mode" }
    case "hybrid": {
      if (rttMs === undefined) return { order: ["bbr", "cubic"], reason: "hybrid mode, nothing measured yet" }
      const lan = rttMs < thresholds.hybridLanRttMs && (lossRate ?? 0) < thresholds.hybridLanLoss
      return lan
        ? { order: ["dctcp", "cubic"], reason: `hybrid mode, measured ${measured}: datacenter-like` }
        : { order: ["bbr", "cubic"], reason: `hybrid mode, measured ${measured}: WAN-like` }
    }
  }
}

/**
 * What happened to one algorithm tried on the socket. `listed`: whether
 * `tcp_available_congestion_control` listed it (undefined when unreadable); `error`: the errno name when
 * `setsockopt` refused it (`ENOENT`: no such module, `EPERM`: not in `tcp_allowed_congestion_control`).
 *
 * @since 0.1.0
 */
export interface Attempt {
  readonly algorithm: Algorithm
  readonly listed: boolean | undefined
  readonly error?: string | undefined
  readonly readBack?: Algorithm | undefined
}

/**
 * Outcome of setting the congestion control: `requested` is the first choice, `obtained` what the kernel
 * reads back afterwards (the system default when every attempt failed); `fallback` when they differ.
 *
 * @since 0.1.0
 */
export interface Selection {
  readonly requested: Algorithm
  readonly obtained: Algorithm
  readonly fallback: boolean
  readonly reason: string
  readonly attempts: ReadonlyArray<Attempt>
}

/**
 * Where the kernel lists its loaded congestion-control modules.
 *
 * @since 0.1.0
 */
export const availablePath = "/proc/sys/net/ipv4/tcp_available_congestion_control"

/**
 * Congestion-control modules the kernel has loaded. A module that exists on disk but is not loaded is not
 * listed (a privileged `setsockopt` loads it), so `apply` asks the kernel as well.
 *
 * @since 0.1.0
 */
export const available: Effect.Effect<ReadonlyArray<Algorithm>, ProcReadError> = Effect.tryPromise({
  try: () => readFile(availablePath, "utf8"),
  catch: (e) => new ProcReadError({ path: availablePath, message: String(e) }),
}).pipe(Effect.map((text) => text.split(/\s+/).filter((s) => s.length > 0)))

/**
 * The algorithm the socket uses now (`getsockopt(TCP_CONGESTION)`).
 *
 * @since 0.1.0
 */
export const current = (
  socket: SocketLike,
): Effect.Effect<Algorithm, AddonUnavailable | NoSocketFd | SocketOptionError> =>
  Effect.map(
    call(socket, "getsockopt(TCP_CONGESTION)", (a, fd) => a.getCongestion(fd)),
    (r) => r.value,
  )

/**
 * Sets one algorithm and returns what the kernel reads back; fails with the errno when refused.
 *
 * @since 0.1.0
 */
export const set = (
  socket: SocketLike,
  algorithm: Algorithm,
): Effect.Effect<Algorithm, AddonUnavailable | NoSocketFd | SocketOptionError> =>
  Effect.map(
    call(socket, `setsockopt(TCP_CONGESTION, ${algorithm})`, (a, fd) => a.setCongestion(fd, algorithm)),
    (r) => r.value,
  )

/**
 * Tries each algorithm of `order` until the kernel accepts one and reads it back, and reports every attempt.
 * Refusals are outcomes, not failures: the effect fails only when the socket or the addon is unusable.
 *
 * @since 0.1.0
 */
export const apply = (
  socket: SocketLike,
  order: ReadonlyArray<Algorithm>,
  reason = "explicit",
): Effect.Effect<Selection, AddonUnavailable | NoSocketFd | SocketOptionError> =>
  Effect.gen(function* () {
    const listedSet = yield* available.pipe(
      Effect.map((l) => new Set(l)),
      Effect.orElseSucceed(() => undefined),
    )
    const attempts: Array<Attempt> = []
    let obtained: Algorithm | undefined
    for (const algorithm of order) {
      const listed = listedSet?.has(algorithm)
      const r = yield* Effect.either(set(socket, algorithm))
      if (r._tag === "Left") {
        // A missing socket or addon is not a per-algorithm refusal: stop.
        if (r.left._tag !== "SocketOptionError") return yield* r.left
        attempts.push({ algorithm, listed, error: r.left.code })
        continue
      }
      attempts.push({ algorithm, listed, readBack: r.right })
      if (r.right === algorithm) {
        obtained = algorithm
        break
      }
    }
    const requested = order[0] ?? "default"
    const final = obtained ?? (yield* current(socket))
    const refused = attempts
      .filter((a) => a.algorithm !== final)
      .map((a) =>
        a.error !== undefined
          ? `${a.algorithm} refused (${a.error}${a.listed === false ? ", not in tcp_available_congestion_control" : ""})`
          : `${a.algorithm} read back as ${a.readBack}`,
      )
    return {
      requested,
      obtained: final,
      fallback: final !== requested,
      reason: [reason, ...refused, obtained === undefined ? `kept system default ${final}` : `using ${final}`].join(
        "; ",
      ),
      attempts,
    }
  })

/**
 * How to pick the algorithm for one connection: the configured mode, optionally measured conditions, and
 * optionally an explicit algorithm (`"auto"` or absent = from the mode), which is tried first.
 *
 * @since 0.1.0
 */
export interface ConfigureOptions {
  readonly mode: Mode
  readonly conditions?: Conditions | undefined
  readonly algorithm?: Algorithm | "auto" | undefined
}

/**
 * `preference` then `apply`: the one call a transport makes per connection.
 *
 * @since 0.1.0
 */
export const configure = (
  socket: SocketLike,
  options: ConfigureOptions,
): Effect.Effect<Selection, AddonUnavailable | NoSocketFd | SocketOptionError> => {
  const pref = preference(options.mode, options.conditions)
  const explicit = options.algorithm !== undefined && options.algorithm !== "auto" ? options.algorithm : undefined
  const order = explicit ? [explicit, ...pref.order.filter((a) => a !== explicit)] : pref.order
  return apply(socket, order, explicit ? `configured ${explicit} (${pref.reason})` : pref.reason)
}

/**
 * Re-decides a live connection's algorithm from what it has measured so far (`TCP_INFO`: smoothed RTT,
 * retransmitted share of bytes) and switches it when the preference changed; the kernel allows changing
 * `TCP_CONGESTION` on an established socket. Call it once the connection has carried some data (a second
 * or a few RTTs), e.g. to correct a datacenter setting on what turns out to be a WAN path.
 *
 * @since 0.1.0
 */
export const adapt = (
  socket: SocketLike,
  options: ConfigureOptions,
): Effect.Effect<Selection & { readonly conditions: Conditions }, AddonUnavailable | NoSocketFd | SocketOptionError> =>
  Effect.gen(function* () {
    const conditions = TcpInfo.conditions(yield* TcpInfo.read(socket))
    const selection = yield* configure(socket, { ...options, conditions })
    return { ...selection, conditions }
  })
