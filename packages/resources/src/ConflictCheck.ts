/**
 * The conflict check: an exclusive lock on the data directory (a lock file holding the owner's
 * pid, created with `O_EXCL`), taken over when its owner is dead and released when the scope
 * closes; and a check that the node's ports are free, naming every one that is taken.
 *
 * @since 0.1.0
 */
import { Component } from "@novacron/init"
import { Context, Data, Effect, Layer, Schema, type Scope } from "effect"
import * as internal from "./internal/lock.js"

/**
 * The settings, named as in the configuration (`system.data_dir`, `network.listen_address`,
 * `network.bind_port`, `system.health_check_port`, `monitoring.metrics_port`). Port 0 is not checked.
 *
 * @since 0.1.0
 */
export const Settings = Schema.Struct({
  data_dir: Schema.optionalWith(Schema.String, { default: () => "./.novacron", exact: true }),
  listen_address: Schema.optionalWith(Schema.String, { default: () => "127.0.0.1", exact: true }),
  /** Where health and metrics listen (`monitoring.listen_address`); loopback unless configured. */
  monitoring_address: Schema.optionalWith(Schema.String, { default: () => "127.0.0.1", exact: true }),
  bind_port: Schema.optionalWith(Schema.Int, { default: () => 7700, exact: true }),
  health_check_port: Schema.optionalWith(Schema.Int, { default: () => 7780, exact: true }),
  metrics_port: Schema.optionalWith(Schema.Int, { default: () => 7781, exact: true }),
})

/**
 * @since 0.1.0
 */
export type Settings = typeof Settings.Type

/**
 * The lock file's name inside the data directory.
 *
 * @since 0.1.0
 */
export const lockFileName = "novacron.lock"

/**
 * Another live process holds the data directory.
 *
 * @since 0.1.0
 */
export class DataDirInUse extends Data.TaggedError("DataDirInUse")<{
  readonly dataDir: string
  readonly lockFile: string
  readonly pid: number
  /** Set when the lock was written on another host (a shared file system): its liveness cannot be checked. */
  readonly host?: string | undefined
}> {
  override get message(): string {
    return this.host === undefined || this.host === ""
      ? `data directory ${this.dataDir} is in use by another agent (pid ${this.pid}); lock file ${this.lockFile}`
      : `data directory ${this.dataDir} is locked by pid ${this.pid} on host ${this.host}; if that agent is gone, delete ${this.lockFile}`
  }
}

/**
 * The lock could not be created or read for another reason (permissions, read-only disk...).
 *
 * @since 0.1.0
 */
export class LockError extends Data.TaggedError("LockError")<{ readonly lockFile: string; readonly reason: string }> {
  override get message(): string {
    const why =
      this.reason === "EACCES" || this.reason === "EPERM"
        ? `permission denied (${this.reason}): run the agent as the data directory's owner, or choose another --data-dir`
        : this.reason === "EROFS"
          ? "read-only file system (EROFS)"
          : this.reason
    return `cannot lock ${this.lockFile}: ${why}`
  }
}

/**
 * One port that is taken, with the setting that asked for it.
 *
 * @since 0.1.0
 */
export interface TakenPort {
  readonly setting: string
  readonly host: string
  readonly port: number
  readonly reason: string
}

const explain = (code: string): string =>
  code === "EADDRINUSE"
    ? "is already in use"
    : code === "EACCES"
      ? "needs privileges (EACCES)"
      : code === "EADDRNOTAVAIL"
        ? "has an address not on this host (EADDRNOTAVAIL)"
        : `cannot be bound (${code})`

/**
 * Some ports are taken (or cannot be bound at all).
 *
 * @since 0.1.0
 */
export class PortsInUse extends Data.TaggedError("PortsInUse")<{ readonly ports: ReadonlyArray<TakenPort> }> {
  override get message(): string {
    return `ports unavailable: ${this.ports.map((p) => `${p.host}:${p.port} (${p.setting}) ${explain(p.reason)}`).join(", ")}`
  }
}

/**
 * A held data-directory lock.
 *
 * @since 0.1.0
 */
export interface DataDirLock {
  readonly dataDir: string
  readonly lockFile: string
  readonly pid: number
  /** The pid of a dead previous owner whose lock was taken over, if any. */
  readonly tookOverFrom: number | undefined
}

