/**
 * The `novacron-node api …` commands: call a node's API (this host's by default) and render the
 * answer as a table, or as JSON with `--json`. The host only hands over the command line, its
 * data directory (for the node CA) and the environment.
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import * as https from "node:https"
import * as path from "node:path"
import { Data, Deferred, Effect } from "effect"
import { defaultPort } from "./ApiSettings.js"

/**
 * A command line that names no valid call: printed with the usage (exit 2 by the host).
 *
 * @since 0.1.0
 * @category errors
 */
export class ApiUsageError extends Data.TaggedError("ApiUsageError")<{ readonly detail: string }> {
  override get message() {
    return this.detail
  }
}

/**
 * The call failed: not reachable, TLS refused, or the API answered an error (its `_tag` and body).
 *
 * @since 0.1.0
 * @category errors
 */
export class ApiCallError extends Data.TaggedError("ApiCallError")<{
  readonly status: number
  readonly detail: string
}> {
  override get message() {
    return this.status === 0 ? this.detail : `HTTP ${this.status}: ${this.detail}`
  }
}

/**
 * The flags the commands read.
 *
 * @since 0.1.0
 * @category models
 */
export interface Flags {
  /** Base URL, default `https://127.0.0.1:7782`. */
  readonly address?: string | undefined
  /** Token; default `NOVACRON_TOKEN` from the environment. */
  readonly token?: string | undefined
  /** CA bundle (PEM); default `<data_dir>/tls/ca.crt`. */
  readonly ca?: string | undefined
  /** Client certificate and key (PEM files) for mTLS. */
  readonly cert?: string | undefined
  readonly key?: string | undefined
  readonly json?: boolean | undefined
  /** `events`: topic filters (`VM`, `VM:web-1`). */
  readonly topic?: ReadonlyArray<string> | undefined
  /** `drain`: give up after this long (`90s`, `10m`, `2h`, or seconds). */
  readonly deadline?: string | undefined
  /** `drain`: VMs moved at once. */
  readonly "max-parallel"?: string | undefined
  /** `migrate`: the target node. */
  readonly to?: string | undefined
  /** `migrate`: draw a progress bar (a terminal); otherwise one line per phase. */
  readonly tty?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category help
 */
export const help = `usage: novacron-node api <command> [ID] [--address URL] [--token T] [--cert FILE --key FILE] [--ca FILE] [--json]
Calls a node's API (default https://127.0.0.1:${defaultPort}); the token comes from --token or NOVACRON_TOKEN,
the CA from --ca or <data_dir>/tls/ca.crt.
  api self             who this node is, and who you are to it
  api members          the peers this node is connected to
  api leader           the state store's leader
  api vms              the VMs of the node
  api vm ID            one VM
  api tasks            the node's durable tasks
  api task ID          one task with its history (every step attempt) and a drain's progress
  api drain NODE [--deadline 30m] [--max-parallel N]
                       mark NODE ineligible and move its VMs away (a task; ask the coordinator)
  api migrate VM --to NODE
                       move a running VM to NODE live, following its progress until it ends
  api migrations       the live migrations this node ran
  api events [--topic VM[:ID]]...
                       follow the event stream (NDJSON with --json) until interrupted`

interface Target {
  readonly base: string
  readonly ca: string | undefined
  readonly cert: string | undefined
  readonly key: string | undefined
  readonly token: string | undefined
}

const readOptional = (
  file: string | undefined,
  required: boolean,
): Effect.Effect<string | undefined, ApiUsageError> => {
  if (file === undefined) return Effect.succeed(undefined)
  const read = Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (e) => new ApiUsageError({ detail: `cannot read ${file}: ${(e as Error).message}` }),
  })
  return required ? read : Effect.orElseSucceed(read, () => undefined)
}

