import * as fs from "node:fs/promises"
import * as https from "node:https"
import * as path from "node:path"
import { type Authorization, CertificateAuthority, Security, SecuritySettings } from "@novacron/security"
import { tempDir } from "@novacron/testing"
import { type Vm, VmError, VmManager } from "@novacron/vm"
import { Context, Effect, Layer, type Scope } from "effect"
import type { Migration, Task } from "../src/Api.js"
import { NotFound } from "../src/ApiError.js"
import * as ApiServer from "../src/ApiServer.js"
import * as ApiSettings from "../src/ApiSettings.js"
import { TaskSource } from "../src/ApiSources.js"
import * as EventLog from "../src/EventLog.js"

export const tokens = {
  reader: "reader-token-0123456789abcdef0123456789abcdef",
  operator: "operator-token-0123456789abcdef0123456789abcd",
  admin: "admin-token-0123456789abcdef0123456789abcdef01",
} as const

export interface Credentials {
  readonly cert: string
  readonly key: string
}

export interface Fixture {
  readonly url: string
  readonly port: number
  readonly ca: string
  readonly certs: Record<Authorization.Role, Credentials>
  readonly foreign: Credentials
  readonly vms: Map<string, Vm.VmRecord>
  readonly log: EventLog.EventLogApi
}

/** An in-memory VM manager: the API is under test here, not QEMU. */
export const memoryVms = (vms: Map<string, Vm.VmRecord>): VmManager.Manager => {
  const get = (id: string) =>
    Effect.suspend(() => {
      const r = vms.get(id)
      return r === undefined ? Effect.fail(new VmError.VmNotFound({ id })) : Effect.succeed(r)
    })
  const set = (r: Vm.VmRecord, patch: Partial<Vm.VmRecord>) => {
    const next = { ...r, ...patch, updated_at: Date.now() }
    vms.set(r.spec.id, next)
    return next
  }
  return {
    define: (spec: Vm.VmSpecInput) =>
      Effect.suspend(() => {
        if (vms.has(spec.id)) return Effect.fail(new VmError.VmAlreadyDefined({ id: spec.id }))
        const record: Vm.VmRecord = {
          spec: { disks: [], nics: [], ...spec } as Vm.VmSpec,
          state: "defined",
          pid: null,
          accel: null,
          term: null,
          exit_reason: null,
          created_at: Date.now(),
          updated_at: Date.now(),
        }
        vms.set(spec.id, record)
        return Effect.succeed(record)
      }),
    start: (id: string) =>
      Effect.flatMap(get(id), (r) =>
        r.state === "running"
          ? Effect.fail(new VmError.VmInvalidState({ id, state: r.state, operation: "start" } as never))
          : Effect.succeed(set(r, { state: "running", pid: 4242, accel: "tcg", term: 1 })),
      ),
    stop: (id: string) =>
      Effect.map(get(id), (r) => ({
        record: set(r, { state: "stopped", pid: null, exit_reason: "powerdown" }),
        method: r.state === "running" ? ("powerdown" as const) : ("already-stopped" as const),
      })),
    kill: (id: string) => Effect.map(get(id), (r) => set(r, { state: "stopped", pid: null, exit_reason: "killed" })),
    remove: (id: string) =>
      Effect.flatMap(get(id), (r) =>
        r.state === "running"
          ? Effect.fail(new VmError.VmInvalidState({ id, state: r.state, operation: "remove" } as never))
          : Effect.sync(() => void vms.delete(id)),
      ),
    status: (id: string) => Effect.map(get(id), (record) => ({ record, qmp_status: null, attached: false })),
    list: Effect.sync(() => [...vms.values()].sort((a, b) => a.spec.id.localeCompare(b.spec.id))),
    console: () => Effect.succeed(""),
    capacity: Effect.die("not used"),
    info: Effect.die("not used"),
  } as unknown as VmManager.Manager
}

const pair = (i: { certPem: string; keyPem: string }): Credentials => ({ cert: i.certPem, key: i.keyPem })

/**
 * A running API on a free loopback port with a node CA, one client certificate per role, one
 * token per role (reader, operator, admin), and the in-memory VM manager.
 */
