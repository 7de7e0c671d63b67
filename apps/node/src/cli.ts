import { parseArgs } from "node:util"
import { Cluster } from "@novacron/cluster"
import { Config, Flags, Origin } from "@novacron/config"
import { BootAnalyze, BootPlan } from "@novacron/init"
import { Logging } from "@novacron/logging"
import { Cause, Deferred, Effect, Fiber } from "effect"
import { type AgentRun, durationMillis, runAgent } from "./Agent.js"
import { ExitCode } from "./ExitCode.js"
import { type LoadedNode, loadForCli } from "./NodeConfig.js"
import * as Version from "./Version.js"

// Each command's line(s) in the overview and its own help (`<command> --help`). A new command
// adds an entry here and a case in `main`.
const commands: ReadonlyArray<{ readonly name: string; readonly usage: string; readonly help?: string }> = [
  {
    name: "start",
    usage: `  start [options]                    boot all four phases and run until SIGTERM/SIGINT`,
    help: `usage: novacron-node start [--config FILE] [--set key.path=value ...] [options]

Boots the node's components in four phases (pre-init, core, services, post-init) and runs until
SIGTERM or SIGINT, then shuts down newest first; a second signal forces the exit (130).

options (each sets a configuration key; --set reaches any key):
  -c, --config FILE            YAML configuration file (default: embedded defaults)
      --set key.path=value     any key, repeatable; flags win over the environment and the file
      --data-dir DIR           system.data_dir (created 0700 if missing; locked while the agent runs)
      --node-id ID             system.node_id
      --log-level LEVEL        system.log_level: debug, info, warn, error
      --listen-address ADDR    network.listen_address (the cluster listener only)
      --bind-port N            network.bind_port
      --health-check-port N    system.health_check_port (/healthz, /readyz, /status)
      --metrics-port N         monitoring.metrics_port (/metrics)
      --dwcp-mode MODE         dwcp.forced_mode
      --resource-profile P     system.resource_profile: minimal or production
      --dry-run                print the boot plan (phases, each component's criticality, level and
                               dependencies, the critical chain) and exit; nothing is started
      --json                   with --dry-run: the plan as JSON

Health and metrics listen on 127.0.0.1 unless monitoring.listen_address says otherwise.
`,
  },
  { name: "validate", usage: "  validate [--config FILE] [--json]  check the configuration, print every problem" },
  {
    name: "config",
    usage:
      "  config print [--config FILE] [--json]\n        the effective configuration, secrets redacted, with each value's source",
  },
  {
    name: "analyze",
    usage:
      "  analyze blame|critical-chain|plot [--data-dir DIR] [--json] [-o FILE]\n        read the boot record in the data directory (like systemd-analyze)",
  },
  { name: "version", usage: "  version                            the agent's version (also --version)" },
  {
    name: "cluster",
    usage:
      "  cluster init | token create|list|revoke ID | join TOKEN\n        form a cluster: one CA, join tokens that pin it (see `cluster --help`)",
    help: `usage: novacron-node cluster <init | token create|list|revoke ID | join TOKEN> [--data-dir DIR] [--node-id ID]

On the first node (the seed):
  cluster init                     keep this node's CA as the cluster CA, print a first join token
  cluster token create [--uses N] [--ttl 24h]
                                   another join token (cluster.token_uses, cluster.token_ttl by default)
  cluster token list               tokens with their status, uses and the nodes they joined
  cluster token revoke ID          a token can no longer be used
The seed serves joins while it runs (\`start\`) on cluster.join_port (default 7790).

On every other node, before its first start:
  cluster join TOKEN [--force]     fetch this node's certificate from the seed (the token pins the
                                   seed's CA; nothing is sent to a server that shows another CA) and
                                   print the start command; --force moves other TLS material aside

Each command reads the configuration like \`start\` (--config, --set, --data-dir, --node-id).
`,
  },
]