const target = (dataDir: string, flags: Flags, env: Readonly<Record<string, string | undefined>>) =>
  Effect.gen(function* () {
    if ((flags.cert === undefined) !== (flags.key === undefined)) {
      return yield* new ApiUsageError({ detail: "--cert and --key go together" })
    }
    const base = (flags.address ?? `https://127.0.0.1:${defaultPort}`).replace(/\/+$/, "").replace(/\/v1$/, "")
    if (!/^https:\/\//.test(base))
      return yield* new ApiUsageError({ detail: `--address must be an https:// URL, got "${base}"` })
    return {
      base,
      ca: yield* readOptional(flags.ca ?? path.join(dataDir, "tls", "ca.crt"), flags.ca !== undefined),
      cert: yield* readOptional(flags.cert, true),
      key: yield* readOptional(flags.key, true),
      token: flags.token ?? env.NOVACRON_TOKEN,
    } satisfies Target
  })

const request = (
  t: Target,
  route: string,
  onLine?: (line: string) => void,
  post?: { readonly body: unknown } | undefined,
) =>
  Effect.async<unknown, ApiCallError>((resume, signal) => {
    const payload = post === undefined ? undefined : JSON.stringify(post.body)
    const req = https.request(
      `${t.base}${route}`,
      {
        method: post === undefined ? "GET" : "POST",
        ca: t.ca,
        cert: t.cert,
        key: t.key,
        headers: {
          ...(t.token === undefined ? {} : { authorization: `Bearer ${t.token}` }),
          ...(payload === undefined ? {} : { "content-type": "application/json" }),
        },
        signal,
      },
      (res) => {
        let text = ""
        res.setEncoding("utf8")
        res.on("data", (chunk: string) => {
          if (onLine === undefined || (res.statusCode ?? 0) >= 300) {
            text += chunk
            return
          }
          text += chunk
          const lines = text.split("\n")
          text = lines.pop()!
          for (const l of lines) if (l !== "") onLine(l)
        })
        res.on("end", () => {
          const status = res.statusCode ?? 0
          let body: unknown = text
          try {
            body = text === "" ? undefined : JSON.parse(text)
          } catch {}
          if (status >= 300) {
            const b = body as { _tag?: string; reason?: string; message?: string } | undefined
            const detail =
              b?._tag === undefined ? String(text) : `${b._tag}: ${b.reason ?? b.message ?? JSON.stringify(b)}`
            resume(Effect.fail(new ApiCallError({ status, detail })))
          } else resume(Effect.succeed(body))
        })
      },
    )
    req.on("error", (e) => resume(Effect.fail(new ApiCallError({ status: 0, detail: `${t.base}: ${e.message}` }))))
    req.end(payload)
  })

const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`

// One terminal line of a migration's progress: a bar of the bytes sent against the guest's RAM.
const progressLine = (phase: string, p: any): string => {
  const total = Math.max(1, p.total)
  const done = Math.min(1, p.transferred / total)
  const width = 30
  const bar = "#".repeat(Math.round(done * width)).padEnd(width, ".")
  const downtime = p.expectedDowntimeMs === null ? "" : `, downtime ~${p.expectedDowntimeMs}ms`
  return `[${bar}] ${phase.padEnd(10)} ${mib(p.transferred)} sent, ${mib(p.remaining)} left, dirty ${mib(p.dirtyRate)}/s${downtime}   `
}

/**
 * Renders rows as a table with a header, columns padded to their widest cell.
 *
 * @since 0.1.0
 * @category rendering
 */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<unknown>>): string => {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? "-" : String(c))))]
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)))
  return `${cells
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")}\n`
}

const age = (since: number) => `${Math.max(0, Math.round((Date.now() - since) / 1000))}s`

/**
 * Seconds from `90`, `90s`, `10m`, `2h` or `1d`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseSeconds = (flag: string, text: string): Effect.Effect<number, ApiUsageError> => {
  const m = /^(\d+)\s*(s|m|h|d)?$/.exec(text.trim())
  const unit = { s: 1, m: 60, h: 3600, d: 86_400 } as const
  return m === null
    ? Effect.fail(new ApiUsageError({ detail: `--${flag} expects a duration like 90s, 10m or 2h, got "${text}"` }))
    : Effect.succeed(Number(m[1]) * unit[(m[2] ?? "s") as keyof typeof unit])
}

// A step's result as a short phrase: a drain's move says where the VM went and what was passed over.
const stepResult = (result: string | null): string | null => {
  if (result === null) return null
  try {
    const r = JSON.parse(result)
    if (typeof r === "object" && r !== null && typeof r.to === "string") {
      const passed = (r.placement?.excluded ?? []).map((x: any) => `${x.host} ${x.reason}`).join(", ")
      return `to ${r.to} (${r.method}; ${r.placement?.policy ?? "?"}, ${r.placement?.feasible ?? "?"} feasible${passed === "" ? "" : `; passed over ${passed}`})`
    }
    if (Array.isArray(r))
      return r.length === 0 ? "no VMs" : `${r.length} VM(s): ${r.map((v: any) => v.id ?? v).join(", ")}`
  } catch {}
  return result
}

const taskRows = (tasks: ReadonlyArray<any>) =>
  table(
    ["ID", "KIND", "STATE", "NODE", "VM", "UPDATED", "ERROR"],
    tasks.map((x) => [x.id, x.kind, x.state, x.node_id, x.vm_id, `${age(x.updated_at)} ago`, x.error]),
  )

/**
 * Runs one command; succeeds with what to print (`events` prints as it goes and ends when
 * interrupted).
 *
 * @since 0.1.0
 * @category commands
 */
export const run = (
  dataDir: string,
  args: ReadonlyArray<string>,
  flags: Flags,
  env: Readonly<Record<string, string | undefined>> = process.env,
  write: (text: string) => void = (text) => process.stdout.write(text),
): Effect.Effect<string, ApiUsageError | ApiCallError> =>
  Effect.gen(function* () {
    const [command, id] = args
    const t = yield* target(dataDir, flags, env)
    const json = (body: unknown) => `${JSON.stringify(body, null, 2)}\n`
    switch (command) {
      case "self": {
        const b = (yield* request(t, "/v1/agent/self")) as any
        return flags.json
          ? json(b)
          : table(
              ["NODE", "VERSION", "LIFECYCLE", "YOU", "ROLE", "AUTH"],
              [[b.node_id, b.version, b.lifecycle, b.principal.name, b.principal.role, b.principal.method]],
            )
      }
      case "members": {
        const b = (yield* request(t, "/v1/agent/members")) as any
        return flags.json
          ? json(b)
          : table(
              ["NODE", "ADDRESS", "SIDE", "ROLE", "CONNECTED"],
              b.members.map((m: any) => [m.node_id, m.address, m.side, m.role, age(m.since)]),
            )
      }
      case "leader": {
        const b = (yield* request(t, "/v1/status/leader")) as any
        return flags.json ? json(b) : table(["MODE", "ELECTION", "LEADER"], [[b.mode, b.election, b.leader]])
      }
      case "vms": {
        const b = (yield* request(t, "/v1/vms")) as any
        return flags.json
          ? json(b)
          : table(
              ["ID", "STATE", "VCPUS", "MEMORY_MB", "PID", "EXIT"],
              b.vms.map((v: any) => [v.id, v.state, v.vcpus, v.memory_mb, v.pid, v.exit_reason]),
            )
      }
      case "vm": {
        if (id === undefined) return yield* new ApiUsageError({ detail: "api vm needs a VM id" })
        const b = (yield* request(t, `/v1/vms/${encodeURIComponent(id)}`)) as any
        return flags.json
          ? json(b)
          : table(
              ["ID", "STATE", "VCPUS", "MEMORY_MB", "PID", "ACCEL", "QMP"],
              [[b.vm.id, b.vm.state, b.vm.vcpus, b.vm.memory_mb, b.vm.pid, b.vm.accel, b.qmp_status]],
            )
      }
      case "tasks":
      case "task": {
        if (command === "tasks" && id === undefined) {
          const b = (yield* request(t, "/v1/tasks")) as any
          return flags.json ? json(b) : taskRows(b.tasks)
        }
        if (id === undefined) return yield* new ApiUsageError({ detail: "api task needs a task id" })
        const b = (yield* request(t, `/v1/tasks/${encodeURIComponent(id)}`)) as any
        if (flags.json) return json(b)
        const progress =
          b.progress === null
            ? ""
            : `\nprogress: ${b.progress.moved.length} of ${b.progress.total ?? "?"} VMs moved off ${b.progress.node}${
                b.progress.left.length > 0 ? `; left: ${b.progress.left.join(", ")}` : ""
              }\n`
        const placement =
          b.placement === null
            ? ""
            : `\nplacement: ${stepResult(JSON.stringify({ to: b.placement.chosen ?? "no host", method: "placement", placement: b.placement }))}\n`
        return `${taskRows([b])}${progress}${placement}\n${table(
          ["STEP", "ATTEMPT", "OUTCOME", "TOOK", "RESULT"],
          b.history.map((h: any) => [
            h.step,
            h.attempt,
            h.outcome ?? "running",
            h.finished_at === null ? null : `${h.finished_at - h.started_at}ms`,
            h.error ?? stepResult(h.result),
          ]),
        )}`
      }
      case "drain": {
        if (id === undefined) return yield* new ApiUsageError({ detail: "api drain needs a node id" })
        const deadline = flags.deadline === undefined ? undefined : yield* parseSeconds("deadline", flags.deadline)
        const parallel = flags["max-parallel"]
        if (parallel !== undefined && !/^\d+$/.test(parallel))
          return yield* new ApiUsageError({ detail: `--max-parallel expects a whole number, got "${parallel}"` })
        const body = {
          ...(deadline === undefined ? {} : { deadline_s: deadline }),
          ...(parallel === undefined ? {} : { max_parallel: Number(parallel) }),
        }
        const b = (yield* request(t, `/v1/nodes/${encodeURIComponent(id)}/drain`, undefined, { body })) as any
        return flags.json ? json(b) : `${taskRows([b])}follow it with: novacron-node api task ${b.id}\n`
      }
      case "migrations": {
        const b = (yield* request(t, "/v1/migrations")) as any
        return flags.json
          ? json(b)
          : table(
              ["ID", "VM", "FROM", "TO", "STATE", "STARTED", "TOOK"],
              b.migrations.map((m: any) => [
                m.id,
                m.vm_id,
                m.source,
                m.target,
                m.state,
                new Date(m.started_at).toISOString(),
                m.finished_at === null ? null : `${m.finished_at - m.started_at}ms`,
              ]),
            )
      }
      case "migrate": {
        if (id === undefined) return yield* new ApiUsageError({ detail: "migrate needs a VM id" })
        if (flags.to === undefined || flags.to === "")
          return yield* new ApiUsageError({ detail: "migrate needs --to NODE (the target node's id)" })
        const started = (yield* request(t, `/v1/vms/${encodeURIComponent(id)}/migrate`, undefined, {
          body: { target_node: flags.to },
        })) as any
        if (!flags.json) write(`migrating ${id} to ${flags.to} (migration ${started.id})\n`)
        const done = yield* Deferred.make<any, ApiCallError>()
        let lastPhase = ""
        const follow = request(
          t,
          `/v1/event/stream?topic=${encodeURIComponent(`Migration:${started.id}`)}&index=0&heartbeat=5`,
          (line) => {
            const e = JSON.parse(line)
            if (e.type === undefined) return
            if (flags.json) write(`${line}\n`)
            const p = e.payload
            if (e.type === "MigrationCompleted") return void Deferred.unsafeDone(done, Effect.succeed(p))
            if (e.type === "MigrationFailed" || e.type === "MigrationCancelled")
              return void Deferred.unsafeDone(
                done,
                Effect.fail(new ApiCallError({ status: 0, detail: `migration ${started.id}: ${p.error ?? e.type}` })),
              )
            if (flags.json) return
            if (flags.tty === true && p.progress !== null) write(`\r${progressLine(p.phase, p.progress)}`)
            else if (p.phase !== lastPhase) write(`${p.phase}\n`)
            lastPhase = p.phase
          },
        )
        const end = yield* Effect.raceFirst(
          Effect.zipRight(follow, Effect.fail(new ApiCallError({ status: 0, detail: "the event stream ended" }))),
          Deferred.await(done),
        )
        if (flags.json) return ""
        const r = end.result
        return `${flags.tty === true ? "\n" : ""}${table(
          ["VM", "TO", "MODE", "TOTAL", "DOWNTIME", "SENT", "ON THE WIRE", "TERM"],
          [
            [
              id,
              flags.to,
              r?.mode,
              r === null ? null : `${r.totalMs}ms`,
              r?.downtimeMs === null || r === null ? null : `${r.downtimeMs}ms`,
              r === null ? null : mib(r.transferred),
              r === null ? null : mib(r.wireBytes),
              r?.term,
            ],
          ],
        )}`
      }
      case "events": {
        const query = (flags.topic ?? []).map((x) => `topic=${encodeURIComponent(x)}`).join("&")
        yield* request(t, `/v1/event/stream${query === "" ? "" : `?${query}`}`, (line) => {
          if (flags.json) return write(`${line}\n`)
          const e = JSON.parse(line)
          if (e.heartbeat !== undefined) return
          write(
            `${new Date(e.time ?? Date.now()).toISOString()}  ${e.index ?? "-"}  ${e.topic ?? "-"}:${e.key ?? "-"}  ${e.type ?? JSON.stringify(e)}\n`,
          )
        })
        return ""
      }
      default:
        return yield* new ApiUsageError({
          detail: command === undefined ? "api needs a command" : `unknown api command "${command}"`,
        })
    }
  })