export const start = (
  authMethod: "mtls" | "token" | "none",
  raw: Record<string, unknown> = {},
  extra: Layer.Layer<never> = Layer.empty,
): Effect.Effect<Fixture, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = yield* tempDir
    const node = { data_dir: dir, node_id: "node-a", listen_address: "127.0.0.1", env: {} }
    const settings = SecuritySettings.decode({
      auth_method: authMethod,
      tokens: Object.entries(tokens).map(([role, token]) => ({
        name: `${role}-token`,
        role,
        sha256: Security.hashToken(token),
      })),
    })
    const tls = yield* CertificateAuthority.ensureNodeTls(settings, node)
    const caIssued = {
      certPem: yield* Effect.promise(() => fs.readFile(path.join(dir, "tls", "ca.crt"), "utf8")),
      keyPem: yield* Effect.promise(() => fs.readFile(path.join(dir, "tls", "ca.key"), "utf8")),
    }
    const certs = {} as Record<Authorization.Role, Credentials>
    for (const role of ["reader", "operator", "admin"] as const) {
      certs[role] = pair(yield* CertificateAuthority.issueClientCertificate(caIssued, `${role}-cert`, role))
    }
    certs.node = pair(yield* CertificateAuthority.issueCertificate(caIssued, "node-b"))
    const otherCa = yield* CertificateAuthority.issueCa("elsewhere")
    const foreign = pair(yield* CertificateAuthority.issueClientCertificate(otherCa, "mallory", "admin"))
    const security = yield* Security.make(settings, node, tls)
    const vms = new Map<string, Vm.VmRecord>()
    const api = ApiSettings.decode({ port: 0, ...raw })
    const ctx = yield* Layer.build(
      ApiServer.layer(api, { pollInterval: "50 millis" }).pipe(
        Layer.provide(
          Layer.mergeAll(
            Layer.succeed(Security.Security, security),
            Layer.succeed(VmManager.VmManager, memoryVms(vms)),
            extra,
          ),
        ),
      ),
    )
    const endpoint = Context.get(ctx, ApiServer.ApiEndpoint)
    const log = Context.get(ctx, EventLog.EventLog)
    return { url: endpoint.url, port: endpoint.port, ca: tls.ca, certs, foreign, vms, log }
  })

export interface Reply {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly text: string
  readonly json: any
}

export interface CallOptions {
  readonly body?: unknown
  readonly raw?: string | Buffer
  readonly token?: string
  readonly header?: "bearer" | "x-novacron-token"
  readonly cert?: Credentials
  readonly headers?: Record<string, string>
  /** Resolve on the response head and close (streams). */
  readonly headersOnly?: boolean
}

/** One HTTPS request, trusting the node CA. */
export const call = (fx: Fixture, method: string, path: string, options: CallOptions = {}): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers }
    const body =
      options.raw !== undefined ? options.raw : options.body === undefined ? undefined : JSON.stringify(options.body)
    if (body !== undefined) headers["content-type"] ??= "application/json"
    if (options.token !== undefined) {
      if (options.header === "x-novacron-token") headers["x-novacron-token"] = options.token
      else headers.authorization = `Bearer ${options.token}`
    }
    const req = https.request(
      `${fx.url}${path}`,
      { method, headers, ca: fx.ca, cert: options.cert?.cert, key: options.cert?.key, agent: false },
      (res) => {
        if (options.headersOnly === true && (res.statusCode ?? 0) < 300) {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: "", json: undefined })
          req.destroy()
          return
        }
        const chunks: Array<Buffer> = []
        res.on("data", (c) => chunks.push(c))
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
        })
      },
    )
    req.on("error", reject)
    req.end(body)
  })

/** An in-memory orchestration: what the host will connect later. */
export const memoryTasks = (): Layer.Layer<TaskSource> => {
  const tasks: Array<Task> = []
  const migrations: Array<Migration> = []
  const task = (kind: string, node: string | null, vm: string | null): Task => {
    const t: Task = {
      id: `task-${tasks.length + 1}`,
      kind,
      state: "pending",
      node_id: node,
      vm_id: vm,
      created_at: Date.now(),
      updated_at: Date.now(),
      error: null,
    }
    tasks.push(t)
    return t
  }
  return Layer.succeed(TaskSource, {
    tasks: Effect.sync(() => [...tasks]),
    task: (id) =>
      Effect.suspend(() => {
        const t = tasks.find((x) => x.id === id)
        return t === undefined
          ? Effect.fail(new NotFound({ kind: "task", id }))
          : Effect.succeed({ ...t, history: [], progress: null, placement: null })
      }),
    migrations: Effect.sync(() => [...migrations]),
    drain: (node) => Effect.sync(() => task("drain", node, null)),
    migrate: (vm, request) =>
      Effect.sync(() => {
        const m: Migration = {
          id: `mig-${migrations.length + 1}`,
          vm_id: vm,
          source: "node-a",
          target: request.target_node ?? "node-b",
          state: "pending",
          started_at: Date.now(),
          finished_at: null,
        }
        migrations.push(m)
        return m
      }),
  })
}
