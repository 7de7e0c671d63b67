/**
 * The `amst` command line: `amst receive` and `amst send`, with a progress bar.
 *
 * ```sh
 * amst receive --dir ./incoming --host 0.0.0.0 --port 7700 --token-file ./amst.token
 * amst send ./vm.img 10.0.0.2:7700 --token-file ./amst.token --min-streams 4 --max-streams 64
 * ```
 *
 * A receiver on anything but a loopback address needs sender authentication: `--token-file` (a
 * shared secret the sender proves in its HELLO) or `--tls-ca` (client certificates, mutual TLS).
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import { parseArgs } from "node:util"
import cliProgress from "cli-progress"
import { Cause, Effect, Exit, Fiber, Queue, Redacted } from "effect"
import * as Receiver from "./Receiver.js"
import * as Sender from "./Sender.js"
import * as Source from "./Source.js"
import * as TransportSettings from "./TransportSettings.js"

const usage = `usage:
  amst receive --dir DIR [--host 127.0.0.1] [--port 7700] [--once] [--json] [--window BYTES]
            [--token-file F] [--tls-cert F --tls-key F [--tls-ca F]]
  amst send FILE HOST:PORT [--streams N | --min-streams N --max-streams N --initial-streams N]
            [--chunk-size BYTES] [--chunks-per-stream N] [--mode datacenter|internet|hybrid] [--json] [--verbose]
            [--token-file F] [--tls-ca F --servername NAME [--tls-cert F --tls-key F]]
  A receiver on a non-loopback --host needs --token-file or --tls-ca (client certificates).`

/** A token file's first line (a secret shared by sender and receiver). */
const token = async (path: string | undefined) => {
  if (path === undefined) return undefined
  const t = (await readFile(path, "utf8")).split("\n")[0]!.trim()
  if (t.length < 16) throw new Error(`${path}: the token must be at least 16 characters`)
  return Redacted.make(t)
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`
const mbit = (bps: number) => `${((bps * 8) / 1e6).toFixed(1)} Mbit/s`

const receive = async (argv: Array<string>) => {
  const { values } = parseArgs({
    args: argv,
    options: {
      dir: { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "7700" },
      once: { type: "boolean", default: false },
      window: { type: "string" },
      json: { type: "boolean", default: false },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "tls-ca": { type: "string" },
      "token-file": { type: "string" },
    },
  })
  if (!values.dir) throw new Error(usage)
  const tls =
    values["tls-cert"] && values["tls-key"]
      ? {
          cert: await readFile(values["tls-cert"]),
          key: await readFile(values["tls-key"]),
          ...(values["tls-ca"] && { ca: await readFile(values["tls-ca"]) }),
        }
      : undefined
  const secret = await token(values["token-file"])
  const program = Effect.scoped(
    Effect.gen(function* () {
      const rx = yield* Receiver.listen({
        dir: values.dir!,
        host: values.host,
        port: Number(values.port),
        tls,
        token: secret,
        window: values.window ? Number(values.window) : undefined,
      })
      const say = (o: Record<string, unknown>, text: string) => console.log(values.json ? JSON.stringify(o) : text)
      say({ event: "listening", host: rx.host, port: rx.port }, `listening on ${rx.host}:${rx.port}`)
      yield* Effect.fork(
        Effect.forever(
          Effect.flatMap(Queue.take(rx.faults), (f) =>
            Effect.sync(() => console.error(`fault from ${f.remote}: ${f.error.message}`)),
          ),
        ),
      )
      for (;;) {
        const c = yield* Queue.take(rx.completed)
        say(
          { event: "completed", ...c },
          `received ${c.name} (${mib(c.size)}) ${c.integrity} ${c.digest}${c.resumedFrom ? `, resumed at ${mib(c.resumedFrom)}` : ""}`,
        )
        if (values.once) return
      }
    }),
  )
  await run(program)
}

const send = async (argv: Array<string>) => {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      streams: { type: "string" },
      "min-streams": { type: "string" },
      "max-streams": { type: "string" },
      "initial-streams": { type: "string" },
      "chunk-size": { type: "string" },
      "chunks-per-stream": { type: "string" },
      mode: { type: "string" },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
      "tls-ca": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "token-file": { type: "string" },
      servername: { type: "string" },
    },
  })
  const [file, target] = positionals
  const m = target ? /^(.*):(\d+)$/.exec(target) : null
  if (!file || !m) throw new Error(usage)
  const settings = await Effect.runPromise(
    TransportSettings.decode({
      ...(values["min-streams"] && { min_streams: Number(values["min-streams"]) }),
      ...(values["max-streams"] && { max_streams: Number(values["max-streams"]) }),
      ...(values["initial-streams"] && { initial_streams: Number(values["initial-streams"]) }),
      ...(values["chunk-size"] && { chunk_size: Number(values["chunk-size"]) }),
    }),
  )
  const mode = values.mode as Sender.Options["mode"]
  const tls = values["tls-ca"]
    ? {
        ca: await readFile(values["tls-ca"]),
        servername: values.servername ?? m[1],
        ...(values["tls-cert"] &&
          values["tls-key"] && { cert: await readFile(values["tls-cert"]), key: await readFile(values["tls-key"]) }),
      }
    : undefined
  const secret = await token(values["token-file"])
  let bar: cliProgress.SingleBar | undefined
  const program = Effect.scoped(
    Effect.gen(function* () {
      const source = yield* Source.fromFile(file)
      bar = values.json
        ? undefined
        : new cliProgress.SingleBar(
            {
              format: "{bar} {percentage}% | {done}/{size} | {rate} | ETA {eta_formatted} | {streams} streams",
              etaBuffer: 20,
            },
            cliProgress.Presets.shades_classic,
          )
      bar?.start(source.size, 0, { done: mib(0), size: mib(source.size), rate: "-", streams: 0 })
      const r = yield* Sender.send({
        host: m[1]!,
        port: Number(m[2]),
        source,
        settings,
        tls,
        token: secret,
        mode,
        streams: values.streams ? Number(values.streams) : undefined,
        chunksPerStream: values["chunks-per-stream"] ? Number(values["chunks-per-stream"]) : undefined,
        onProgress: (p) => bar?.update(p.bytes, { done: mib(p.bytes), rate: mbit(p.rate), streams: p.streams }),
        onEvent: (e) => {
          if (values.verbose) console.error(JSON.stringify(e))
        },
      })
      return { r, name: source.name }
    }),
  )
  const { r, name } = await run(program).finally(() => bar?.stop())
  if (values.json) console.log(JSON.stringify({ event: "sent", ...r }))
  else
    console.log(
      `sent ${name}: ${mib(r.size)} in ${(r.durationMs / 1000).toFixed(2)} s, ${mbit(r.goodput)}, ` +
        `up to ${r.maxStreamsUsed} streams, ${r.deadStreams} streams lost, ${r.integrity} ${r.digest} (${r.transport.reason})`,
    )
}

/** Runs to completion; Ctrl-C interrupts (closing sockets and persisting receiver progress). */
const run = async <A, E>(program: Effect.Effect<A, E>): Promise<A> => {
  const fiber = Effect.runFork(program)
  const stop = () => Effect.runFork(Fiber.interrupt(fiber))
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
  const exit = await Effect.runPromise(Fiber.await(fiber))
  process.off("SIGINT", stop)
  process.off("SIGTERM", stop)
  if (Exit.isSuccess(exit)) return exit.value
  if (Exit.isInterrupted(exit)) throw new Error("interrupted")
  // One line for the user: the failure's tag and message, not a stack.
  const e = Cause.squash(exit.cause)
  throw new Error(e instanceof Error ? `${(e as { _tag?: string })._tag ?? e.name}: ${e.message}` : String(e))
}

/**
 * Runs the CLI with `argv` (without the node and script paths).
 *
 * @since 0.1.0
 */
export const main = async (argv: Array<string>): Promise<number> => {
  const [cmd, ...rest] = argv
  try {
    if (cmd === "receive") await receive(rest)
    else if (cmd === "send") await send(rest)
    else {
      console.error(usage)
      return 2
    }
    return 0
  } catch (e) {
    console.error((e as Error).message)
    return 1
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main(process.argv.slice(2)).then((code) => process.exit(code))
}
