/**
 * The ResourceValidator: measures CPU count, memory and free disk on the data directory and
 * compares them with the profile's minimums.
 *
 * @since 0.1.0
 */
import { statfs } from "node:fs/promises"
import { availableParallelism, totalmem } from "node:os"
import { dirname, resolve } from "node:path"
import { Component } from "@novacron/init"
import { Context, Data, Effect, Layer, Schema } from "effect"
import * as Profile from "./Profile.js"
import * as ResourceSettings from "./ResourceSettings.js"

/**
 * The settings, named as in `system.*` of the configuration.
 *
 * @since 0.1.0
 */
export const Settings = Schema.Struct({
  data_dir: Schema.optionalWith(Schema.String, { default: () => "./.novacron", exact: true }),
  ...ResourceSettings.ResourceSettings.fields,
})

/**
 * @since 0.1.0
 */
export type Settings = typeof Settings.Type

/**
 * What was measured; memory and disk in bytes.
 *
 * @since 0.1.0
 */
export type Measurements = Profile.Requirements

/**
 * One resource below its minimum.
 *
 * @since 0.1.0
 */
export interface Shortfall {
  readonly resource: "cpus" | "memory" | "disk"
  readonly measured: number
  readonly required: number
}

const render = (s: Shortfall): string =>
  s.resource === "cpus"
    ? `CPUs: measured ${s.measured}, required ${s.required}`
    : `${s.resource}: measured ${Profile.formatBytes(s.measured)}, required ${Profile.formatBytes(s.required)}`

/**
 * The node has less than the profile requires.
 *
 * @since 0.1.0
 */
export class InsufficientResources extends Data.TaggedError("InsufficientResources")<{
  readonly profile: Profile.ProfileName
  readonly shortfalls: ReadonlyArray<Shortfall>
}> {
  override get message(): string {
    return `insufficient resources for profile "${this.profile}": ${this.shortfalls.map(render).join("; ")}`
  }
}

/**
 * Measuring failed (e.g. the data directory's file system cannot be queried).
 *
 * @since 0.1.0
 */
export class MeasurementError extends Data.TaggedError("MeasurementError")<{ readonly message: string }> {}

/**
 * Compares measurements with requirements; an empty result means the node qualifies.
 *
 * @since 0.1.0
 */
export const check = (measured: Measurements, required: Profile.Requirements): ReadonlyArray<Shortfall> =>
  (["cpus", "memory", "disk"] as const)
    .filter((r) => measured[r] < required[r])
    .map((resource) => ({ resource, measured: measured[resource], required: required[resource] }))

/**
 * Measures this host: `availableParallelism()`, total memory, and the space available to this
 * user on the file system holding `dataDir` (its nearest existing ancestor if it does not exist yet).
 *
 * @since 0.1.0
 */
export const measure = (dataDir: string): Effect.Effect<Measurements, MeasurementError> =>
  Effect.tryPromise({
    try: async () => {
      let dir = resolve(dataDir)
      for (;;) {
        try {
          const fs = await statfs(dir)
          return { cpus: availableParallelism(), memory: totalmem(), disk: fs.bavail * fs.bsize }
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT" || dirname(dir) === dir) throw e
          dir = dirname(dir)
        }
      }
    },
    catch: (e) => new MeasurementError({ message: `cannot measure free disk for ${dataDir}: ${String(e)}` }),
  })

/**
 * The validated resources.
 *
 * @since 0.1.0
 */
export class ResourceValidator extends Context.Tag("@novacron/resources/ResourceValidator")<
  ResourceValidator,
  { readonly profile: Profile.ProfileName; readonly measured: Measurements; readonly required: Profile.Requirements }
>() {}

/**
 * Measures (or uses `measurements`, for tests and dry runs) and fails with
 * `InsufficientResources` when anything is below the minimum.
 *
 * @since 0.1.0
 */
export const validate = (
  settings: Settings,
  measurements: Effect.Effect<Measurements, MeasurementError> = measure(settings.data_dir),
): Effect.Effect<Context.Tag.Service<ResourceValidator>, InsufficientResources | MeasurementError> =>
  Effect.gen(function* () {
    const measured = yield* measurements
    const required = Profile.requirements(settings.resource_profile, settings)
    const shortfalls = check(measured, required)
    if (shortfalls.length > 0)
      return yield* new InsufficientResources({ profile: settings.resource_profile, shortfalls })
    yield* Effect.logDebug(
      `resources ok: ${measured.cpus} CPUs, ${Profile.formatBytes(measured.memory)} memory, ${Profile.formatBytes(measured.disk)} free disk`,
    )
    return { profile: settings.resource_profile, measured, required }
  })

/**
 * @since 0.1.0
 */
export const layer = (
  settings: Settings,
  measurements?: Effect.Effect<Measurements, MeasurementError>,
): Layer.Layer<ResourceValidator, InsufficientResources | MeasurementError> =>
  Layer.effect(ResourceValidator, validate(settings, measurements))

/**
 * The ResourceValidator as an `@novacron/init` component spec (`resources`; a host's boot table
 * places it).
 *
 * @since 0.1.0
 */
export const component = (
  settings: Settings,
  options: {
    readonly measurements?: Effect.Effect<Measurements, MeasurementError> | undefined
  } = {},
) =>
  Component.spec({
    name: "resources",
    description: "CPU, memory and free disk against the resource profile",
    layer: layer(settings, options.measurements),
    healthCheck: Effect.map(ResourceValidator, (r) => ({
      status: "healthy" as const,
      details: { profile: r.profile, cpus: r.measured.cpus, memory: r.measured.memory, disk: r.measured.disk },
    })),
  })