const usage = `usage: novacron-node <command> [options]   (novacron-node <command> --help for a command's own)

commands:
${commands.map((c) => c.usage).join("\n")}

exit codes: 0 ok, 1 internal error, 2 usage, 3 configuration error (also an unusable data directory),
            4 CRITICAL component failure, 5 timeout (phase or shutdown), 130 forced by a second signal
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
  "dry-run": { type: "boolean" },
  output: { type: "string", short: "o" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
  // cluster token create / join
  uses: { type: "string" },
  ttl: { type: "string" },
  force: { type: "boolean" },
} as const

/** A bad command line: printed with the usage, exit 2. */
class UsageError extends Error {}

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

/** `start --dry-run`: the boot table applied to this configuration, printed; no data directory, no socket. */
const dryRun = async (argv: Array<string>, json: boolean) => {
  const loaded = await loadForCli(argv, false)
  if (!loaded.ok) {
    process.stderr.write(`${loaded.message}\n`)
    return exit(ExitCode.config)
  }
  const { host } = loaded.node
  const result = await Effect.runPromiseExit(loaded.node.plan)
  if (result._tag === "Failure") {
    process.stderr.write(
      `${Cause.squash(result.cause) instanceof Error ? (Cause.squash(result.cause) as Error).message : Cause.pretty(result.cause)}\n`,
    )
    return exit(ExitCode.internal)
  }
  const { plan, notes } = result.value
  if (json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          node_id: host.nodeId,
          phases: plan.phases.map((p) => ({
            phase: p.phase,
            timeout_ms: durationMillis(host.phaseTimeouts?.[p.phase] ?? 0),
            components: p.components.map((c) => ({
              name: c.name,
              criticality: c.criticality,
              level: c.level,
              dependencies: c.dependencies,
              expected_ms: c.expectedMillis,
            })),
          })),
          critical_chain: { path: plan.criticalChain.path, expected_ms: plan.criticalChain.expectedMillis },
          notes,
        },
        null,
        2,
      )}\n`,
    )
    return exit(ExitCode.ok)
  }
  process.stdout.write(
    `boot plan of node ${host.nodeId} (dry run: nothing started)\n\n${BootPlan.render(plan, { phaseTimeouts: host.phaseTimeouts })}\n${notes.map((n) => `note: ${n}\n`).join("")}`,
  )
  return exit(ExitCode.ok)
}

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
  if (signals > 0 && Cause.isInterruptedOnly(result.cause)) return exit(ExitCode.ok)
  process.stderr.write(`internal error: ${Cause.pretty(result.cause)}\n`)
  return exit(ExitCode.internal)
}

/** How many positional arguments each command takes after its name. */
const positionalsOf: Readonly<Record<string, number>> = {
  start: 0,
  validate: 0,
  config: 1,
  analyze: 1,
  version: 0,
  cluster: 3,
}

