/**
 * The `@novacron/init` component spec of the service (`dwcp.enable_v3_prediction`): healthy while
 * the model is ready (or disabled), degraded while predictions come from the fallback baseline.
 * The host's boot table places it (phase, criticality, dependencies).
 *
 * @since 0.1.0
 */
import { Component } from "@novacron/init"
import { Effect } from "effect"
import * as Pba from "./Pba.js"

/**
 * Health of the service from its model state.
 *
 * @since 0.1.0
 */
export const healthCheck: Effect.Effect<Component.HealthResult, never, Pba.Pba> = Effect.flatMap(Pba.Pba, (pba) =>
  Effect.map(pba.modelStatus, (s): Component.HealthResult => {
    switch (s._tag) {
      case "Ready":
        return { status: "healthy", details: { model: s.path } }
      case "Disabled":
        return { status: "healthy", message: "v3 prediction disabled: baseline predictor" }
      case "Loading":
        return { status: "degraded", message: "lstm model loading: baseline predictor" }
      case "Unavailable":
        return { status: "degraded", message: `lstm model unavailable, baseline predictor: ${s.reason}` }
    }
  }),
)

/**
 * The component spec (placed by the host's boot table).
 *
 * @since 0.1.0
 */
export const component = (settings: Pba.PbaSettings) =>
  Component.spec({
    name: "dwcp-pba",
    layer: Pba.layer(settings),
    healthCheck,
    description: "predictive bandwidth allocation (dwcp.enable_v3_prediction)",
  })
