/**
 * sd_notify(3) for a service run by systemd with `Type=notify`: `READY=1` once the node is READY,
 * `STOPPING=1` when its shutdown starts, `WATCHDOG=1` every half `WATCHDOG_USEC` while it lives,
 * each sent as one datagram to the `NOTIFY_SOCKET` unix socket. Without `NOTIFY_SOCKET` every call
 * does nothing, so the same agent runs under systemd, in a container, or in a terminal.
 *
 * Node has no unix datagram sockets; the datagram goes through `node-unix-socket` (a prebuilt
 * N-API addon, loaded only when a socket is set). It reaches path sockets (`/run/systemd/notify`,
 * what systemd gives system and user services) but pads abstract addresses (`@name`) to their
 * full length, so it cannot reach an abstract socket: such a `NOTIFY_SOCKET` is refused with
 * {@link NotifySocketInvalid} rather than silently sent nowhere.
 *
 * @since 0.1.0
 */
import { Context, Data, Duration, Effect, Layer, Schedule } from "effect"
import { sendDatagram } from "./internal/datagram.js"

/**
 * `NOTIFY_SOCKET`, `WATCHDOG_USEC` or `WATCHDOG_PID` cannot be used.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotifySocketInvalid extends Data.TaggedError("NotifySocketInvalid")<{
  readonly variable: "NOTIFY_SOCKET" | "WATCHDOG_USEC" | "WATCHDOG_PID"
  readonly value: string
  readonly reason: string
}> {
  override get message(): string {
    return `${this.variable}=${JSON.stringify(this.value)}: ${this.reason}`
  }
}

/**
 * A notification could not be sent (no listener on the socket, permission denied, ...).
 *
 * @since 0.1.0
 * @category errors
 */
export class NotifyFailed extends Data.TaggedError("NotifyFailed")<{
  readonly socket: string
  readonly state: string
  readonly cause: unknown
}> {
  override get message(): string {
    const why = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `sd_notify ${this.state.split("\n")[0]} to ${this.socket} failed: ${why}`
  }
}

/**
 * The variables systemd sets for the service.
 *
 * @since 0.1.0
 * @category models
 */