/** `cluster …`: the cluster package's commands, with this node's configuration. */
const cluster = async (
  args: ReadonlyArray<string>,
  flags: { uses?: string; ttl?: string; force?: boolean },
  rest: Array<string>,
) => {
  const [sub, action, arg] = args
  const loaded = await loadForCli(rest, false)
  if (!loaded.ok) {
    process.stderr.write(`${loaded.message}\n`)
    return exit(ExitCode.config)
  }
  const { host } = loaded.node
  const settings = loaded.node.config.settings.cluster
  const command = (() => {
    switch (sub) {
      case "init":
        if (action !== undefined) throw new UsageError(`cluster init takes no argument, got "${action}"`)
        return Cluster.initCommand({
          dataDir: host.dataDir,
          nodeId: host.nodeId,
          listenAddress: host.listenAddress,
          settings,
        })
      case "token": {
        if (action === "create") {
          const uses = flags.uses === undefined ? undefined : Number(flags.uses)
          return Cluster.tokenCommand({
            dataDir: host.dataDir,
            settings,
            action: { _tag: "create", uses, ttl: flags.ttl },
          })
        }
        if (action === "list")
          return Cluster.tokenCommand({ dataDir: host.dataDir, settings, action: { _tag: "list" } })
        if (action === "revoke" && arg !== undefined)
          return Cluster.tokenCommand({ dataDir: host.dataDir, settings, action: { _tag: "revoke", id: arg } })
        throw new UsageError("cluster token needs create, list or revoke ID")
      }
      case "join":
        if (action === undefined)
          throw new UsageError(
            "cluster join needs the TOKEN printed by cluster init or cluster token create on the seed",
          )
        return Cluster.joinCommand({
          token: action,
          dataDir: host.dataDir,
          nodeId: host.nodeId,
          ipAddresses:
            host.listenAddress === "0.0.0.0" || host.listenAddress === "::" ? undefined : [host.listenAddress],
          force: flags.force === true,
        })
      default:
        throw new UsageError(`unknown cluster command "${sub ?? ""}" (expected: init, token, join)`)
    }
  })()
  const result = await Effect.runPromiseExit(
    (command as Effect.Effect<string, { readonly message: string }>).pipe(
      Effect.provide(Logging.routerLayer({ log_level: "warn", format: "auto", data_dir: host.dataDir })),
    ),
  )
  if (result._tag === "Success") {
    process.stdout.write(result.value)
    return exit(ExitCode.ok)
  }
  const failure = Cause.failureOption(result.cause)
  process.stderr.write(`${failure._tag === "Some" ? failure.value.message : Cause.pretty(result.cause)}\n`)
  return exit(failure._tag === "Some" ? ExitCode.config : ExitCode.internal)
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
  if (flags.version) {
    process.stdout.write(`${Version.describe}\n`)
    return exit(ExitCode.ok)
  }
  if (command === "help" && sub !== undefined) {
    const help = commands.find((c) => c.name === sub)?.help
    process.stdout.write(help ?? usage)
    return exit(ExitCode.ok)
  }
  if (flags.help || command === undefined || command === "help") {
    const help = commands.find((c) => c.name === command)?.help
    process.stdout.write(help ?? usage)
    return exit(command === undefined && !flags.help ? ExitCode.usage : ExitCode.ok)
  }
  try {
    const allowed = positionalsOf[command]
    if (allowed !== undefined && positionals.length - 1 > allowed)
      throw new UsageError(
        `unexpected argument${positionals.length - 1 - allowed > 1 ? "s" : ""} after "${[command, ...positionals.slice(1, 1 + allowed)].join(" ")}": ${positionals
          .slice(1 + allowed)
          .map((p) => JSON.stringify(p))
          .join(" ")} (options start with --)`,
      )
    switch (command) {
      case "version":
        process.stdout.write(`${Version.describe}\n`)
        return exit(ExitCode.ok)
      case "cluster":
        return await cluster(positionals.slice(1), flags, rest)
      case "start":
        return flags["dry-run"] === true ? await dryRun(rest, flags.json === true) : await start(rest)
      case "validate": {
        const loaded = await loadForCli(rest, false)
        const source = flags.config ?? null
        if (flags.json === true) {
          // Machine-readable: one JSON document on stdout either way; the exit code says which.
          const notes = loaded.ok
            ? loaded.node.config.notes.map((n) => ({
                path: n.path,
                message: n.message,
                source: Origin.render(n.origin),
              }))
            : []
          process.stdout.write(
            `${JSON.stringify({ valid: loaded.ok, config: source, problems: loaded.ok ? [] : loaded.problems, notes }, null, 2)}\n`,
          )
          return exit(loaded.ok ? ExitCode.ok : ExitCode.config)
        }
        if (!loaded.ok) {
          process.stderr.write(`${loaded.message}\n`)
          return exit(ExitCode.config)
        }
        process.stdout.write(`configuration is valid${flags.config ? ` (${flags.config})` : " (embedded defaults)"}\n`)
        // Keys accepted but not in effect yet: said, never silently ignored.
        for (const note of loaded.node.config.notes) process.stdout.write(`  note: ${Config.renderNote(note)}\n`)
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
        const result = await Effect.runPromise(
          Effect.either(BootAnalyze.analyze(dataDir, sub, { json: flags.json === true, output })),
        )
        if (result._tag === "Left") {
          if (result.left._tag === "UnknownView") throw new UsageError(result.left.message)
          process.stderr.write(`${result.left.message}\n`)
          return exit(ExitCode.internal)
        }
        process.stdout.write(`${result.right}\n`)
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
