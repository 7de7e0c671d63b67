/**
 * A component is a descriptor plus an Effect `Layer` that provides its service: the Effect
 * form of the original `Component { Name, Dependencies, Initialize, HealthCheck, Shutdown }`.
 * `Initialize` is the layer's acquisition, `Shutdown` its finalizers (run by the component's
 * own Scope), `HealthCheck` the optional `healthCheck` effect.
 *
 * @since 0.1.0
 */
import { Data, type Duration, Effect, type Layer, type Schedule } from "effect"

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

/**
 * What a package says about its component: its Layer, health check, retry and fallback, but not
 * where it runs. Phase, criticality and dependencies are the host's ({@link Placement}), kept in
 * one table so the boot order has one owner.
 *
 * @since 0.2.0
 * @category models
 */
export type Spec<ROut = unknown, E = unknown, RIn = never> = Omit<
  Component<ROut, E, RIn>,
  "phase" | "criticality" | "dependencies"
>

/**
 * A spec of any service type, as a host's list holds it.
 *
 * @since 0.2.0
 * @category models
 */
export interface AnySpec extends Omit<AnyComponent, "phase" | "criticality" | "dependencies"> {}

/**
 * Where a component runs: one row of the host's boot table.
 *
 * @since 0.2.0
 * @category models
 */
export interface Placement {
  readonly phase: Phase
  readonly criticality: Criticality
  /** Components that must be up first (same or earlier phase). Default: none. */
  readonly dependencies?: ReadonlyArray<string> | undefined
}

/**
 * A boot table: the placement of every component a host may run, by component name.
 *
 * @since 0.2.0
 * @category models
 */
export type Table = Readonly<Record<string, Placement>>

/**
 * Declares a package's component without placing it.
 *
 * @example
 * ```ts
 * import { Component } from "@novacron/init"
 * import { Context, Layer } from "effect"
 *
 * class Cache extends Context.Tag("Cache")<Cache, { readonly get: (key: string) => string | undefined }>() {}
 *
 * // In the package:
 * const cache = Component.spec({ name: "cache", layer: Layer.succeed(Cache, { get: () => undefined }) })
 * // In the host's boot table:
 * const placed = Component.place(cache, { phase: "core", criticality: "DEGRADED" })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const spec = <ROut, E, RIn>(options: Spec<ROut, E, RIn>): Spec<ROut, E, RIn> => options

/**
 * A spec placed by a table row. The row wins over any placement the spec still carries.
 *
 * @since 0.2.0
 * @category constructors
 */
export const place = <ROut, E, RIn>(spec: Spec<ROut, E, RIn>, placement: Placement): Component<ROut, E, RIn> => ({
  ...spec,
  phase: placement.phase,
  criticality: placement.criticality,
  dependencies: placement.dependencies ?? [],
})

/**
 * Specs the boot table has no row for: the host would not know their phase.
 *
 * @since 0.2.0
 * @category errors
 */
export class UnplacedComponent extends Data.TaggedError("UnplacedComponent")<{
  readonly names: ReadonlyArray<string>
}> {
  override get message(): string {
    return `no boot table row for component${this.names.length > 1 ? "s" : ""} ${this.names.map((n) => `"${n}"`).join(", ")}`
  }
}

/**
 * Places every spec by its name's row; every spec without a row is reported at once. Rows
 * without a spec are components this node does not run (a disabled endpoint, a DWCP part).
 *
 * @since 0.2.0
 * @category constructors
 */
export const placeAll = (
  specs: Iterable<AnySpec>,
  table: Table,
): Effect.Effect<ReadonlyArray<AnyComponent>, UnplacedComponent> =>
  Effect.suspend(() => {
    const placed: Array<AnyComponent> = []
    const missing: Array<string> = []
    for (const s of specs) {
      const row = Object.hasOwn(table, s.name) ? table[s.name] : undefined
      if (row === undefined) missing.push(s.name)
      // biome-ignore lint/suspicious/noExplicitAny: the list erases each spec's service types.
      else placed.push(place(s as Spec<any, any, any>, row) as AnyComponent)
    }
    return missing.length > 0 ? Effect.fail(new UnplacedComponent({ names: missing })) : Effect.succeed(placed)
  })
