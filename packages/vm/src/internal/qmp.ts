// The QMP connection engine: node:net callbacks feed Deferreds and a PubSub through a captured
// Runtime. Kept on raw sockets (not @effect/platform Socket) because QMP needs line framing with a
// hard bound and synchronous failure of every pending command when the peer misbehaves.
import * as net from "node:net"
import { Deferred, Duration, Effect, Either, PubSub, Runtime, Schema, type Scope, Stream } from "effect"
import {
  QmpClosed,
  QmpCommandFailed,
  QmpConnectFailed,
  type QmpError,
  QmpProtocolError,
  QmpTimeout,
} from "../QmpError.js"

export const Greeting = Schema.Struct({
  QMP: Schema.Struct({
    version: Schema.Struct({
      qemu: Schema.Struct({ major: Schema.Number, minor: Schema.Number, micro: Schema.Number }),
      package: Schema.String,
    }),
    capabilities: Schema.Array(Schema.String),
  }),
})
export type Greeting = typeof Greeting.Type

export const Event = Schema.Struct({
  event: Schema.String,
  data: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), { default: () => ({}) }),
  timestamp: Schema.Struct({ seconds: Schema.Number, microseconds: Schema.Number }),
})
export type Event = typeof Event.Type

const Id = Schema.Union(Schema.Number, Schema.String)
const Success = Schema.Struct({ return: Schema.Unknown, id: Schema.optional(Id) })
const Failure = Schema.Struct({
  error: Schema.Struct({ class: Schema.String, desc: Schema.String }),
  id: Schema.optional(Id),
})
type Message =
  | { readonly _tag: "greeting"; readonly value: Greeting }
  | { readonly _tag: "event"; readonly value: Event }
  | { readonly _tag: "return"; readonly value: typeof Success.Type }
  | { readonly _tag: "error"; readonly value: typeof Failure.Type }

const decoders = {
  greeting: Schema.decodeUnknownEither(Greeting),
  event: Schema.decodeUnknownEither(Event),
  return: Schema.decodeUnknownEither(Success),
  error: Schema.decodeUnknownEither(Failure),
}