/**
 * Takes the data directory's lock for the life of the scope (creating the directory if needed).
 *
 * @example
 * ```ts
 * import { ConflictCheck } from "@novacron/resources"
 * import { Effect } from "effect"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const lock = yield* ConflictCheck.lockDataDir("./.novacron")
 *     // ... the agent runs; the lock file is removed when the scope closes
 *   }),
 * )
 * ```
 *
 * @since 0.1.0
 */
export const lockDataDir = (dataDir: string): Effect.Effect<DataDirLock, DataDirInUse | LockError, Scope.Scope> =>
  Effect.acquireRelease(internal.acquire(dataDir), (lock) => internal.release(lock))

/**
 * Checks that each non-zero port can be bound on `host`; fails naming every port that cannot.
 *
 * @since 0.1.0
 */
export const checkPorts = (
  ports: ReadonlyArray<{ readonly setting: string; readonly host: string; readonly port: number }>,
): Effect.Effect<void, PortsInUse> =>
  Effect.forEach(
    ports.filter((p) => p.port !== 0),
    (p) => internal.probePort(p.host, p.port).pipe(Effect.map((reason) => (reason ? [{ ...p, reason }] : []))),
    { concurrency: "unbounded" },
  ).pipe(
    Effect.flatMap((taken) => {
      const flat = taken.flat()
      return flat.length > 0 ? Effect.fail(new PortsInUse({ ports: flat })) : Effect.void
    }),
  )

/**
 * The conflict check's service: the held lock.
 *
 * @since 0.1.0
 */
export class ConflictCheck extends Context.Tag("@novacron/resources/ConflictCheck")<ConflictCheck, DataDirLock>() {}

/**
 * Options of {@link layer} and {@link component}.
 *
 * @since 0.1.0
 */
export interface Options {
  /**
   * A lock the host already holds (see {@link lockDataDir}): used instead of taking one, and left
   * to the host to release. A host takes it before anything writes into the data directory (the
   * boot record is written at `init_start`, before any component runs).
   */
  readonly held?: DataDirLock | undefined
}

/**
 * Locks the data directory (or checks the held lock), then checks the ports; a lock this layer
 * took is released when its scope closes.
 *
 * @since 0.1.0
 */
export const layer = (
  settings: Settings,
  options: Options = {},
): Layer.Layer<ConflictCheck, DataDirInUse | LockError | PortsInUse> =>
  Layer.scoped(
    ConflictCheck,
    Effect.gen(function* () {
      const held = options.held
      const lock = held === undefined ? yield* lockDataDir(settings.data_dir) : held
      if (held !== undefined && !(yield* internal.stillHeld(held))) {
        return yield* Effect.fail(new LockError({ lockFile: held.lockFile, reason: `no longer holds pid ${held.pid}` }))
      }
      if (held === undefined && lock.tookOverFrom !== undefined) {
        yield* Effect.logWarning(`took over the lock of ${settings.data_dir} left by dead process ${lock.tookOverFrom}`)
      }
      yield* checkPorts([
        { setting: "network.bind_port", host: settings.listen_address, port: settings.bind_port },
        { setting: "system.health_check_port", host: settings.monitoring_address, port: settings.health_check_port },
        { setting: "monitoring.metrics_port", host: settings.monitoring_address, port: settings.metrics_port },
      ])
      return lock
    }),
  )

/**
 * The conflict check as an `@novacron/init` component spec (`conflict-check`; a host's boot table
 * places it).
 *
 * @since 0.1.0
 */
export const component = (settings: Settings, options: Options = {}) =>
  Component.spec({
    name: "conflict-check",
    description: "exclusive data-directory lock and free ports",
    layer: layer(settings, { held: options.held }),
    healthCheck: Effect.flatMap(ConflictCheck, (lock) =>
      internal
        .stillHeld(lock)
        .pipe(
          Effect.map((held) =>
            held
              ? { status: "healthy" as const, details: { lockFile: lock.lockFile, pid: lock.pid } }
              : { status: "unhealthy" as const, message: `lock file ${lock.lockFile} no longer holds pid ${lock.pid}` },
          ),
        ),
    ),
  })
