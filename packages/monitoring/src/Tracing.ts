/**
 * Tracing: the agent's spans (boot, phases, components, and what the packages trace) exported
 * over OTLP/HTTP with JSON bodies when `monitoring.tracing` (the design's `enable_tracing`) is on
 * and `monitoring.tracing_endpoint` names a collector; and the W3C `traceparent` text that carries
 * a span to another agent, so one operation is one trace over two nodes.
 *
 * @since 0.2.0
 */
// Deep imports: the package index also loads the OpenTelemetry SDKs, which OTLP export does not need.
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { TraceContext } from "@novacron/wire"
import { Effect, Layer, Option, Tracer } from "effect"
import type { MonitoringSettings } from "./MonitoringSettings.js"

/**
 * Who exports: the OTLP resource.
 *
 * @since 0.2.0
 * @category models
 */
export interface Resource {
  readonly serviceName: string
  readonly serviceVersion?: string | undefined
  /** Node id, as `service.instance.id`. */
  readonly instanceId: string
}

/**
 * The traces URL of a collector: `<endpoint>/v1/traces`, as `OTEL_EXPORTER_OTLP_ENDPOINT` is
 * read, unless the endpoint already ends in `/v1/traces`.
 *
 * @since 0.2.0
 * @category urls
 */
export const tracesUrl = (endpoint: string): string =>
  /\/v1\/traces\/?$/.test(endpoint) ? endpoint : `${endpoint.replace(/\/+$/, "")}/v1/traces`

/**
 * The tracer for the settings: OTLP/HTTP JSON to the endpoint (spans batched, sent every
 * `exportInterval`, the rest flushed when the layer's scope closes, for at most 5 s), or nothing
 * (Effect's default tracer, spans kept in-process) when tracing is off or no endpoint is set; the
 * latter is logged, as a switch that does nothing should be.
 *
 * @example
 * ```ts
 * import { Tracing } from "@novacron/monitoring"
 * import { Effect } from "effect"
 *
 * const program = Effect.log("traced").pipe(Effect.withSpan("example"))
 * Effect.runFork(
 *   program.pipe(
 *     Effect.provide(
 *       Tracing.layer(
 *         { tracing: true, tracing_endpoint: "http://127.0.0.1:4318" },
 *         { serviceName: "novacron-node", instanceId: "node-1" },
 *       ),
 *     ),
 *   ),
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  settings: Pick<MonitoringSettings, "tracing" | "tracing_endpoint">,
  resource: Resource,
  options: { readonly exportInterval?: number | undefined } = {},
): Layer.Layer<never> => {
  if (!settings.tracing) return Layer.empty
  if (settings.tracing_endpoint === "")
    return Layer.effectDiscard(
      Effect.logWarning(
        "monitoring.tracing is on but monitoring.tracing_endpoint is empty: no spans are exported",
      ).pipe(Effect.annotateLogs({ name: "monitoring.tracing" })),
    )
  const url = tracesUrl(settings.tracing_endpoint)
  return OtlpTracer.layer({
    url,
    resource: {
      serviceName: resource.serviceName,
      serviceVersion: resource.serviceVersion,
      attributes: { "service.instance.id": resource.instanceId },
    },
    exportInterval: options.exportInterval ?? 1000,
    shutdownTimeout: 5000,
  }).pipe(
    Layer.provide(OtlpSerialization.layerJson),
    Layer.provide(FetchHttpClient.layer),
    Layer.tap(() =>
      Effect.logInfo(`tracing: spans exported to ${url} (OTLP/HTTP JSON)`).pipe(
        Effect.annotateLogs({ name: "monitoring.tracing", url }),
      ),
    ),
  )
}

/**
 * The W3C `traceparent` of the current span (`00-<trace id>-<span id>-01`), none outside a span.
 * A peer puts it in the frame it sends; the receiver continues the trace with {@link continueFrom}.
 * The format is `@novacron/wire`'s `TraceContext`.
 *
 * @since 0.2.0
 * @category propagation
 */
export const traceparent: Effect.Effect<Option.Option<string>> = TraceContext.current

/**
 * The parent a `traceparent` names, or none when it is absent or malformed (a bad value from a
 * peer starts a new trace; it never fails the request).
 *
 * @since 0.2.0
 * @category propagation
 */
export const parse = (value: string | undefined): Option.Option<Tracer.ExternalSpan> =>
  Option.map(TraceContext.parse(value), Tracer.externalSpan)

/**
 * Runs `effect` as a child of the span a peer's `traceparent` names (unchanged when there is none).
 *
 * @since 0.2.0
 * @category propagation
 */
export const continueFrom: (
  value: string | undefined,
) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R> = TraceContext.continueFrom
