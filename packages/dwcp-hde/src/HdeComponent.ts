/**
 * The encoder as an `@novacron/init` component, configured from `dwcp.compression`.
 *
 * @since 0.1.0
 */
import { Component } from "@novacron/init"
import { Effect } from "effect"
import * as Hde from "./Hde.js"
import type { CompressionSettings } from "./HdeSettings.js"

const probe = Buffer.from("novacron dwcp-hde health probe ".repeat(256))

/**
 * Component `dwcp-hde` (phase `services`, DEGRADED: the node can still move data uncompressed
 * through the transport if encoding cannot start). Its health check round-trips a small
 * buffer through the worker pool and reports the counters.
 *
 * @example
 * ```ts
 * import { Boot } from "@novacron/init"
 * import { HdeComponent, HdeSettings } from "@novacron/dwcp-hde"
 *
 * const node = Boot.boot([HdeComponent.component(HdeSettings.defaults)])
 * ```
 *
 * @since 0.1.0
 */
export const component = (settings: CompressionSettings, options?: Hde.Options) =>
  Component.make({
    name: "dwcp-hde",
    phase: "services",
    criticality: "DEGRADED",
    description: "DWCP hybrid data encoding (compression, page dedup, delta) on worker threads",
    layer: Hde.layer(settings, options),
    timeout: "10 seconds",
    healthCheck: Effect.gen(function* () {
      const hde = yield* Hde.Hde
      const back = yield* hde.decode(yield* hde.encode(probe))
      const stats = yield* hde.stats
      return {
        status: back.equals(probe) ? ("healthy" as const) : ("unhealthy" as const),
        details: {
          workers: stats.workers,
          bytesIn: stats.bytesIn,
          bytesOut: stats.bytesOut,
          deltaCache: stats.deltaCache,
        },
      }
    }),
  })
