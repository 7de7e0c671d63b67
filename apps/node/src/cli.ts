import { parseArgs } from "node:util"
import { ApiCommand } from "@novacron/api"
import { Cluster } from "@novacron/cluster"
import { Config, ConfigError, Flags, Origin } from "@novacron/config"
import { BootAnalyze, BootPlan } from "@novacron/init"
import { Logging } from "@novacron/logging"
import { VmCommand } from "@novacron/vm"
import { Cause, Clock, Console, Deferred, Effect, Either, Exit } from "effect"
import { durationMillis, makeState, runAgent } from "./Agent.js"
import { ExitCode } from "./ExitCode.js"
import { loadNode, problems } from "./NodeConfig.js"
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
      --stop-vms-on-shutdown   vm.stop_on_shutdown: stop the VMs (ACPI power-down) when the agent stops;
                               without it they keep running and the next agent adopts them
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
    name: "vm",
    usage:
      "  vm create|start|stop|kill|list|show|console|capacity|delete [ID]\n        the VMs of the agent running on this host (see `vm --help`)\n  vm migrate ID --to NODE\n        move a running VM to another node live, with a progress bar (through the API: token or --cert)",
    help: `${VmCommand.help}\n`,
  },
  {
    name: "api",
    usage:
      "  api self|members|leader|vms|vm|tasks|task|drain|migrate|migrations|events [ID]\n        call a node's API (see `api --help`)",
    help: `${ApiCommand.help}\n`,
  },
  {
    name: "cluster",
    usage:
      "  cluster init | token create|list|revoke ID | join TOKEN | cert issue NAME\n        form a cluster: one CA, join tokens that pin it, API client certificates (see `cluster --help`)",
    help: `usage: novacron-node cluster <init | token create|list|revoke ID | join TOKEN | cert issue NAME> [--data-dir DIR] [--node-id ID]

On the first node (the seed):
  cluster init                     keep this node's CA as the cluster CA, print a first join token
  cluster token create [--uses N] [--ttl 24h]
                                   another join token (cluster.token_uses, cluster.token_ttl by default)
  cluster token list               tokens with their status, uses and the nodes they joined
  cluster token revoke ID          a token can no longer be used
The seed serves joins while it runs (\`start\`) on cluster.join_port (default 7790).

On the seed, for people and tools calling the API with mutual TLS:
  cluster cert issue NAME --role reader|operator|admin [--out DIR] [--days 365] [--force]
                                   a client certificate of the cluster CA (CN=NAME, the role in its
                                   OU), written as NAME.crt and NAME.key (0600) in DIR; an existing
                                   file is kept unless --force

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
  "stop-vms-on-shutdown": { type: "boolean" },
  output: { type: "string", short: "o" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
  // vm create / stop
  vcpus: { type: "string" },
  memory: { type: "string" },
  disk: { type: "string", multiple: true },
  hostfwd: { type: "string", multiple: true },
  kernel: { type: "string" },
  initrd: { type: "string" },
  append: { type: "string" },
  timeout: { type: "string" },
  // api …
  address: { type: "string" },
  token: { type: "string" },
  ca: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  topic: { type: "string", multiple: true },
  deadline: { type: "string" },
  "max-parallel": { type: "string" },
  to: { type: "string" },
  // cluster token create / join / cert issue
  uses: { type: "string" },
  ttl: { type: "string" },
  force: { type: "boolean" },
  role: { type: "string" },
  out: { type: "string" },
  days: { type: "string" },
} as const

/** A bad command line: printed with the usage, exit 2. */
class UsageError extends Error {}

const exit = (code: number): never => {
  process.exitCode = code
  // Let stdout drain before leaving.
  process.stdout.write("", () => process.exit(code))
  return undefined as never
}

/** The configuration of a one-shot command (validate, config, analyze, cluster). */
const loadOnce = (argv: ReadonlyArray<string>) => Effect.runPromise(Effect.either(loadNode(argv, false)))

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
  const loaded = await loadOnce(argv)
  if (Either.isLeft(loaded)) {
    process.stderr.write(`${ConfigError.format(loaded.left)}\n`)
    return exit(ExitCode.config)
  }
  const { host } = loaded.right
  const result = await Effect.runPromise(Effect.either(loaded.right.plan))
  if (Either.isLeft(result)) {
    process.stderr.write(`${result.left.message}\n`)
    return exit(ExitCode.internal)
  }
  const { plan, notes } = result.right
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

/**
 * SIGTERM and SIGINT while the program runs: the first completes `signal` (the agent interrupts
 * its boot, or shuts down once READY) and arms our deadline on top of the kernel's shutdown
 * timeout, in case shutdown wedges the event loop's work; a second forces the exit (130).
 */
const onSignals = (signal: Deferred.Deferred<NodeJS.Signals>, deadlineMillis: number, tty: boolean, timeout: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const handler = (name: NodeJS.Signals) => {
        if (Effect.runSync(Deferred.isDone(signal))) {
          process.stderr.write(`\n${name} again: forcing exit\n`)
          process.exit(ExitCode.forced)
        }
        process.stderr.write(tty ? `\n${name}: shutting down (again to force)\n` : "")
        setTimeout(() => {
          process.stderr.write(`shutdown did not finish within ${timeout}: exiting\n`)
          process.exit(ExitCode.timeout)
        }, deadlineMillis + 2000).unref()
        Deferred.unsafeDone(signal, Effect.succeed(name))
      }
      process.on("SIGTERM", handler)
      process.on("SIGINT", handler)
      return handler
    }),
    (handler) =>
      Effect.sync(() => {
        process.off("SIGTERM", handler)
        process.off("SIGINT", handler)
      }),
  )

/**
 * Runs the program as the main fiber, like `NodeRuntime.runMain` from @effect/platform-node: its
 * result is the exit code, a defect is printed and exits 1. Ours because the signals belong to the
 * program (see {@link onSignals}), which decides between interrupting its boot and shutting down.
 */
const runMain = (program: Effect.Effect<ExitCode>) =>
  Effect.runFork(program).addObserver((result) => {
    if (Exit.isSuccess(result)) return exit(result.value)
    if (Cause.isInterruptedOnly(result.cause)) return exit(ExitCode.ok)
    process.stderr.write(`internal error: ${Cause.pretty(result.cause)}\n`)
    return exit(ExitCode.internal)
  })

/**
 * systemd's notification variables, taken out of the environment (as sd_notify's
 * `unset_environment`), so the processes the agent starts (QEMU) neither inherit nor use them.
 */
const takeSystemdEnvironment = () => {
  const env = {
    NOTIFY_SOCKET: process.env.NOTIFY_SOCKET,
    WATCHDOG_USEC: process.env.WATCHDOG_USEC,
    WATCHDOG_PID: process.env.WATCHDOG_PID,
  }
  delete process.env.NOTIFY_SOCKET
  delete process.env.WATCHDOG_USEC
  delete process.env.WATCHDOG_PID
  return env
}

/** `start`: from the command line to READY and back to an exit code, one Effect program. */
const start = (argv: Array<string>) => {
  const tty = process.stderr.isTTY === true
  return runMain(
    Effect.gen(function* () {
      const startedAt = yield* Clock.currentTimeMillis
      const node = yield* loadNode(argv, tty)
      const signal = yield* Deferred.make<NodeJS.Signals>()
      const state = yield* makeState
      yield* onSignals(signal, node.shutdownDeadlineMillis, tty, node.host.shutdownTimeout.toString())
      const systemd = takeSystemdEnvironment()
      return yield* node.provide(
        Effect.flatMap(Logging.LogRouter, (router) =>
          runAgent(
            node.host,
            node.components,
            { signal, state, startedAt },
            { tty, context: node.context(router), systemd },
          ),
        ),
      )
    }).pipe(
      Effect.scoped,
      Effect.catchTags({
        ConfigError: (e) => Effect.as(Console.error(ConfigError.format(e)), ExitCode.config),
        LogFileError: (e) => Effect.as(Console.error(e.message), ExitCode.critical),
      }),
    ),
  )
}

/** How many positional arguments each command takes after its name. */
const positionalsOf: Readonly<Record<string, number>> = {
  start: 0,
  validate: 0,
  config: 1,
  analyze: 1,
  version: 0,
  cluster: 3,
  vm: 2,
  api: 2,
}

/** `cluster …`: the cluster package's commands, with this node's configuration. */
const cluster = async (
  args: ReadonlyArray<string>,
  flags: { uses?: string; ttl?: string; force?: boolean; role?: string; out?: string; days?: string },
  rest: Array<string>,
) => {
  const [sub, action, arg] = args
  const loaded = await loadOnce(rest)
  if (Either.isLeft(loaded)) {
    process.stderr.write(`${ConfigError.format(loaded.left)}\n`)
    return exit(ExitCode.config)
  }
  const { host } = loaded.right
  const settings = loaded.right.config.settings.cluster
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
      case "cert": {
        if (action !== "issue" || arg === undefined)
          throw new UsageError("cluster cert needs: issue NAME --role reader|operator|admin [--out DIR] [--days N]")
        if (flags.role === undefined) throw new UsageError("cluster cert issue needs --role reader|operator|admin")
        const days = flags.days === undefined ? undefined : Number(flags.days)
        return Cluster.certCommand({
          dataDir: host.dataDir,
          name: arg,
          role: flags.role,
          out: flags.out,
          days,
          force: flags.force === true,
        })
      }
      default:
        throw new UsageError(`unknown cluster command "${sub ?? ""}" (expected: init, token, join, cert)`)
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

/** `vm …`: the vm package's commands, against the agent whose data directory the configuration names. */
const vm = async (args: ReadonlyArray<string>, flags: VmCommand.Flags, rest: Array<string>) => {
  const loaded = await loadOnce(rest)
  if (Either.isLeft(loaded)) {
    process.stderr.write(`${ConfigError.format(loaded.left)}\n`)
    return exit(ExitCode.config)
  }
  const result = await Effect.runPromise(Effect.either(VmCommand.run(loaded.right.host.dataDir, args, flags)))
  if (result._tag === "Right") {
    process.stdout.write(result.right)
    return exit(ExitCode.ok)
  }
  if (result.left._tag === "VmUsageError") {
    process.stderr.write(`${result.left.message}\n\n${VmCommand.help}\n`)
    return exit(ExitCode.usage)
  }
  process.stderr.write(`${result.left.tag === "Transport" ? "" : `${result.left.tag}: `}${result.left.message}\n`)
  // The agent refused (not found, capacity, owned elsewhere) or is not reachable.
  return exit(ExitCode.internal)
}

/** `api …`: the api package's commands, against this host's API unless --address says otherwise. */
const api = async (args: ReadonlyArray<string>, flags: ApiCommand.Flags, rest: Array<string>) => {
  const loaded = await loadOnce(rest)
  if (Either.isLeft(loaded)) {
    process.stderr.write(`${ConfigError.format(loaded.left)}\n`)
    return exit(ExitCode.config)
  }
  const port = loaded.right.config.settings.api.port
  const address = flags.address ?? `https://127.0.0.1:${port}`
  const result = await Effect.runPromise(
    Effect.either(ApiCommand.run(loaded.right.host.dataDir, args, { ...flags, address })),
  )
  if (result._tag === "Right") {
    process.stdout.write(result.right)
    return exit(ExitCode.ok)
  }
  process.stderr.write(`${result.left.message}\n`)
  if (result.left._tag === "ApiUsageError") process.stderr.write(`\n${ApiCommand.help}\n`)
  return exit(result.left._tag === "ApiUsageError" ? ExitCode.usage : ExitCode.internal)
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
  // A switch for the host's shutdown unit; the setting is the vm package's.
  if (flags["stop-vms-on-shutdown"] === true) rest.push("--set", "vm.stop_on_shutdown=true")
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
      case "vm":
        // A live migration goes through the API (it runs on two agents and reports as it goes).
        if (positionals[1] === "migrate")
          return await api(["migrate", ...positionals.slice(2)], { ...flags, tty: process.stdout.isTTY }, rest)
        return await vm(positionals.slice(1), flags, rest)
      case "api":
        return await api(positionals.slice(1), flags, rest)
      case "start":
        if (flags["dry-run"] === true) return await dryRun(rest, flags.json === true)
        start(rest)
        return
      case "validate": {
        const loaded = await loadOnce(rest)
        const source = flags.config ?? null
        if (flags.json === true) {
          // Machine-readable: one JSON document on stdout either way; the exit code says which.
          const notes = Either.isRight(loaded)
            ? loaded.right.config.notes.map((n) => ({
                path: n.path,
                message: n.message,
                source: Origin.render(n.origin),
              }))
            : []
          process.stdout.write(
            `${JSON.stringify({ valid: Either.isRight(loaded), config: source, problems: Either.isLeft(loaded) ? problems(loaded.left) : [], notes }, null, 2)}\n`,
          )
          return exit(Either.isRight(loaded) ? ExitCode.ok : ExitCode.config)
        }
        if (Either.isLeft(loaded)) {
          process.stderr.write(`${ConfigError.format(loaded.left)}\n`)
          return exit(ExitCode.config)
        }
        process.stdout.write(`configuration is valid${flags.config ? ` (${flags.config})` : " (embedded defaults)"}\n`)
        // Keys accepted but not in effect yet: said, never silently ignored.
        for (const note of loaded.right.config.notes) process.stdout.write(`  note: ${Config.renderNote(note)}\n`)
        return exit(ExitCode.ok)
      }
      case "config": {
        if (sub !== "print") throw new UsageError(`unknown config command "${sub ?? ""}" (expected: config print)`)
        const loaded = await loadOnce(rest)
        if (Either.isLeft(loaded)) {
          process.stderr.write(`${ConfigError.format(loaded.left)}\n`)
          return exit(ExitCode.config)
        }
        process.stdout.write(`${loaded.right.print(flags.json === true)}\n`)
        return exit(ExitCode.ok)
      }
      case "analyze": {
        if (sub === undefined) throw new UsageError("analyze needs a view: blame, critical-chain or plot")
        const loaded = await loadOnce(rest)
        if (Either.isLeft(loaded)) {
          process.stderr.write(`${ConfigError.format(loaded.left)}\n`)
          return exit(ExitCode.config)
        }
        const dataDir = loaded.right.host.dataDir
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
