/**
 * The ACP service: per-connection congestion control and pacing for a node, configured from
 * `dwcp.transport`, and its `@novacron/init` component.
 *
 * @since 0.1.0
 */
import { Component } from "@novacron/init"
import { Context, Effect, Layer, Ref, Schema } from "effect"
import type { AddonUnavailable, NoSocketFd, SocketOptionError } from "./AcpError.js"
import * as CongestionControl from "./CongestionControl.js"
import type { SocketLike } from "./internal/socket.js"
import { addon } from "./internal/socket.js"
import * as Pacer from "./Pacer.js"
import * as TcpInfo from "./TcpInfo.js"

/**
 * The ACP keys of `dwcp.transport` (other keys are ignored):
 * - `congestion_algorithm`: `auto` (from `mode` and measured conditions) or an algorithm tried first;
 * - `mode`: `datacenter`, `internet` or `hybrid` (default: decided per connection from measurements);
 * - `pacing_rate_bps`: node-wide pacing ceiling in bit/s (absent: unpaced until an allocation arrives);
 * - `link_share`: the share (0..1] of the ceiling or allocation that transfers may use.
 *
 * @since 0.1.0
 */
export const Settings = Schema.Struct({
  congestion_algorithm: Schema.optionalWith(Schema.Literal("auto", "bbr", "cubic", "dctcp", "reno"), {
    default: () => "auto" as const,
  }),
  mode: Schema.optionalWith(CongestionControl.Mode, { default: () => "hybrid" as const }),
  pacing_rate_bps: Schema.optional(Schema.Number.pipe(Schema.positive())),
  link_share: Schema.optionalWith(Schema.Number.pipe(Schema.greaterThan(0), Schema.lessThanOrEqualTo(1)), {
    default: () => 1,
  }),
})

/**
 * @since 0.1.0
 */
export type Settings = typeof Settings.Type

/**
 * Decodes settings from their file form (unknown input); defaults fill what is missing.
 *
 * @since 0.1.0
 */
export const decodeSettings = Schema.decodeUnknown(Settings)

/**
 * Counters of what `configure` did since start.
 *
 * @since 0.1.0
 */
export interface Stats {
  readonly configured: number
  readonly fallbacks: number
  readonly obtained: Readonly<Record<string, number>>
}

/**
 * The ACP service.
 *
 * @since 0.1.0
 */
export interface Service {
  readonly settings: Settings
  /** Congestion-control modules loaded when the service started. */
  readonly available: ReadonlyArray<string>
  /** Picks and sets the algorithm for a connection (settings + optional measurements), reads it back. */
  readonly configure: (
    socket: SocketLike,
    conditions?: CongestionControl.Conditions,
  ) => Effect.Effect<CongestionControl.Selection, AddonUnavailable | NoSocketFd | SocketOptionError>
  readonly info: (
    socket: SocketLike,
  ) => Effect.Effect<TcpInfo.TcpInfo, AddonUnavailable | NoSocketFd | SocketOptionError>
  /** Node-wide pacer shared by transfers: `link_share` of the ceiling or of the latest allocation. */
  readonly pacer: Pacer.Pacer
  /** Applies a bandwidth allocation (bit/s, e.g. from PBA): the pacer runs at `link_share` of it. */
  readonly setAllocation: (bitsPerSecond: number) => Effect.Effect<void>
  readonly stats: Effect.Effect<Stats>
}

/**
 * Tag of the ACP service.
 *
 * @since 0.1.0
 */
export class Acp extends Context.Tag("@novacron/dwcp-acp/Acp")<Acp, Service>() {}

/**
 * Builds the service: fails with `AddonUnavailable` when the native addon is not built.
 *
 * @since 0.1.0
 */
export const make = (settings: Settings): Effect.Effect<Service, AddonUnavailable> =>
  Effect.gen(function* () {
    yield* addon
    const available = yield* CongestionControl.available.pipe(Effect.orElseSucceed(() => []))
    const ceiling = settings.pacing_rate_bps
    const pacer = yield* Pacer.make({
      rate: ceiling === undefined ? Number.POSITIVE_INFINITY : Pacer.shareOf(ceiling, settings.link_share),
    })
    const counters = yield* Ref.make<Stats>({ configured: 0, fallbacks: 0, obtained: {} })
    return {
      settings,
      available,
      configure: (socket, conditions) =>
        CongestionControl.configure(socket, {
          mode: settings.mode,
          conditions,
          algorithm: settings.congestion_algorithm,
        }).pipe(
          Effect.tap((s) =>
            Ref.update(counters, (c) => ({
              configured: c.configured + 1,
              fallbacks: c.fallbacks + (s.fallback ? 1 : 0),
              obtained: { ...c.obtained, [s.obtained]: (c.obtained[s.obtained] ?? 0) + 1 },
            })),
          ),
        ),
      info: TcpInfo.read,
      pacer,
      setAllocation: (bps) =>
        pacer.setRate(Pacer.shareOf(ceiling === undefined ? bps : Math.min(bps, ceiling), settings.link_share)),
      stats: Ref.get(counters),
    }
  })

/**
 * The service as a layer.
 *
 * @since 0.1.0
 */
export const layer = (settings: Settings): Layer.Layer<Acp, AddonUnavailable> => Layer.effect(Acp, make(settings))

/**
 * Health: the addon answers, with what the kernel offers and how often a fallback was needed.
 *
 * @since 0.1.0
 */
export const healthCheck = Effect.gen(function* () {
  const acp = yield* Acp
  const stats = yield* acp.stats
  const firstChoice = CongestionControl.preference(acp.settings.mode).order[0] as string
  const missing = acp.available.length > 0 && !acp.available.includes(firstChoice)
  return {
    status: "healthy" as const,
    message: missing ? `${firstChoice} not loaded: connections fall back (see stats)` : undefined,
    details: { available: acp.available, mode: acp.settings.mode, ...stats },
  }
})

/**
 * The `@novacron/init` component spec (`dwcp-acp`; a host's boot table places it, DEGRADED in the
 * node: transfers still work on the system default congestion control without it).
 *
 * @since 0.1.0
 */
export const component = (settings: Settings) =>
  Component.spec({
    name: "dwcp-acp",
    layer: layer(settings),
    healthCheck,
    timeout: "5 seconds",
    description: "per-connection congestion control (TCP_CONGESTION, TCP_INFO) and pacing",
  })
