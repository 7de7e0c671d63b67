/**
 * A component is a descriptor plus an Effect `Layer` that provides its service: the Effect
 * form of the original `Component { Name, Dependencies, Initialize, HealthCheck, Shutdown }`.
 * `Initialize` is the layer's acquisition, `Shutdown` its finalizers (run by the component's
 * own Scope), `HealthCheck` the optional `healthCheck` effect.
 *
 * @since 0.1.0
 */
import type { Duration, Effect, Layer, Schedule } from "effect"

/**
 * The four boot phases, in the order they run.
 *
 * @since 0.1.0
 */
export const phases = ["pre-init", "core", "services", "post-init"] as const

/**
 * @since 0.1.0
 */
export type Phase = (typeof phases)[number]

/**
 * What a failure of the component does to the boot:
 * - `CRITICAL`: boot halts and everything started is rolled back, newest first.
 * - `DEGRADED`: retried (exponential backoff), then boot goes on with the fallback, marked degraded.
 * - `WARNING`: logged, boot goes on without it.
 *
 * @since 0.1.0
 */
export type Criticality = "CRITICAL" | "DEGRADED" | "WARNING"

/**
 * Outcome of a health check. A check that fails (the error channel) counts as `unhealthy`.
 *
 * @since 0.1.0
 */
export interface HealthResult {
  readonly status: "healthy" | "degraded" | "unhealthy"
  readonly message?: string
  readonly details?: Readonly<Record<string, unknown>>
}

/**
 * A component descriptor.
 *
 * `ROut` is what the layer provides to the components that depend on it; `RIn` must be covered by
 * the outputs of the components named in `dependencies` (and of their dependencies, transitively)
 * plus whatever the host provides to the whole boot.
 *
 * @since 0.1.0
 */
export interface Component<ROut = unknown, E = unknown, RIn = never> {
  /** Unique name, used for dependencies, logs, metrics and checkpoints. */
  readonly name: string
  readonly phase: Phase
  readonly criticality: Criticality
  /** Names of components that must be up before this one starts. Same or earlier phase. */
  readonly dependencies: ReadonlyArray<string>
  /** Builds the component's service(s); finalizers added to its scope are its shutdown. */
  readonly layer: Layer.Layer<ROut, E, RIn>
  /** Periodic health check, run with the component's own services. */
  readonly healthCheck?: Effect.Effect<HealthResult | void, unknown, ROut> | undefined
  /**
   * Retry policy for a failed start. Defaults: DEGRADED 3 retries at 1 s, 2 s, 4 s; others none.
   */
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
  /** What a DEGRADED component provides when it gives up (e.g. an in-memory cache). */
  readonly fallback?: Layer.Layer<ROut, unknown, RIn> | undefined
  /** Upper bound on one start attempt. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Expected start time, used for the critical path before a measured one exists. */
  readonly expectedDuration?: Duration.DurationInput | undefined
  /** Free-form description for reports. */
  readonly description?: string | undefined
}

/**
 * A component of any service type, as held by a registry.
 *
 * @since 0.1.0
 */
// biome-ignore lint/suspicious/noExplicitAny: a registry erases each component's service types.
export interface AnyComponent extends Omit<Component<any, any, any>, "layer" | "fallback"> {
  // The union admits layers that provide nothing (`Layer<never>`), which `Layer<any>` does not.
  readonly layer: Layer.Layer<any, any, any> | Layer.Layer<never, any, any>
  readonly fallback?: Layer.Layer<any, unknown, any> | Layer.Layer<never, unknown, any> | undefined
}

/**
 * Declares a component. Defaults: no dependencies.
 *
 * @example
 * ```ts
 * import { Component } from "@novacron/init"
 * import { Context, Layer } from "effect"
 *
 * class Cache extends Context.Tag("Cache")<Cache, { readonly get: (key: string) => string | undefined }>() {}
 * const RedisCache = { layer: Layer.succeed(Cache, { get: () => undefined }) }
 * const MemoryCache = { layer: Layer.succeed(Cache, { get: () => undefined }) }
 *
 * const cache = Component.make({
 *   name: "cache",
 *   phase: "core",
 *   criticality: "DEGRADED",
 *   dependencies: ["security"],
 *   layer: RedisCache.layer,
 *   fallback: MemoryCache.layer,
 * })
 * ```
 *
 * @since 0.1.0
 */
export const make = <ROut, E, RIn>(
  options: Omit<Component<ROut, E, RIn>, "dependencies"> & { readonly dependencies?: ReadonlyArray<string> },
): Component<ROut, E, RIn> => ({ ...options, dependencies: options.dependencies ?? [] })
