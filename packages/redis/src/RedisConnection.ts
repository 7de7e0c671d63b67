/**
 * The node's one way to connect to Redis, shared by the cache and the database's Redis backend:
 * the first connect fails fast (a boot must not hang on an unreachable server; the component's
 * own retry decides), a connection that drops later is retried on one `Schedule`, and failures
 * are a typed {@link RedisUnavailable} that never prints the password.
 *
 * @since 0.1.0
 */
import { Chunk, Context, Data, Duration, Effect, Layer, Schedule, type Scope } from "effect"
import { Redis, type RedisOptions } from "ioredis"

/**
 * Redis could not be reached (or the connection failed before it was ready).
 *
 * @since 0.1.0
 * @category errors
 */
export class RedisUnavailable extends Data.TaggedError("RedisUnavailable")<{
  /** The URL as configured; {@link redact} it before showing it. */
  readonly url: string
  readonly cause: unknown
}> {
  override get message(): string {
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `redis at ${redact(this.url)} unreachable: ${cause}`
  }
}

/**
 * The URL with any user and password replaced by `***`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const redact = (url: string): string => url.replace(/\/\/[^@/]*@/, "//***@")

/**
 * Bounds of the reconnect backoff.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReconnectOptions {
  /** First delay; each next one doubles. Default 200 ms. */
  readonly base?: Duration.DurationInput | undefined
  /** Longest delay between two attempts. Default 5 s. */
  readonly max?: Duration.DurationInput | undefined
}

/**
 * The one reconnect schedule: exponential from `base` (200 ms), doubling, at most `max` (5 s)
 * apart, forever (a node waits for its Redis rather than giving up on it).
 *
 * @since 0.1.0
 * @category schedules
 */
export const reconnect = (options: ReconnectOptions = {}): Schedule.Schedule<Duration.Duration> => {
  const max = Duration.decode(options.max ?? "5 seconds")
  return Schedule.exponential(options.base ?? "200 millis").pipe(
    Schedule.modifyDelay((d) => Duration.min(d, max)),
    Schedule.map((d) => Duration.min(d, max)),
  )
}

/**
 * The delay in milliseconds before reconnect attempt `attempt` (1-based) of `schedule`, for
 * ioredis's `retryStrategy`, which asks for a number rather than running a Schedule.
 *
 * @since 0.1.0
 * @category schedules
 */
export const delayOf = (schedule: Schedule.Schedule<unknown>): ((attempt: number) => number) => {
  // The delays settle at the cap within a few steps; 64 of them are computed once.
  const delays = Chunk.toReadonlyArray(
    Effect.runSync(
      Schedule.run(
        Schedule.delays(schedule),
        0,
        Array.from({ length: 64 }, () => undefined),
      ),
    ),
  ).map(Duration.toMillis)
  return (attempt) => delays[Math.min(Math.max(attempt, 1), delays.length) - 1] ?? 0
}

/**
 * How to connect.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * After the first connect, who reconnects a dropped connection: the client on the
   * {@link reconnect} schedule (default), or `"caller"`, for a supervisor that must see each
   * drop (the client then ends with `"end"` and the caller opens a new one on the same schedule).
   */
  readonly reconnect?: ReconnectOptions | "caller" | undefined
  /** Default 5 s. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** A command that gets no reply in this time fails. Default: none. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** Times a command is re-sent across reconnections before it fails. Default 2. */
  readonly maxRetriesPerRequest?: number | undefined
  /** Queue commands while disconnected (default true); `false` fails them at once. */
  readonly offlineQueue?: boolean | undefined
}

/**
 * A connected client, not tied to a Scope: for a supervisor that replaces connections as they
 * drop. Pair with {@link close}; elsewhere use {@link connect}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const open = (url: string, options: Options = {}): Effect.Effect<Redis, RedisUnavailable> =>
  Effect.suspend(() => {
    if (url === "") return Effect.fail(new RedisUnavailable({ url, cause: "no URL configured" }))
    const delay = options.reconnect === "caller" ? undefined : delayOf(reconnect(options.reconnect))
    let ready = false
    const settings: RedisOptions = {
      lazyConnect: true,
      connectTimeout: Duration.toMillis(options.connectTimeout ?? "5 seconds"),
      maxRetriesPerRequest: options.maxRetriesPerRequest ?? 2,
      enableOfflineQueue: options.offlineQueue ?? true,
      // Null until the first connect succeeded: a boot fails fast instead of waiting here.
      retryStrategy: (times) => (ready && delay !== undefined ? delay(times) : null),
    }
    if (options.commandTimeout !== undefined) settings.commandTimeout = Duration.toMillis(options.commandTimeout)
    let client: Redis
    try {
      client = new Redis(url, settings)
    } catch (cause) {
      // ioredis parses the URL in the constructor.
      return Effect.fail(new RedisUnavailable({ url, cause }))
    }
    // connect() rejects with "Connection is closed."; the error event before it says why.
    let why: unknown
    client.on("error", (e) => {
      if (!ready) why = e
    })
    return Effect.tryPromise({
      try: () => client.connect(),
      catch: (cause) => new RedisUnavailable({ url, cause: why ?? cause }),
    }).pipe(
      Effect.tap(() => {
        ready = true
      }),
      Effect.as(client),
      Effect.tapError(() => Effect.sync(() => client.disconnect())),
    )
  })

/**
 * Closes a client: `QUIT` when it is connected, else drops the socket; never fails.
 *
 * @since 0.1.0
 * @category destructors
 */
export const close = (client: Redis): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (client.status === "ready") {
      client.once("end", () => resume(Effect.void))
      client.quit().catch(() => client.disconnect())
      return
    }
    // Connecting or waiting to reconnect: there is no socket whose close would emit "end".
    client.disconnect()
    resume(Effect.void)
  })

/**
 * A connected client that lives as long as the scope.
 *
 * @example
 * ```ts
 * import { RedisConnection } from "@novacron/redis"
 * import { Effect } from "effect"
 *
 * const ping = Effect.scoped(
 *   Effect.flatMap(RedisConnection.connect("redis://127.0.0.1:6379"), (client) => Effect.promise(() => client.ping())),
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect = (url: string, options: Options = {}): Effect.Effect<Redis, RedisUnavailable, Scope.Scope> =>
  Effect.acquireRelease(open(url, options), close)

/**
 * The connected client as a service.
 *
 * @since 0.1.0
 * @category services
 */
export class RedisClient extends Context.Tag("@novacron/redis/RedisClient")<RedisClient, Redis>() {}

/**
 * A Layer holding one connected client, closed when the Layer is released.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (url: string, options: Options = {}): Layer.Layer<RedisClient, RedisUnavailable> =>
  Layer.scoped(RedisClient, connect(url, options))
