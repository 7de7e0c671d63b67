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
 * Component spec `dwcp-hde`; the host's boot table places it (the node's: services, DEGRADED, since
 * the node can still move data uncompressed if encoding cannot start). Its health check
 * round-trips a small buffer through the worker pool and reports the counters.
 *
 * @example
 * ```ts
 * import { Boot, Component } from "@novacron/init"
 * import { HdeComponent, HdeSettings } from "@novacron/dwcp-hde"
 *
 * const placed = Component.place(HdeComponent.component(HdeSettings.defaults), {
 *   phase: "services",
 *   criticality: "DEGRADED",
 * })
 * const node = Boot.boot([placed])
 * ```
 *
 * @since 0.1.0
 */
export const component = (settings: CompressionSettings, options?: Hde.Options) =>
  Component.spec({
    name: "dwcp-hde",
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