export interface Environment {
  readonly NOTIFY_SOCKET?: string | undefined
  readonly WATCHDOG_USEC?: string | undefined
  readonly WATCHDOG_PID?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Notifier {
  /** The socket notifications go to; `undefined` when not run by systemd (every call is a no-op). */
  readonly socket: string | undefined
  /** How often {@link keepWatchdog} pings: half of `WATCHDOG_USEC`; `undefined` without a watchdog. */
  readonly watchdogInterval: Duration.Duration | undefined
  /** Sends `KEY=value` lines in one datagram. Values must not contain a newline. */
  readonly notify: (fields: Readonly<Record<string, string | number>>) => Effect.Effect<void, NotifyFailed>
  /** `READY=1` (with `STATUS=` when given). */
  readonly ready: (status?: string) => Effect.Effect<void, NotifyFailed>
  /** `STOPPING=1` (with `STATUS=` when given). */
  readonly stopping: (status?: string) => Effect.Effect<void, NotifyFailed>
  /** `WATCHDOG=1`. */
  readonly watchdog: Effect.Effect<void, NotifyFailed>
}

/**
 * The notifier as a service.
 *
 * @since 0.1.0
 * @category services
 */
export class SdNotify extends Context.Tag("@novacron/systemd/SdNotify")<SdNotify, Notifier>() {}

const encode = (fields: Readonly<Record<string, string | number>>): string =>
  Object.entries(fields)
    .map(([k, v]) => `${k}=${String(v).replace(/\n/g, " ")}`)
    .join("\n")

const make = (socket: string | undefined, watchdogInterval: Duration.Duration | undefined): Notifier => {
  const notify = (fields: Readonly<Record<string, string | number>>): Effect.Effect<void, NotifyFailed> => {
    if (socket === undefined) return Effect.void
    const state = encode(fields)
    return Effect.tryPromise({
      try: () => sendDatagram(socket, Buffer.from(state, "utf8")),
      catch: (cause) => new NotifyFailed({ socket, state, cause }),
    })
  }
  const withStatus = (key: string, status: string | undefined) =>
    notify(status === undefined ? { [key]: 1 } : { [key]: 1, STATUS: status })
  return {
    socket,
    watchdogInterval,
    notify,
    ready: (status) => withStatus("READY", status),
    stopping: (status) => withStatus("STOPPING", status),
    watchdog: notify({ WATCHDOG: 1 }),
  }
}

/**
 * A notifier that sends nothing (not run by systemd).
 *
 * @since 0.1.0
 * @category constructors
 */
export const disabled: Notifier = make(undefined, undefined)

/**
 * The notifier the environment describes, following sd_notify(3) and sd_watchdog_enabled(3): no
 * `NOTIFY_SOCKET` (or an empty one) gives {@link disabled}; the watchdog is on when `WATCHDOG_USEC`
 * is set and `WATCHDOG_PID` is unset or this process's pid.
 *
 * @example
 * ```ts
 * import { SdNotify } from "@novacron/systemd"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function* () {
 *   const notifier = yield* SdNotify.fromEnvironment(process.env)
 *   yield* notifier.ready("serving")
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromEnvironment = (
  env: Environment,
  pid: number = process.pid,
): Effect.Effect<Notifier, NotifySocketInvalid> =>
  Effect.suspend(() => {
    const socket = env.NOTIFY_SOCKET
    if (socket === undefined || socket === "") return Effect.succeed(disabled)
    if (socket.startsWith("@"))
      return Effect.fail(
        new NotifySocketInvalid({
          variable: "NOTIFY_SOCKET",
          value: socket,
          reason:
            "abstract sockets are not supported (node-unix-socket pads their address); give systemd a path socket",
        }),
      )
    if (!socket.startsWith("/"))
      return Effect.fail(
        new NotifySocketInvalid({ variable: "NOTIFY_SOCKET", value: socket, reason: "not an absolute socket path" }),
      )
    const usec = env.WATCHDOG_USEC
    if (usec === undefined || usec === "") return Effect.succeed(make(socket, undefined))
    if (!/^[1-9][0-9]*$/.test(usec))
      return Effect.fail(
        new NotifySocketInvalid({
          variable: "WATCHDOG_USEC",
          value: usec,
          reason: "not a positive number of microseconds",
        }),
      )
    const watchdogPid = env.WATCHDOG_PID
    if (watchdogPid !== undefined && watchdogPid !== "") {
      if (!/^[1-9][0-9]*$/.test(watchdogPid))
        return Effect.fail(
          new NotifySocketInvalid({ variable: "WATCHDOG_PID", value: watchdogPid, reason: "not a process id" }),
        )
      // The watchdog is another process's (we were forked by the watched one).
      if (Number(watchdogPid) !== pid) return Effect.succeed(make(socket, undefined))
    }
    return Effect.succeed(make(socket, Duration.micros(BigInt(usec) / 2n)))
  })

/**
 * Sends `WATCHDOG=1` every {@link Notifier.watchdogInterval} for as long as it runs (fork it in
 * the node's scope); a failed ping is logged and the next one tried. Returns at once without a
 * watchdog.
 *
 * @since 0.1.0
 * @category watchdog
 */
export const keepWatchdog = (notifier: Notifier): Effect.Effect<void> => {
  const interval = notifier.watchdogInterval
  if (interval === undefined) return Effect.void
  return notifier.watchdog.pipe(
    Effect.catchAll((e) => Effect.logWarning(e.message).pipe(Effect.annotateLogs({ name: "systemd.watchdog" }))),
    Effect.repeat(Schedule.spaced(interval)),
    Effect.asVoid,
  )
}

/**
 * {@link fromEnvironment} as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (env: Environment, pid?: number): Layer.Layer<SdNotify, NotifySocketInvalid> =>
  Layer.effect(SdNotify, fromEnvironment(env, pid))
