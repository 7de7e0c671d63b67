/**
 * The `novacron-node vm …` commands: parse their arguments into one admin-socket request, send it to
 * the running agent and render the answer for a terminal (or as JSON). The host only hands over its
 * data directory and the command line.
 *
 * @since 0.1.0
 */
import { Data, Effect } from "effect"
import type { VmRecord } from "./Vm.js"
import * as VmAdmin from "./VmAdmin.js"

/**
 * A `vm` command line that names no valid request: printed with the usage (exit 2 by the host).
 *
 * @since 0.1.0
 * @category errors
 */
export class VmUsageError extends Data.TaggedError("VmUsageError")<{ readonly detail: string }> {
  override get message() {
    return this.detail
  }
}

/**
 * The flags the `vm` commands read (strings as the command line gives them).
 *
 * @since 0.1.0
 * @category models
 */
export interface Flags {
  readonly vcpus?: string | undefined
  readonly memory?: string | undefined
  readonly disk?: ReadonlyArray<string> | undefined
  readonly hostfwd?: ReadonlyArray<string> | undefined
  readonly kernel?: string | undefined
  readonly initrd?: string | undefined
  readonly append?: string | undefined
  readonly timeout?: string | undefined
  readonly json?: boolean | undefined
}

/**
 * The help text of `novacron-node vm`.
 *
 * @since 0.1.0
 * @category help
 */
export const help = `usage: novacron-node vm <command> [ID] [options] [--data-dir DIR]
Talks to the running agent on this host through its admin socket (<data_dir>/vm-admin.sock).
  vm create ID --vcpus N --memory MB [--disk BASE[:SIZE_MB]]... [--hostfwd tcp::2222-:22]...
               [--kernel FILE [--initrd FILE] [--append "console=ttyS0 ..."]]
                       define a VM: each disk is a qcow2 overlay on BASE (BASE is not written)
  vm start ID          start it (refused when the host lacks capacity or another node owns it)
  vm stop ID [--timeout 30]
                       ACPI power-down, then quit after the timeout (seconds), then kill
  vm kill ID           stop it at once
  vm list              every VM with its state
  vm show ID           one VM: state, pid, accelerator, exit reason
  vm console ID        the tail of its serial console
  vm capacity          what this host can still run
  vm delete ID         remove a stopped VM and its overlays
--json prints the agent's answer as JSON.`

const int = (name: string, value: string | undefined): Effect.Effect<number | undefined, VmUsageError> => {
  if (value === undefined) return Effect.succeed(undefined)
  const n = Number(value)
  return Number.isInteger(n) && n >= 0
    ? Effect.succeed(n)
    : Effect.fail(new VmUsageError({ detail: `--${name} expects a whole number, got "${value}"` }))
}

const disk = (arg: string): Effect.Effect<{ base: string; size_mb?: number }, VmUsageError> => {
  // BASE[:SIZE_MB]; a base path may itself hold ':' only before the last one.
  const at = arg.lastIndexOf(":")
  if (at <= 0 || !/^\d+$/.test(arg.slice(at + 1))) return Effect.succeed({ base: arg })
  return Effect.succeed({ base: arg.slice(0, at), size_mb: Number(arg.slice(at + 1)) })
}

/**
 * The admin request a command line names.
 *
 * @since 0.1.0
 * @category parsing
 */
