/**
 * Per-connection transport statistics from `getsockopt(TCP_INFO)` (Linux `struct tcp_info`).
 *
 * @since 0.1.0
 */
import { Duration, Effect, Schedule, Stream } from "effect"
import type { AddonUnavailable, NoSocketFd, SocketOptionError } from "./AcpError.js"
import type { Conditions } from "./CongestionControl.js"
import { call, type SocketLike } from "./internal/socket.js"

/**
 * A `TCP_INFO` snapshot. Times in microseconds, rates in bytes per second, counters in bytes or segments.
 * `maxPacingRate` is -1 when uncapped.
 *
 * @since 0.1.0
 */
export interface TcpInfo {
  readonly state: number
  readonly caState: number
  readonly retransmits: number
  readonly rtoUs: number
  readonly sndMss: number
  readonly rcvMss: number
  readonly unacked: number
  readonly lost: number
  readonly retrans: number
  readonly pmtu: number
  readonly rttUs: number
  readonly rttvarUs: number
  readonly minRttUs: number
  readonly sndSsthresh: number
  readonly sndCwnd: number
  readonly reordering: number
  readonly totalRetrans: number
  readonly pacingRate: number
  readonly maxPacingRate: number
  readonly deliveryRate: number
  readonly deliveryRateAppLimited: boolean
  readonly bytesSent: number
  readonly bytesAcked: number
  readonly bytesReceived: number
  readonly bytesRetrans: number
  readonly segsOut: number
  readonly segsIn: number
  readonly notsentBytes: number
  readonly delivered: number
  readonly busyTimeUs: number
  readonly rwndLimitedUs: number
  readonly sndbufLimitedUs: number
  readonly sndWnd: number
}

/**
 * Reads `TCP_INFO` from a connected socket.
 *
 * @since 0.1.0
 */
export const read = (socket: SocketLike): Effect.Effect<TcpInfo, AddonUnavailable | NoSocketFd | SocketOptionError> =>
  Effect.map(
    call(socket, "getsockopt(TCP_INFO)", (a, fd) => a.tcpInfo(fd)),
    (raw) => {
      // The addon fills every field it declares; drop its bookkeeping keys.
      const { ok: _ok, length: _length, ...info } = raw as Record<string, number | boolean>
      return info as unknown as TcpInfo
    },
  )

/**
 * Path conditions as seen by the sender: smoothed RTT, loss as retransmitted / sent bytes, delivery rate
 * in bit/s. Feed it to `CongestionControl.preference`.
 *
 * @since 0.1.0
 */
export const conditions = (info: TcpInfo): Conditions => ({
  rttMs: info.rttUs / 1000,
  lossRate: info.bytesSent > 0 ? info.bytesRetrans / info.bytesSent : undefined,
  deliveryRateBps: info.deliveryRate * 8,
})

/**
 * Samples `TCP_INFO` every `interval`, starting immediately; ends with the first failure (e.g. the socket
 * closed).
 *
 * @since 0.1.0
 */
export const monitor = (
  socket: SocketLike,
  interval: Duration.DurationInput,
): Stream.Stream<TcpInfo, AddonUnavailable | NoSocketFd | SocketOptionError> =>
  Stream.repeatEffectWithSchedule(read(socket), Schedule.spaced(Duration.decode(interval)))

/**
 * Caps the kernel's own pacing of this socket (`SO_MAX_PACING_RATE`, bytes per second; `Infinity` removes
 * the cap). Complements `Pacer`, which paces in the application.
 *
 * @since 0.1.0
 */
export const setMaxPacingRate = (
  socket: SocketLike,
  bytesPerSecond: number,
): Effect.Effect<void, AddonUnavailable | NoSocketFd | SocketOptionError> =>
  Effect.asVoid(
    call(socket, "setsockopt(SO_MAX_PACING_RATE)", (a, fd) =>
      a.setMaxPacingRate(fd, Number.isFinite(bytesPerSecond) ? bytesPerSecond : -1),
    ),
  )