// The key present says which message it is (Schema unions would let `{"QMP": ...}` pass as a reply
// whose missing `return` is undefined); then that message's Schema decodes it.
const decodeMessage = (line: string): Either.Either<Message, string> => {
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch {
    return Either.left("not JSON")
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return Either.left("not a JSON object")
  const tag =
    "QMP" in json
      ? "greeting"
      : "event" in json
        ? "event"
        : "return" in json
          ? "return"
          : "error" in json
            ? "error"
            : undefined
  if (tag === undefined) return Either.left("none of QMP, event, return, error")
  const decoded = decoders[tag](json)
  return decoded._tag === "Left"
    ? Either.left(`bad ${tag}: ${decoded.left.message.replace(/\s+/g, " ")}`)
    : Either.right({ _tag: tag, value: decoded.right } as Message)
}

export interface Options {
  /** Bound of one line from QEMU in characters; a longer one is a protocol error (default 1 Mi). */
  readonly maxLineLength?: number | undefined
  /** Connect + greeting + capabilities (default 5 s). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Default per-command timeout (default 10 s). */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** Events buffered per subscriber before the oldest are dropped (default 1024). */
  readonly eventBuffer?: number | undefined
}

export interface Client {
  readonly socket: string
  readonly greeting: Greeting
  readonly execute: (
    command: string,
    args?: Readonly<Record<string, unknown>>,
    options?: { readonly timeout?: Duration.DurationInput | undefined },
  ) => Effect.Effect<unknown, QmpError>
  readonly events: Stream.Stream<Event>
  /** Completes (with the reason) when the connection ends. */
  readonly closed: Effect.Effect<QmpClosed | QmpProtocolError>
  /** Whether the connection is still up. */
  readonly isOpen: Effect.Effect<boolean>
}

type Pending = { readonly command: string; readonly deferred: Deferred.Deferred<unknown, QmpError> }

const preview = (line: string) => (line.length > 80 ? `${line.slice(0, 80)}…` : line)

export const connect = (path: string, options: Options = {}): Effect.Effect<Client, QmpError, Scope.Scope> =>
  Effect.gen(function* () {
    const maxLine = options.maxLineLength ?? 1024 * 1024
    const connectTimeout = Duration.decode(options.connectTimeout ?? "5 seconds")
    const commandTimeout = Duration.decode(options.commandTimeout ?? "10 seconds")
    const runtime = yield* Effect.runtime<never>()
    const run = Runtime.runSync(runtime)
    const events = yield* Effect.acquireRelease(PubSub.sliding<Event>(options.eventBuffer ?? 1024), PubSub.shutdown)
    const greeting = yield* Deferred.make<Greeting, QmpError>()
    const closed = yield* Deferred.make<QmpClosed | QmpProtocolError>()
    const pending = new Map<number, Pending>()
    let nextId = 1
    let ended: QmpClosed | QmpProtocolError | undefined

    const sock = yield* Effect.acquireRelease(
      Effect.sync(() => net.createConnection({ path })),
      (s) =>
        Effect.sync(() => {
          end(new QmpClosed({ socket: path, detail: "client closed" }))
          s.destroy()
        }),
    )

    // Ends the connection once: every waiter fails with the same reason.
    const end = (reason: QmpClosed | QmpProtocolError) => {
      if (ended !== undefined) return
      ended = reason
      sock.destroy()
      for (const p of pending.values()) run(Deferred.fail(p.deferred, reason))
      pending.clear()
      run(Deferred.fail(greeting, reason))
      run(Deferred.succeed(closed, reason))
    }

    let buffer = ""
    let connected = false
    sock.setEncoding("utf8")
    sock.on("connect", () => {
      connected = true
    })
    sock.on("error", (err: NodeJS.ErrnoException) => {
      if (!connected) {
        run(Deferred.fail(greeting, new QmpConnectFailed({ socket: path, reason: err.code ?? err.message })))
        ended = new QmpClosed({ socket: path, detail: `connect failed: ${err.code ?? err.message}` })
        run(Deferred.succeed(closed, ended))
      } else end(new QmpClosed({ socket: path, detail: err.code ?? err.message }))
    })
    sock.on("close", () => end(new QmpClosed({ socket: path, detail: "peer closed the socket" })))
    sock.on("data", (chunk: string) => {
      buffer += chunk
      let nl = buffer.indexOf("\n")
      while (nl >= 0 && ended === undefined) {
        const line = buffer.slice(0, nl).trim()
        buffer = buffer.slice(nl + 1)
        if (line.length > maxLine) {
          return end(
            new QmpProtocolError({ socket: path, detail: `line of ${line.length} characters exceeds ${maxLine}` }),
          )
        }
        if (line !== "") handle(line)
        nl = buffer.indexOf("\n")
      }
      if (buffer.length > maxLine) {
        end(new QmpProtocolError({ socket: path, detail: `line exceeds ${maxLine} characters without a newline` }))
      }
    })

    const handle = (line: string) => {
      const decoded = decodeMessage(line)
      if (decoded._tag === "Left") {
        return end(
          new QmpProtocolError({ socket: path, detail: `not a QMP message (${decoded.left}): ${preview(line)}` }),
        )
      }
      if (decoded.right._tag === "greeting") {
        run(Deferred.succeed(greeting, decoded.right.value))
        return
      }
      if (decoded.right._tag === "event") {
        run(PubSub.publish(events, decoded.right.value))
        return
      }
      const msg = decoded.right.value
      // A reply to a command that already timed out (or carries no id of ours) is dropped.
      const id = typeof msg.id === "number" ? msg.id : undefined
      const p = id === undefined ? undefined : pending.get(id)
      if (p === undefined || id === undefined) return
      pending.delete(id)
      if ("error" in msg) {
        run(
          Deferred.fail(
            p.deferred,
            new QmpCommandFailed({ socket: path, command: p.command, class: msg.error.class, desc: msg.error.desc }),
          ),
        )
      } else run(Deferred.succeed(p.deferred, msg.return))
    }

    const send = (command: string, args: Readonly<Record<string, unknown>> | undefined, timeout: Duration.Duration) =>
      Effect.suspend(() => {
        if (ended !== undefined) return Effect.fail(ended)
        const id = nextId++
        return Effect.flatMap(Deferred.make<unknown, QmpError>(), (d) => {
          pending.set(id, { command, deferred: d })
          sock.write(
            `${JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id })}\n`,
          )
          return Deferred.await(d).pipe(
            Effect.timeoutFail({
              duration: timeout,
              onTimeout: () => new QmpTimeout({ socket: path, command, timeoutMs: Duration.toMillis(timeout) }),
            }),
            Effect.ensuring(Effect.sync(() => pending.delete(id))),
          )
        })
      })

    const hello = yield* Deferred.await(greeting).pipe(
      Effect.timeoutFail({
        duration: connectTimeout,
        onTimeout: () =>
          new QmpTimeout({ socket: path, command: "greeting", timeoutMs: Duration.toMillis(connectTimeout) }),
      }),
    )
    yield* send("qmp_capabilities", undefined, connectTimeout)

    return {
      socket: path,
      greeting: hello,
      execute: (command, args, opts) =>
        send(command, args, opts?.timeout === undefined ? commandTimeout : Duration.decode(opts.timeout)),
      events: Stream.fromPubSub(events),
      closed: Deferred.await(closed),
      isOpen: Effect.map(Deferred.isDone(closed), (done) => !done),
    } satisfies Client
  })
