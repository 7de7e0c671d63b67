/**
 * The local admin surface: `vm create|start|stop|kill|list|show|console|capacity|delete` as
 * newline-delimited JSON over a unix socket in the data directory (mode 0600: the agent's user
 * only), until the API server exists. Requests are Schema-decoded and bounded (line length,
 * connections, idle time); every answer is `{"ok":true,"result":...}` or
 * `{"ok":false,"error":{"tag","message"}}`. {@link call} is the client the CLI uses.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as path from "node:path"
import { Data, Duration, Effect, Layer, Runtime, Schema, type Scope } from "effect"
import { VmSpec } from "./Vm.js"
import { VmManager } from "./VmManager.js"

/**
 * One request.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Request = Schema.Union(
  Schema.Struct({ op: Schema.Literal("create"), spec: Schema.encodedSchema(VmSpec) }),
  Schema.Struct({
    op: Schema.Literal("start", "kill", "show", "delete"),
    id: Schema.String,
  }),
  Schema.Struct({
    op: Schema.Literal("stop"),
    id: Schema.String,
    timeout_ms: Schema.optional(Schema.Int.pipe(Schema.between(0, 3_600_000))),
  }),
  Schema.Struct({
    op: Schema.Literal("console"),
    id: Schema.String,
    max_bytes: Schema.optional(Schema.Int.pipe(Schema.between(0, 16 * 1024 * 1024))),
  }),
  Schema.Struct({ op: Schema.Literal("list", "capacity") }),
)

/**
 * @since 0.1.0
 * @category models
 */
export type Request = typeof Request.Type

/**
 * One response.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Response = Schema.Union(
  Schema.Struct({ ok: Schema.Literal(true), result: Schema.Unknown }),
  Schema.Struct({ ok: Schema.Literal(false), error: Schema.Struct({ tag: Schema.String, message: Schema.String }) }),
)

/**
 * @since 0.1.0
 * @category models
 */
export type Response = typeof Response.Type

/**
 * The admin socket's path for a data directory.
 *
 * @since 0.1.0
 * @category constructors
 */
export const socketPath = (dataDir: string): string => path.join(path.resolve(dataDir), "vm-admin.sock")

/**
 * Bounds of the server.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions {
  /** Longest request line (default 256 KiB). */
  readonly maxLineLength?: number | undefined
  /** Concurrent connections (default 16); more are closed at once. */
  readonly maxConnections?: number | undefined
  /** A connection idle this long is closed (default 30 s). */
  readonly idleTimeout?: Duration.DurationInput | undefined
}

const decodeRequest = Schema.decodeUnknownEither(Schema.parseJson(Request))

const failure = (tag: string, message: string): Response => ({ ok: false, error: { tag, message } })

const handle = (
  request: Request,
): Effect.Effect<unknown, { readonly _tag: string; readonly message: string }, VmManager> =>
  Effect.flatMap(VmManager, (m): Effect.Effect<unknown, { readonly _tag: string; readonly message: string }> => {
    switch (request.op) {
      case "create":
        return m.define(request.spec)
      case "start":
        return m.start(request.id)
      case "stop":
        return m.stop(
          request.id,
          request.timeout_ms === undefined ? {} : { timeout: Duration.millis(request.timeout_ms) },
        )
      case "kill":
        return m.kill(request.id)
      case "show":
        return m.status(request.id)
      case "delete":
        return Effect.as(m.remove(request.id), { deleted: request.id })
      case "console":
        return m.console(request.id, request.max_bytes)
      case "list":
        return m.list
      case "capacity":
        return m.capacity
    }
  })

