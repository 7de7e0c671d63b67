import { parseArgs } from "node:util"
import { Flags } from "@novacron/config"
import { Logging } from "@novacron/logging"
import { Deferred, Effect, Fiber } from "effect"
import { type AgentRun, runAgent } from "./Agent.js"
import { analyze, UsageError } from "./Analyze.js"
import { ExitCode } from "./ExitCode.js"
import { type LoadedNode, loadForCli } from "./NodeConfig.js"

const usage = `usage: novacron-node <command> [options]

commands:
  start [--config FILE] [--set key.path=value ...] [--data-dir DIR] [--node-id ID] [--log-level LEVEL]
        [--listen-address ADDR] [--bind-port N] [--health-check-port N] [--metrics-port N]
        [--dwcp-mode MODE] [--resource-profile minimal|production]
        boot all four phases and run until SIGTERM/SIGINT (a second signal forces exit)
  validate [--config FILE]          check the configuration, print every problem
  config print [--config FILE]      the effective configuration, secrets redacted, with each value's source
  analyze blame|critical-chain|plot [--data-dir DIR] [--json] [-o FILE]
        read the boot record in the data directory (like systemd-analyze)

exit codes: 0 ok, 1 internal error, 2 usage, 3 configuration error, 4 CRITICAL component failure,
            5 timeout (phase or shutdown), 130 forced by a second signal
`

// The configuration's own flags (--config, --set and the named ones) plus the commands' flags.
const options = {
  config: { type: "string", short: "c" },
  set: { type: "string", multiple: true },
  ...(Object.fromEntries(Object.keys(Flags.named).map((k) => [k, { type: "string" }])) as Record<
    string,
    { type: "string" }
  >),
  json: { type: "boolean" },
  output: { type: "string", short: "o" },
  help: { type: "boolean", short: "h" },
} as const

const exit = (code: number): never => {
  process.exitCode = code
  // Let stdout drain before leaving.
  process.stdout.write("", () => process.exit(code))
  return undefined as never
}

const configFlags = new Set(["config", "set", ...Object.keys(Flags.named)])

type Token = {
  kind: string
  name?: string
  rawName?: string
  value?: string | undefined
  inlineValue?: boolean | undefined
}

// The configuration's flags, as given, for the configuration loader; the commands' own are left out.
const configArgs = (tokens: ReadonlyArray<Token>): Array<string> =>
  tokens.flatMap((t) =>
    t.kind === "option" && t.name !== undefined && configFlags.has(t.name) && t.value !== undefined
      ? t.inlineValue
        ? [`${t.rawName}=${t.value}`]
        : [t.rawName!, t.value]
      : [],
  )

const start = async (argv: Array<string>) => {
  const tty = process.stderr.isTTY === true
  const loaded = await loadForCli(argv, tty)
  if (!loaded.ok) {
    process.stderr.write(`${loaded.message}\n`)
    return exit(ExitCode.config)
  }
  const node: LoadedNode = loaded.node
  const stop = Effect.runSync(Deferred.make<void>())
  const run: AgentRun = { stop, state: { nodeId: node.host.nodeId, lifecycle: "booting", startedAt: Date.now() } }
  const program = node
    .provide(
      Effect.flatMap(Logging.LogRouter, (router) =>
        runAgent(node.host, node.components, run, { tty, context: node.context(router) }),
      ),
    )
    .pipe(
      Effect.catchAll((e) =>
        Effect.sync(() => {
          process.stderr.write(`${e.message}\n`)
          return ExitCode.critical
        }),
      ),
    )
  const fiber = Effect.runFork(program)

  let signals = 0
  const onSignal = (signal: NodeJS.Signals) => {
    signals++
    if (signals > 1) {
      process.stderr.write(`\n${signal} again: forcing exit\n`)
      process.exit(ExitCode.forced)
    }
    process.stderr.write(tty ? `\n${signal}: shutting down (again to force)\n` : "")
    // Our own deadline on top of the kernel's, in case shutdown itself wedges the event loop's work.
    setTimeout(() => {
      process.stderr.write(`shutdown did not finish within ${node.host.shutdownTimeout.toString()}: exiting\n`)
      process.exit(ExitCode.timeout)
    }, node.shutdownDeadlineMillis + 2000).unref()
    if (run.state.lifecycle === "ready") Effect.runSync(Deferred.succeed(stop, undefined))
    else Effect.runFork(Fiber.interrupt(fiber))
  }
  process.on("SIGTERM", onSignal)
  process.on("SIGINT", onSignal)

  const result = await Effect.runPromise(Fiber.await(fiber))
  if (result._tag === "Success") return exit(result.value)
  // Interrupted during boot: the kernel rolled back what had started before the fiber ended.
  return exit(signals > 0 ? ExitCode.ok : ExitCode.internal)
}

const main = async () => {
  const parsed = (() => {
    try {
      return parseArgs({ args: process.argv.slice(2), options, allowPositionals: true, strict: true, tokens: true })
    } catch (e) {
      process.stderr.write(`${(e as Error).message}\n\n${usage}`)
      return undefined
    }
  })()
  if (parsed === undefined) return exit(ExitCode.usage)
  const { values: flags, positionals } = parsed
  const [command, sub] = positionals
  const rest = configArgs(parsed.tokens ?? [])
  if (flags.help || command === undefined || command === "help") {
    process.stdout.write(usage)
    return exit(command === undefined && !flags.help ? ExitCode.usage : ExitCode.ok)
  }
  try {
    switch (command) {
      case "start":
        return await start(rest)
      case "validate": {
        const loaded = await loadForCli(rest, false)
        if (!loaded.ok) {
          process.stderr.write(`${loaded.message}\n`)
          return exit(ExitCode.config)
        }
        process.stdout.write(`configuration is valid${flags.config ? ` (${flags.config})` : " (embedded defaults)"}\n`)
        return exit(ExitCode.ok)
      }
      case "config": {
        if (sub !== "print") throw new UsageError(`unknown config command "${sub ?? ""}" (expected: config print)`)
        const loaded = await loadForCli(rest, false)
        if (!loaded.ok) {
          process.stderr.write(`${loaded.message}\n`)
          return exit(ExitCode.config)
        }
        process.stdout.write(`${loaded.node.print(flags.json === true)}\n`)
        return exit(ExitCode.ok)
      }
      case "analyze": {
        if (sub === undefined) throw new UsageError("analyze needs a view: blame, critical-chain or plot")
        const loaded = await loadForCli(rest, false)
        if (!loaded.ok) {
          process.stderr.write(`${loaded.message}\n`)
          return exit(ExitCode.config)
        }
        const dataDir = loaded.node.host.dataDir
        const output = typeof flags.output === "string" ? flags.output : undefined
        process.stdout.write(`${await analyze(dataDir, sub, { json: flags.json === true, output })}\n`)
        return exit(ExitCode.ok)
      }
      default:
        throw new UsageError(`unknown command "${command}"`)
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n\n${usage}`)
      return exit(ExitCode.usage)
    }
    process.stderr.write(`${(e as Error).message}\n`)
    return exit(ExitCode.internal)
  }
}

void main()