export const request = (
  args: ReadonlyArray<string>,
  flags: Flags,
): Effect.Effect<typeof VmAdmin.Request.Encoded, VmUsageError> =>
  Effect.gen(function* () {
    const [sub, id, extra] = args
    const needId = (op: string) =>
      id === undefined
        ? Effect.fail(new VmUsageError({ detail: `vm ${op} needs the VM's ID` }))
        : extra !== undefined
          ? Effect.fail(new VmUsageError({ detail: `vm ${op} takes one ID, got also "${extra}"` }))
          : Effect.succeed(id)
    const noId = (op: string) =>
      id === undefined ? Effect.void : Effect.fail(new VmUsageError({ detail: `vm ${op} takes no ID, got "${id}"` }))
    switch (sub) {
      case "create": {
        const vmId = yield* needId("create")
        const vcpus = yield* int("vcpus", flags.vcpus)
        const memory = yield* int("memory", flags.memory)
        if (vcpus === undefined || memory === undefined)
          return yield* new VmUsageError({ detail: "vm create needs --vcpus N and --memory MB" })
        if (flags.kernel === undefined && (flags.initrd !== undefined || flags.append !== undefined))
          return yield* new VmUsageError({ detail: "--initrd and --append need --kernel" })
        const disks = yield* Effect.forEach(flags.disk ?? [], disk)
        return {
          op: "create" as const,
          spec: {
            id: vmId,
            vcpus,
            memory_mb: memory,
            disks,
            nics: flags.hostfwd === undefined ? [] : [{ kind: "user" as const, hostfwd: [...flags.hostfwd] }],
            ...(flags.kernel === undefined
              ? {}
              : {
                  boot: {
                    kernel: flags.kernel,
                    ...(flags.initrd === undefined ? {} : { initrd: flags.initrd }),
                    ...(flags.append === undefined ? {} : { append: flags.append }),
                  },
                }),
          },
        }
      }
      case "stop": {
        const vmId = yield* needId("stop")
        const seconds = yield* int("timeout", flags.timeout)
        return seconds === undefined
          ? { op: "stop" as const, id: vmId }
          : { op: "stop" as const, id: vmId, timeout_ms: seconds * 1000 }
      }
      case "start":
      case "kill":
      case "show":
      case "delete":
        return { op: sub, id: yield* needId(sub) }
      case "console":
        return { op: "console" as const, id: yield* needId("console") }
      case "list":
      case "capacity":
        yield* noId(sub)
        return { op: sub }
      default:
        return yield* new VmUsageError({
          detail: `unknown vm command "${sub ?? ""}" (expected: create, start, stop, kill, list, show, console, capacity, delete)`,
        })
    }
  })

const row = (r: VmRecord) =>
  [
    r.spec.id.padEnd(20),
    r.state.padEnd(9),
    String(r.spec.vcpus).padStart(5),
    `${r.spec.memory_mb}`.padStart(9),
    (r.pid === null ? "-" : String(r.pid)).padStart(8),
    (r.accel ?? "-").padEnd(5),
    r.exit_reason ?? "",
  ]
    .join("  ")
    .trimEnd()

const header = ["ID".padEnd(20), "STATE".padEnd(9), "VCPUS", "MEMORY_MB", "     PID", "ACCEL", "REASON"].join("  ")

/**
 * How an answer reads on a terminal.
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (req: typeof VmAdmin.Request.Encoded, result: unknown): string => {
  // The answer was decoded against the admin protocol by the client; its shape follows the op.
  switch (req.op) {
    case "list": {
      const list = result as ReadonlyArray<VmRecord>
      return list.length === 0 ? "no VMs defined\n" : `${[header, ...list.map(row)].join("\n")}\n`
    }
    case "create":
    case "start":
    case "kill":
      return `${row(result as VmRecord)}\n`
    case "stop": {
      const r = result as { record: VmRecord; method: string }
      return `${r.record.spec.id}: ${r.record.state} (${r.method})\n`
    }
    case "delete":
      return `${req.id}: deleted\n`
    case "console":
      return String(result)
    default:
      return `${JSON.stringify(result, null, 2)}\n`
  }
}

/**
 * Runs one `vm` command against the agent whose data directory is `dataDir` and returns what to print.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { VmCommand } from "@novacron/vm"
 *
 * const out = VmCommand.run("./.novacron", ["list"], {})
 * Effect.runPromise(out).then((text) => process.stdout.write(text))
 * ```
 *
 * @since 0.1.0
 * @category commands
 */
export const run = (
  dataDir: string,
  args: ReadonlyArray<string>,
  flags: Flags,
): Effect.Effect<string, VmUsageError | VmAdmin.VmAdminError> =>
  Effect.gen(function* () {
    const req = yield* request(args, flags)
    const result = yield* VmAdmin.call(VmAdmin.socketPath(dataDir), req)
    return flags.json === true ? `${JSON.stringify(result, null, 2)}\n` : render(req, result)
  })
