/**
 * The design's adaptive configuration table, as a pure function of what was measured:
 *
 * | Mode       | Transport            | Compression       | Consensus          | Congestion     |
 * |------------|----------------------|-------------------|--------------------|----------------|
 * | datacenter | RDMA + multi-stream  | light / none      | Raft               | DCTCP          |
 * | internet   | TCP multi-stream BBR | aggressive zstd   | gossip             | BBR            |
 * | hybrid     | adaptive per link    | adaptive per link | Raft + gossip      | BBR + fallback |
 *
 * A link is classified from its own measurements ({@link classify}, with {@link Hysteresis} so a
 * link at a border does not flap); {@link rowFor} gives its row for the node's mode (in a hybrid
 * node, transport and compression follow the link's own class), and {@link resolve} replaces what
 * the host lacks (RDMA, DCTCP) with the next best, recording why.
 *
 * @since 0.1.0
 */
import { Classify } from "@novacron/environment"

/**
 * @since 0.1.0
 * @category models
 */
export type Mode = Classify.Mode

/**
 * How bytes move: `rdma-multistream` (RDMA verbs, several queue pairs), `tcp-multistream` (AMST
 * striping over TCP/TLS), `tcp-single` (v1: one TLS stream).
 *
 * @since 0.1.0
 * @category models
 */
export type Transport = "rdma-multistream" | "tcp-multistream" | "tcp-single"

/**
 * Compression of a transfer: HDE's algorithm and level (`adaptive` picks per chunk from the
 * measured link speed).
 *
 * @since 0.1.0
 * @category models
 */
export interface Compression {
  readonly algorithm: "none" | "lz4" | "zstd" | "adaptive"
  readonly level: number
}

/**
 * @since 0.1.0
 * @category models
 */
export type Consensus = "raft" | "gossip" | "raft+gossip"

/**
 * One row: what a transfer on a link uses. `congestion` is the order to try, best first.
 *
 * @since 0.1.0
 * @category models
 */
export interface Row {
  /** The node mode and the link class that picked the row. */
  readonly mode: Mode
  readonly linkClass: Mode
  readonly transport: Transport
  readonly compression: Compression
  readonly consensus: Consensus
  readonly congestion: ReadonlyArray<string>
}

/**
 * A row after the capability check: each replaced cell says what was asked, what is used and why.
 *
 * @since 0.1.0
 * @category models
 */