/**
 * Serves the admin socket while the Scope lives; a stale socket file is replaced.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = (file: string, options: ServerOptions = {}): Effect.Effect<void, Error, VmManager | Scope.Scope> =>
  Effect.gen(function* () {
    const runtime = yield* Effect.runtime<VmManager>()
    const maxLine = options.maxLineLength ?? 256 * 1024
    const maxConnections = options.maxConnections ?? 16
    const idleMs = Duration.toMillis(Duration.decode(options.idleTimeout ?? "30 seconds"))
    const answer = (line: string): Promise<Response> => {
      const req = decodeRequest(line)
      if (req._tag === "Left")
        return Promise.resolve(failure("BadRequest", `request does not decode: ${req.left.message}`))
      return Runtime.runPromise(runtime)(
        handle(req.right).pipe(
          Effect.map((result): Response => ({ ok: true, result })),
          Effect.catchAll((e) => Effect.succeed(failure(e._tag, e.message))),
          Effect.catchAllDefect((d) => Effect.succeed(failure("Defect", String(d)))),
        ),
      )
    }
    const open = new Set<net.Socket>()
    const server = net.createServer((socket) => {
      open.add(socket)
      socket.on("close", () => open.delete(socket))
      socket.setEncoding("utf8")
      socket.setTimeout(idleMs, () => socket.destroy())
      socket.on("error", () => socket.destroy())
      let buffer = ""
      let queue = Promise.resolve()
      socket.on("data", (chunk: string) => {
        buffer += chunk
        let nl = buffer.indexOf("\n")
        while (nl >= 0) {
          const line = buffer.slice(0, nl)
          buffer = buffer.slice(nl + 1)
          if (line.trim() !== "") {
            // One request at a time per connection, answered in order.
            queue = queue.then(() =>
              answer(line).then((r) => {
                if (!socket.destroyed) socket.write(`${JSON.stringify(r)}\n`)
              }),
            )
          }
          nl = buffer.indexOf("\n")
        }
        if (buffer.length > maxLine) {
          buffer = ""
          socket.end(`${JSON.stringify(failure("BadRequest", `request line exceeds ${maxLine} characters`))}\n`)
          socket.destroy()
        }
      })
    })
    // Node closes connections beyond this at once.
    server.maxConnections = maxConnections
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          await fs.rm(file, { force: true })
          await new Promise<void>((resolve, reject) => {
            server.once("error", reject)
            server.listen(file, () => resolve())
          })
          await fs.chmod(file, 0o600)
        },
        catch: (e) => new Error(`vm admin socket ${file}: ${e instanceof Error ? e.message : String(e)}`),
      }),
      () =>
        Effect.promise(async () => {
          await new Promise((resolve) => {
            server.close(resolve)
            // close waits for open connections; end them.
            for (const s of open) s.destroy()
          })
          await fs.rm(file, { force: true })
        }),
    )
  })

/**
 * The server as a Layer (what the component adds beside the manager).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (file: string, options?: ServerOptions): Layer.Layer<never, Error, VmManager> =>
  Layer.scopedDiscard(serve(file, options))

/**
 * The admin call failed: transport (no agent, timeout, bad answer) or the manager's error.
 *
 * @since 0.1.0
 * @category errors
 */
export class VmAdminError extends Data.TaggedError("VmAdminError")<{
  /** The manager's error tag (`VmNotFound`, ...), or `Transport` / `BadRequest`. */
  readonly tag: string
  readonly detail: string
}> {
  override get message() {
    return this.detail
  }
}

const decodeResponse = Schema.decodeUnknownEither(Schema.parseJson(Response))

/**
 * Sends one request to the agent's admin socket and returns the result.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { VmAdmin } from "@novacron/vm"
 *
 * const vms = VmAdmin.call(VmAdmin.socketPath("./.novacron"), { op: "list" })
 * Effect.runPromise(vms).then((list) => console.log(list))
 * ```
 *
 * @since 0.1.0
 * @category client
 */
export const call = (
  file: string,
  request: typeof Request.Encoded,
  options: { readonly timeout?: Duration.DurationInput | undefined } = {},
): Effect.Effect<unknown, VmAdminError> =>
  Effect.async<unknown, VmAdminError>((resume) => {
    const timeoutMs = Duration.toMillis(Duration.decode(options.timeout ?? "5 minutes"))
    const socket = net.createConnection({ path: file })
    let buffer = ""
    let done = false
    const finish = (e: Effect.Effect<unknown, VmAdminError>) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resume(e)
    }
    const transport = (detail: string) =>
      Effect.fail(new VmAdminError({ tag: "Transport", detail: `${file}: ${detail}` }))
    const timer = setTimeout(() => finish(transport(`no answer within ${timeoutMs} ms`)), timeoutMs)
    socket.setEncoding("utf8")
    socket.on("connect", () => socket.write(`${JSON.stringify(request)}\n`))
    socket.on("error", (e: NodeJS.ErrnoException) =>
      finish(
        transport(e.code === "ENOENT" || e.code === "ECONNREFUSED" ? `no agent listening (${e.code})` : e.message),
      ),
    )
    socket.on("close", () => finish(transport("connection closed without an answer")))
    socket.on("data", (chunk: string) => {
      buffer += chunk
      const nl = buffer.indexOf("\n")
      if (nl < 0) {
        if (buffer.length > 64 * 1024 * 1024) finish(transport("answer too long"))
        return
      }
      const r = decodeResponse(buffer.slice(0, nl))
      if (r._tag === "Left") return finish(transport(`bad answer: ${r.left.message}`))
      const resp = r.right
      finish(
        resp.ok
          ? Effect.succeed(resp.result)
          : Effect.fail(new VmAdminError({ tag: resp.error.tag, detail: resp.error.message })),
      )
    })
    return Effect.sync(() => finish(Effect.void))
  })
