/**
 * The LoggerFactory: an Effect `Logger` writing JSON lines (or a readable form on a terminal) at
 * `log_level` to stdout and, optionally, to a size-rotated file under `data_dir`.
 *
 * Each line holds `timestamp`, `level`, `component`, `message`, then `name`, `duration`,
 * `dependencies` (annotated by the boot kernel) and any other annotations.
 *
 * Two ways to install it:
 * - {@link layer}: replaces the default logger for the effect it is provided to.
 * - {@link routerLayer} around the whole program plus {@link component} in the boot: the router
 *   logs with a default logger until the `logging` component starts, which then swaps in the
 *   configured one (and swaps it back when it stops). This is how the kernel's own logs follow
 *   the configured level and file.
 *
 * @since 0.1.0
 */
import { mkdir } from "node:fs/promises"
import { dirname, resolve } from "node:path"
import { Component } from "@novacron/init"
import { Context, Data, Effect, Layer, Logger, LogLevel, Option, Schema, type Scope } from "effect"
import { createStream } from "rotating-file-stream"
import * as format from "./internal/format.js"
import * as LoggingSettings from "./LoggingSettings.js"

/**
 * The settings: `log_level` and `data_dir` as in `system`, the rest as in the `logging` section.
 *
 * @since 0.1.0
 */
export const Settings = Schema.Struct({
  ...LoggingSettings.SystemLogLevel.fields,
  data_dir: Schema.optionalWith(Schema.String, { default: () => "./.novacron", exact: true }),
  ...LoggingSettings.LoggingSettings.fields,
})

/**
 * @since 0.1.0
 */
export type Settings = typeof Settings.Type

/**
 * Where stdout lines go; defaults to `process.stdout`. Tests pass their own.
 *
 * @since 0.1.0
 */
export interface Output {
  readonly write: (line: string) => unknown
  readonly isTTY?: boolean | undefined
}

/**
 * The log file could not be opened.
 *
 * @since 0.1.0
 */
export class LogFileError extends Data.TaggedError("LogFileError")<{ readonly file: string; readonly reason: string }> {
  override get message(): string {
    return `cannot open log file ${this.file}: ${this.reason}`
  }
}

/**
 * A configured logger.
 *
 * @since 0.1.0
 */
export interface Logging {
  readonly logger: Logger.Logger<unknown, void>
  readonly level: LogLevel.LogLevel
  /** The absolute path of the log file, if any. */
  readonly file: string | undefined
}

/**
 * The configured logger, as a service.
 *
 * @since 0.1.0
 */
export class LoggingService extends Context.Tag("@novacron/logging/Logging")<LoggingService, Logging>() {}

/**
 * Maps a `log_level` setting to an Effect `LogLevel`.
 *
 * @since 0.1.0
 */
export const toLogLevel = (level: Settings["log_level"]): LogLevel.LogLevel =>
  ({ debug: LogLevel.Debug, info: LogLevel.Info, warn: LogLevel.Warning, error: LogLevel.Error })[level]

const stdout: Output = { write: (line) => process.stdout.write(line), isTTY: process.stdout.isTTY }

/**
 * Builds the logger; the file (when configured) is open for the life of the scope, and flushed
 * and closed when it ends.
 *
 * @since 0.1.0
 */
export const make = (settings: Settings, output: Output = stdout): Effect.Effect<Logging, LogFileError, Scope.Scope> =>
  Effect.gen(function* () {
    const level = toLogLevel(settings.log_level)
    const pretty = settings.format === "pretty" || (settings.format === "auto" && output.isTTY === true)
    const colour = pretty && output.isTTY === true
    let file: string | undefined
    let sink: ((line: string) => void) | undefined
    if (settings.file !== "") {
      const path = resolve(settings.data_dir, settings.file)
      file = path
      const stream = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            await mkdir(dirname(path), { recursive: true })
            const name = path.slice(dirname(path).length + 1)
            // With `rotate` (classic logrotate numbering) the generator receives only the index.
            const generator = (index: unknown) => (typeof index === "number" && index > 0 ? `${name}.${index}` : name)
            const s = createStream(generator as (time: number | Date, index?: number) => string, {
              path: dirname(path),
              size: `${settings.max_size}B`,
              rotate: settings.max_files,
            })
            await new Promise<void>((ok, fail) => {
              s.once("open", () => ok())
              s.once("error", fail)
            })
            return s
          },
          catch: (e) => new LogFileError({ file: path, reason: String(e) }),
        }),
        (s) =>
          Effect.async<void>((resume) => {
            s.end(() => resume(Effect.void))
          }),
      )
      // A failing disk must not take the node down with it: report once on stderr.
      let reported = false
      stream.on("error", (e) => {
        if (!reported) process.stderr.write(`log file ${path}: ${String(e)}\n`)
        reported = true
      })
      sink = (line) => {
        stream.write(`${line}\n`)
      }
    }
    const logger = Logger.make<unknown, void>((entry) => {
      if (!LogLevel.greaterThanEqual(entry.logLevel, level)) return
      output.write(`${pretty ? format.pretty(entry, colour) : format.json(entry)}\n`)
      sink?.(format.json(entry))
    })
    return { logger, level, file }
  })

