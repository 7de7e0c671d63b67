/**
 * The pure classification of a node's network environment from measurements.
 *
 * Each link to a peer is classified first:
 * - `datacenter`: RTT below 1 ms, bandwidth above 10 Gbit/s, no loss;
 * - `internet`: RTT above 50 ms, or loss above 1 %, or jitter above 10 ms (or unreachable);
 * - `hybrid`: anything in between (e.g. a sub-millisecond link whose bandwidth is unknown or lower).
 *
 * Then the node: RDMA devices present (and RDMA enabled) → `datacenter`; every link datacenter →
 * `datacenter`; every link internet → `internet`; otherwise (all hybrid, or mixed) `hybrid`. With no peers and no RDMA
 * it is {@link defaultMode} (`hybrid`: it assumes nothing about links the node has not seen).
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export type Mode = "datacenter" | "internet" | "hybrid"

/**
 * The mode used when nothing was measured.
 *
 * @since 0.1.0
 */
export const defaultMode: Mode = "hybrid"

/**
 * Measurements towards one peer. RTT and jitter in milliseconds, loss as a fraction, bandwidth
 * in bits per second (undefined when not measured).
 *
 * @since 0.1.0
 */
export interface PeerMeasurement {
  readonly peer: string
  /** `echo`: probe-protocol round trips; `connect`: TCP connect time (peer without a probe responder). */
  readonly method: "echo" | "connect"
  readonly samples: number
  readonly rttMs: number | undefined
  readonly jitterMs: number | undefined
  readonly loss: number
  readonly bandwidthBps: number | undefined
}

/**
 * The design thresholds.
 *
 * @since 0.1.0
 */
export interface Thresholds {
  readonly datacenterMaxRttMs: number
  readonly datacenterMinBandwidthBps: number
  readonly internetMinRttMs: number
  readonly internetMinLoss: number
  readonly internetMinJitterMs: number
}

/**
 * @since 0.1.0
 */
export const designThresholds: Thresholds = {
  datacenterMaxRttMs: 1,
  datacenterMinBandwidthBps: 10e9,
  internetMinRttMs: 50,
  internetMinLoss: 0.01,
  internetMinJitterMs: 10,
}

/**
 * A classified link with the reason in words.
 *
 * @since 0.1.0
 */
export interface LinkClass {
  readonly peer: string
  readonly mode: Mode
  readonly reason: string
}

const ms = (v: number) => `${v.toFixed(3)} ms`
const gbit = (v: number) => `${(v / 1e9).toFixed(2)} Gbit/s`

/**
 * Classifies one link.
 *
 * @since 0.1.0
 */
export const classifyLink = (m: PeerMeasurement, t: Thresholds = designThresholds): LinkClass => {
  const at = (mode: Mode, reason: string): LinkClass => ({ peer: m.peer, mode, reason })
  if (m.rttMs === undefined) return at("internet", "unreachable")
  if (m.rttMs > t.internetMinRttMs) return at("internet", `RTT ${ms(m.rttMs)} > ${t.internetMinRttMs} ms`)
  if (m.loss > t.internetMinLoss)
    return at("internet", `loss ${(m.loss * 100).toFixed(1)} % > ${t.internetMinLoss * 100} %`)
  if (m.jitterMs !== undefined && m.jitterMs > t.internetMinJitterMs) {
    return at("internet", `jitter ${ms(m.jitterMs)} > ${t.internetMinJitterMs} ms`)
  }
  if (m.rttMs < t.datacenterMaxRttMs && m.loss === 0) {
    if (m.bandwidthBps !== undefined && m.bandwidthBps > t.datacenterMinBandwidthBps) {
      return at(
        "datacenter",
        `RTT ${ms(m.rttMs)} < ${t.datacenterMaxRttMs} ms and ${gbit(m.bandwidthBps)} > ${gbit(t.datacenterMinBandwidthBps)}`,
      )
    }
    return at(
      "hybrid",
      m.bandwidthBps === undefined
        ? `RTT ${ms(m.rttMs)} but bandwidth not measured`
        : `RTT ${ms(m.rttMs)} but ${gbit(m.bandwidthBps)} <= ${gbit(t.datacenterMinBandwidthBps)}`,
    )
  }
  return at("hybrid", `RTT ${ms(m.rttMs)} between ${t.datacenterMaxRttMs} and ${t.internetMinRttMs} ms`)
}

/**
 * The node's classification.
 *
 * @since 0.1.0
 */
export interface Classification {
  readonly mode: Mode
  readonly reason: string
  readonly links: ReadonlyArray<LinkClass>
}

/**
 * Classifies the node from its links and RDMA presence.
 *
 * @since 0.1.0
 */
export const classify = (
  input: { readonly rdma: boolean; readonly peers: ReadonlyArray<PeerMeasurement> },
  t: Thresholds = designThresholds,
): Classification => {
  const links = input.peers.map((m) => classifyLink(m, t))
  if (input.rdma) return { mode: "datacenter", reason: "RDMA devices present", links }
  if (links.length === 0) return { mode: defaultMode, reason: `no peers to measure; default ${defaultMode}`, links }
  const count = (mode: Mode) => links.filter((l) => l.mode === mode).length
  for (const mode of ["datacenter", "internet", "hybrid"] as const) {
    if (count(mode) === links.length) {
      const reason =
        links.length === 1 ? `1 link, ${mode}-class: ${links[0]!.reason}` : `all ${links.length} links ${mode}-class`
      return { mode, reason, links }
    }
  }
  return {
    mode: "hybrid",
    reason: `mixed links: ${count("datacenter")} datacenter, ${count("hybrid")} hybrid, ${count("internet")} internet`,
    links,
  }
}
