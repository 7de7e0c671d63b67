/**
 * The ConfigurationLoader: loads `novacron.yaml` (or JSON), applies environment and flag
 * overrides (defaults < file < env < flags), validates everything at once and records where
 * every effective value came from.
 *
 * @since 0.1.0
 */
import { Component } from "@novacron/init"
import { Context, Effect, Layer } from "effect"
import { Document, isMap, isScalar, isSeq } from "yaml"
import type { ConfigError } from "./ConfigError.js"
import * as Env from "./Env.js"
import * as Flags from "./Flags.js"
import * as internal from "./internal/load.js"
import * as Origin from "./Origin.js"
import { redact } from "./Redact.js"
import type * as Settings from "./Settings.js"

/**
 * A loaded configuration. `JSON.stringify`, `util.inspect` and Effect's loggers show it with
 * secrets redacted; its fields themselves hold the real values.
 *
 * @since 0.1.0
 */
export interface Loaded {
  /** The decoded, validated configuration. */
  readonly settings: Settings.Settings
  /** The same in file form (durations as strings). Holds secrets: print {@link render} instead. */
  readonly encoded: Settings.Encoded
  /** Origin of every leaf, keyed by dotted path (`dwcp.compression.level`); arrays are leaves. */
  readonly provenance: ReadonlyMap<string, Origin.Origin>
  /** The file read, if any. */
  readonly file: string | undefined
  /** Keys set to something whose part is not built yet: accepted, but changing nothing. */
  readonly notes: ReadonlyArray<Note>
}

/**
 * A key that was accepted but is not in effect yet (e.g. `dwcp.consensus.protocol` while no
 * consensus component is built). `path` is the key as written (a design name stays as written).
 *
 * @since 0.2.0
 * @category models
 */
export interface Note {
  readonly path: string
  readonly origin: Origin.Origin
  readonly message: string
}

/**
 * Renders a note on one line: `dwcp.transport.stream_timeout (novacron.yaml:28): accepted, not in effect yet: ...`.
 *
 * @since 0.2.0
 * @category rendering
 */
export const renderNote = (note: Note): string => `${note.path} (${Origin.render(note.origin)}): ${note.message}`

/**
 * Where to load from.
 *
 * @since 0.1.0
 */
export interface Options {
  /** A YAML or JSON file; `--config` in `flags` takes precedence. Without either, defaults only. */
  readonly file?: string | undefined
  /** The environment to read overrides from. Default: `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /** Command-line arguments (without node and script); see {@link Flags.parse}. Default: none. */
  readonly flags?: ReadonlyArray<string> | undefined
}

/**
 * The configuration service.
 *
 * @since 0.1.0
 */
export class NovacronConfig extends Context.Tag("@novacron/config/NovacronConfig")<NovacronConfig, Loaded>() {}

/**
 * Loads and validates. Fails with a `ConfigError` listing every problem.
 *
 * @example
 * ```ts
 * import { Config } from "@novacron/config"
 * import { Effect } from "effect"
 *
 * const loaded = await Effect.runPromise(
 *   Config.load({ file: "novacron.yaml", env: {}, flags: ["--set", "dwcp.compression.level=5"] }),
 * )
 * loaded.settings.dwcp.compression.level // 5
 * ```
 *
 * @since 0.1.0
 */
export const load = (options: Options = {}): Effect.Effect<Loaded, ConfigError> =>
  Effect.suspend(() => {
    const flags = Flags.parse(options.flags ?? [])
    return internal.load({
      file: flags.file ?? options.file,
      env: Env.overrides(options.env ?? process.env),
      flags: flags.overrides,
      flagIssues: flags.issues,
    })
  })

/**
 * A layer that loads the configuration once.
 *
 * @since 0.1.0
 */
export const layer = (options: Options = {}): Layer.Layer<NovacronConfig, ConfigError> =>
  Layer.effect(NovacronConfig, load(options))

/**
 * A layer holding an already loaded configuration (e.g. loaded before boot to read
 * `system.max_concurrency`).
 *
 * @since 0.1.0
 */
export const layerLoaded = (loaded: Loaded): Layer.Layer<NovacronConfig> => Layer.succeed(NovacronConfig, loaded)

/**
 * The ConfigurationLoader as an `@novacron/init` component spec (`config`; a host's boot table
 * places it). Pass a {@link Loaded} to reuse a configuration loaded before boot.
 *
 * @since 0.1.0
 */
export const component = (options: Options | Loaded = {}) =>
  Component.spec({
    name: "config",
    description: "loads and validates novacron.yaml, environment and flags",
    // Keys accepted but not in effect are said at every boot, not silently ignored.
    layer: Layer.tap("settings" in options ? layerLoaded(options) : layer(options), (ctx) =>
      Effect.forEach(Context.get(ctx, NovacronConfig).notes, (n) => Effect.logWarning(renderNote(n)), {
        discard: true,
      }),
    ),
    healthCheck: Effect.map(NovacronConfig, (c) => ({
      status: "healthy" as const,
      details: { file: c.file ?? "(defaults only)" },
    })),
  })

/**
 * Renders the effective configuration as YAML with secrets redacted; with `provenance`, each
 * value carries a comment saying where it came from (`# novacron.yaml:12`, `# env NOVACRON_LOG_LEVEL`).
 * This is what `novacron config print` shows.
 *
 * @since 0.1.0
 */
export const render = (loaded: Loaded, options: { readonly provenance?: boolean } = {}): string => {
  const doc = new Document(redact(loaded.encoded))
  if (options.provenance) {
    const annotate = (node: unknown, path: string): void => {
      if (!isMap(node)) return
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
        const p = path === "" ? key : `${path}.${key}`
        const origin = loaded.provenance.get(p)
        if (isMap(pair.value)) annotate(pair.value, p)
        else if (origin && (isScalar(pair.value) || isSeq(pair.value))) {
          if (isSeq(pair.value)) pair.value.flow = true
          pair.value.comment = ` ${Origin.render(origin)}`
        }
      }
    }
    annotate(doc.contents, "")
  }
  return doc.toString()
}