/**
 * Replaces the default logger with the configured one (and lowers Effect's minimum level so
 * `debug` passes) for the effect this layer is provided to; also provides the service.
 *
 * @example
 * ```ts
 * import { Logging } from "@novacron/logging"
 * import { Effect } from "effect"
 *
 * Effect.logInfo("hello").pipe(
 *   Effect.annotateLogs({ component: "demo" }),
 *   Effect.provide(Logging.layer({ log_level: "debug", data_dir: "/tmp/n", format: "json", file: "novacron.log", max_size: 10485760, max_files: 5 })),
 *   Effect.runPromise,
 * )
 * // {"timestamp":"...","level":"info","component":"demo","message":"hello"}
 * ```
 *
 * @since 0.1.0
 */
export const layer = (settings: Settings, output?: Output): Layer.Layer<LoggingService, LogFileError> =>
  Layer.unwrapScoped(
    Effect.map(make(settings, output), (logging) =>
      Layer.mergeAll(
        Layer.succeed(LoggingService, logging),
        Logger.replace(Logger.defaultLogger, logging.logger),
        Logger.minimumLogLevel(logging.level),
      ),
    ),
  )

/**
 * Routes every log of the program to the currently installed logger.
 *
 * @since 0.1.0
 */
export class LogRouter extends Context.Tag("@novacron/logging/LogRouter")<
  LogRouter,
  { current: Logging; readonly swap: (next: Logging) => Effect.Effect<Logging> }
>() {}

/**
 * Installs a router as the program's logger, starting with `initial` settings (stdout only).
 * Put it around the boot and pass the `LogRouter` to the kernel's context so the `logging`
 * component can swap the configured logger in.
 *
 * @since 0.1.0
 */
export const routerLayer = (initial: Partial<Settings> = {}, output?: Output): Layer.Layer<LogRouter, LogFileError> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const first = yield* make(Schema.decodeSync(Settings)({ ...initial, file: "" }), output)
      const router: Context.Tag.Service<LogRouter> = {
        current: first,
        swap: (next) =>
          Effect.sync(() => {
            const previous = router.current
            router.current = next
            return previous
          }),
      }
      const logger = Logger.make<unknown, void>((entry) => router.current.logger.log(entry))
      return Layer.mergeAll(
        Layer.succeed(LogRouter, router),
        Logger.replace(Logger.defaultLogger, logger),
        Logger.minimumLogLevel(LogLevel.All),
      )
    }),
  )

/**
 * The LoggerFactory as an `@novacron/init` component spec (`logging`; a host's boot table places
 * it). When a {@link LogRouter} is in the boot's context, the configured logger replaces
 * the router's for as long as the component runs.
 *
 * @since 0.1.0
 */
export const component = (settings: Settings, options: { readonly output?: Output | undefined } = {}) =>
  Component.spec({
    name: "logging",
    description: "JSON logs to stdout and a rotated file",
    layer: Layer.scoped(
      LoggingService,
      Effect.gen(function* () {
        const logging = yield* make(settings, options.output)
        const router = yield* Effect.serviceOption(LogRouter)
        if (Option.isSome(router)) {
          const previous = yield* router.value.swap(logging)
          yield* Effect.addFinalizer(() => router.value.swap(previous))
        }
        return logging
      }),
    ),
    healthCheck: Effect.map(LoggingService, (l) => ({
      status: "healthy" as const,
      details: { file: l.file ?? "none" },
    })),
  })