export interface Downgrade {
  readonly cell: "transport" | "congestion"
  readonly wanted: string
  readonly used: string
  readonly reason: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ResolvedRow extends Row {
  readonly downgrades: ReadonlyArray<Downgrade>
}

// Datacenter links carry > 10 Gbit/s: no compressor keeps up on a core, so none.
const none: Compression = { algorithm: "none", level: 0 }
// Internet links are slow next to a core: spend CPU for ratio.
const aggressive: Compression = { algorithm: "zstd", level: 9 }
const adaptive: Compression = { algorithm: "adaptive", level: 3 }

const transportOf = (c: Mode): Transport => (c === "datacenter" ? "rdma-multistream" : "tcp-multistream")
const compressionOf = (c: Mode): Compression => (c === "datacenter" ? none : c === "internet" ? aggressive : adaptive)

/**
 * The table's row for a link of class `linkClass` on a node in `mode`. In a datacenter or internet
 * node every link takes the mode's row; in a hybrid node transport and compression follow the
 * link's class (adaptive per link), consensus is Raft + gossip and congestion BBR with CUBIC as
 * the fallback.
 *
 * @since 0.1.0
 * @category constructors
 */
export const rowFor = (mode: Mode, linkClass: Mode): Row => {
  switch (mode) {
    case "datacenter":
      return {
        mode,
        linkClass,
        transport: "rdma-multistream",
        compression: none,
        consensus: "raft",
        congestion: ["dctcp", "cubic"],
      }
    case "internet":
      return {
        mode,
        linkClass,
        transport: "tcp-multistream",
        compression: aggressive,
        consensus: "gossip",
        congestion: ["bbr", "cubic"],
      }
    case "hybrid":
      return {
        mode,
        linkClass,
        transport: transportOf(linkClass),
        compression: compressionOf(linkClass),
        consensus: "raft+gossip",
        congestion: ["bbr", "cubic"],
      }
  }
}

/**
 * What the host can do: congestion algorithms the kernel lists
 * (`/proc/sys/net/ipv4/tcp_available_congestion_control`; `undefined` when unreadable) and RDMA
 * devices (`/sys/class/infiniband`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Capabilities {
  readonly congestion: ReadonlyArray<string> | undefined
  readonly rdmaDevices: ReadonlyArray<string>
}

/**
 * The kernel's default congestion control, always built in.
 *
 * @since 0.1.0
 */
export const kernelDefault = "cubic"

/**
 * Replaces what the host lacks with the next best: RDMA → TCP multi-stream; a congestion
 * algorithm the kernel does not list → the next in the row's order that it lists (or
 * {@link kernelDefault}). An unreadable list keeps the order (the socket call will say).
 *
 * @since 0.1.0
 * @category combinators
 */
export const resolve = (row: Row, caps: Capabilities): ResolvedRow => {
  const downgrades: Array<Downgrade> = []
  let transport = row.transport
  if (transport === "rdma-multistream" && caps.rdmaDevices.length === 0) {
    transport = "tcp-multistream"
    downgrades.push({
      cell: "transport",
      wanted: "rdma-multistream",
      used: transport,
      reason: "no RDMA device in /sys/class/infiniband",
    })
  }
  let congestion = row.congestion
  const listed = caps.congestion
  if (listed !== undefined) {
    const usable = row.congestion.filter((a) => listed.includes(a))
    const order = usable.length > 0 ? usable : [kernelDefault]
    if (order[0] !== row.congestion[0]) {
      downgrades.push({
        cell: "congestion",
        wanted: row.congestion[0]!,
        used: order[0]!,
        reason: `${row.congestion[0]} not in tcp_available_congestion_control (${listed.join(" ") || "empty"})`,
      })
    }
    congestion = order
  }
  return { ...row, transport, congestion, downgrades }
}

/**
 * Hysteresis of the link classifier: a link leaves its class only when a measurement is past the
 * class's border by `margin` (a fraction of the threshold), and only after `samples` such
 * measurements in a row all pointing to the same new class.
 *
 * @since 0.1.0
 * @category models
 */
export interface Hysteresis {
  readonly margin: number
  readonly samples: number
}

/**
 * 20 % past the border, three samples in a row: with a 30 s interval a link moves within 90 s of
 * a real change, and a link measured around 1 ms or 50 ms stays put.
 *
 * @since 0.1.0
 */
export const defaultHysteresis: Hysteresis = { margin: 0.2, samples: 3 }

/**
 * Where a link stands: its class and the class the latest samples point to, with how many in a row.
 *
 * @since 0.1.0
 * @category models
 */
export interface LinkState {
  readonly linkClass: Mode
  readonly reason: string
  readonly pending: { readonly linkClass: Mode; readonly count: number } | undefined
}

/**
 * Whether a measurement is past the borders of `current` widened by the margin: if not, the link
 * stays in `current` whatever the design thresholds say.
 */
const leaves = (current: Mode, m: Classify.PeerMeasurement, t: Classify.Thresholds, margin: number): boolean => {
  if (m.rttMs === undefined) return current !== "internet"
  switch (current) {
    case "datacenter":
      return (
        m.rttMs >= t.datacenterMaxRttMs * (1 + margin) ||
        m.loss > 0 ||
        // Not measured is not datacenter, as in the design classifier.
        m.bandwidthBps === undefined ||
        m.bandwidthBps <= t.datacenterMinBandwidthBps * (1 - margin) ||
        (m.jitterMs !== undefined && m.jitterMs > t.internetMinJitterMs)
      )
    case "internet":
      return (
        m.rttMs <= t.internetMinRttMs * (1 - margin) &&
        m.loss <= t.internetMinLoss * (1 - margin) &&
        (m.jitterMs === undefined || m.jitterMs <= t.internetMinJitterMs * (1 - margin))
      )
    case "hybrid":
      // Hybrid's borders are the other classes' entry thresholds.
      return true
  }
}

/**
 * One measurement's class given the current one: the design thresholds
 * ({@link Classify.classifyLink}) decide, except inside the margin around the current class.
 *
 * @since 0.1.0
 * @category combinators
 */
export const classifySample = (
  current: Mode | undefined,
  m: Classify.PeerMeasurement,
  options: { readonly thresholds?: Classify.Thresholds; readonly margin?: number } = {},
): Classify.LinkClass => {
  const t = options.thresholds ?? Classify.designThresholds
  const raw = Classify.classifyLink(m, t)
  if (current === undefined || raw.mode === current) return raw
  if (!leaves(current, m, t, options.margin ?? defaultHysteresis.margin)) {
    return { peer: m.peer, mode: current, reason: `still ${current}: ${raw.reason}, within the hysteresis margin` }
  }
  return raw
}

/**
 * Steps a link's state with one measurement. The first measurement sets the class at once; after
 * that a change needs `samples` consecutive measurements for the same new class.
 *
 * @since 0.1.0
 * @category combinators
 */
export const step = (
  state: LinkState | undefined,
  m: Classify.PeerMeasurement,
  options: { readonly thresholds?: Classify.Thresholds; readonly hysteresis?: Hysteresis } = {},
): LinkState => {
  const h = options.hysteresis ?? defaultHysteresis
  const c = classifySample(state?.linkClass, m, {
    margin: h.margin,
    ...(options.thresholds ? { thresholds: options.thresholds } : {}),
  })
  if (state === undefined) return { linkClass: c.mode, reason: c.reason, pending: undefined }
  if (c.mode === state.linkClass) return { linkClass: state.linkClass, reason: state.reason, pending: undefined }
  const count = state.pending?.linkClass === c.mode ? state.pending.count + 1 : 1
  if (count >= Math.max(1, h.samples)) return { linkClass: c.mode, reason: c.reason, pending: undefined }
  return { ...state, pending: { linkClass: c.mode, count } }
}

/**
 * The node's mode from its links' classes (and RDMA): the rule of {@link Classify.classify}
 * applied to the links as the classifier holds them.
 *
 * @since 0.1.0
 * @category combinators
 */
export const nodeMode = (links: ReadonlyArray<Mode>, rdma: boolean): Mode => {
  if (rdma) return "datacenter"
  if (links.length === 0) return Classify.defaultMode
  if (links.every((l) => l === "datacenter")) return "datacenter"
  if (links.every((l) => l === "internet")) return "internet"
  return "hybrid"
}
