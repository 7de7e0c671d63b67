import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { CertificateAuthority, Security, SecuritySettings } from "@novacron/security"
import { tempDir } from "@novacron/testing"
import type { Vm } from "@novacron/vm"
import { VmManager } from "@novacron/vm"
import { Context, type Duration, Effect, Exit, Layer, Logger, Scope } from "effect"
import type * as Api from "../src/Api.js"
import * as ApiComponent from "../src/ApiComponent.js"
import { NotFound } from "../src/ApiError.js"
import * as ApiServer from "../src/ApiServer.js"
import * as ApiSettings from "../src/ApiSettings.js"
import { TaskSource } from "../src/ApiSources.js"
import * as GrpcServer from "../src/GrpcServer.js"
import { type Credentials, memoryVms, tokens } from "./helpers.js"

const protoDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "proto")

// The client side knows only the .proto files (as an outside client would), not the generated code.
const definition = protoLoader.loadSync(
  ["novacron/v1/agent.proto", "novacron/v1/vm.proto", "novacron/v1/task.proto", "novacron/v1/event.proto"],
  { includeDirs: [protoDir], keepCase: true, longs: Number, defaults: true, oneofs: true },
)
const v1 = (grpc.loadPackageDefinition(definition) as any).novacron.v1

interface GrpcFixture {
  readonly port: number
  readonly ca: string
  readonly certs: Record<"reader" | "operator" | "admin", Credentials>
  readonly audit: Array<Record<string, unknown>>
}

// The api component (REST + gRPC, as the node boots it) on free loopback ports.
const start = (
  authMethod: "mtls" | "token",
  raw: Record<string, unknown> = {},
  pollInterval: Duration.DurationInput = "50 millis",
  sources: Layer.Layer<never> = Layer.empty,
): Effect.Effect<GrpcFixture, unknown, Scope.Scope> =>
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
    const ca = {
      certPem: yield* Effect.promise(() => fs.readFile(path.join(dir, "tls", "ca.crt"), "utf8")),
      keyPem: yield* Effect.promise(() => fs.readFile(path.join(dir, "tls", "ca.key"), "utf8")),
    }
    const certs = {} as GrpcFixture["certs"]
    for (const role of ["reader", "operator", "admin"] as const) {
      const issued = yield* CertificateAuthority.issueClientCertificate(ca, `${role}-cert`, role)
      certs[role] = { cert: issued.certPem, key: issued.keyPem }
    }
    const security = yield* Security.make(settings, node, tls)
    const vms = new Map<string, Vm.VmRecord>()
    const audit: Array<Record<string, unknown>> = []
    const capture = Logger.make(({ annotations }) => {
      const fields = Object.fromEntries(annotations)
      if (fields.name === "api.audit") audit.push(fields)
    })
    const spec = ApiComponent.component(ApiSettings.decode({ port: 0, grpc_port: 0, ...raw }), { pollInterval })
    const ctx = yield* Layer.build(
      spec.layer.pipe(
        Layer.provide(
          Layer.mergeAll(
            Layer.succeed(Security.Security, security),
            Layer.succeed(VmManager.VmManager, memoryVms(vms)),
            sources,
          ),
        ),
      ),
    ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
    const endpoint = Context.get(ctx, GrpcServer.GrpcEndpoint)
    expect(endpoint.url).toBe(`https://127.0.0.1:${endpoint.port}`)
    expect(endpoint.port).not.toBe(Context.get(ctx, ApiServer.ApiEndpoint).port)
    return { port: endpoint.port, ca: tls.ca, certs, audit }
  })

type Who = { readonly token?: string; readonly cert?: Credentials }

const clients: Array<grpc.Client> = []
const client = (fx: GrpcFixture, service: string, who: Who = {}) => {
  const ssl = grpc.credentials.createSsl(
    Buffer.from(fx.ca),
    who.cert === undefined ? null : Buffer.from(who.cert.key),
    who.cert === undefined ? null : Buffer.from(who.cert.cert),
  )
  const credentials =
    who.token === undefined
      ? ssl
      : grpc.credentials.combineChannelCredentials(
          ssl,
          grpc.credentials.createFromMetadataGenerator((_, done) => {
            const metadata = new grpc.Metadata()
            metadata.set("authorization", `Bearer ${who.token}`)
            done(null, metadata)
          }),
        )
  const c = new v1[service](`127.0.0.1:${fx.port}`, credentials) as grpc.Client & Record<string, any>
  clients.push(c)
  return c
}

const unary = (c: Record<string, any>, method: string, request: object = {}): Promise<any> =>
  new Promise((resolve, reject) =>
    c[method](request, { deadline: Date.now() + 5000 }, (error: grpc.ServiceError | null, reply: unknown) =>
      error === null ? resolve(reply) : reject(error),
    ),
  )

// The status of a call: "OK" or the gRPC code's name, with the message.
const status = (promise: Promise<unknown>): Promise<{ code: string; details: string }> =>
  promise.then(
    () => ({ code: "OK", details: "" }),
    (e: grpc.ServiceError) => ({ code: grpc.status[e.code] ?? String(e.code), details: e.details }),
  )

const closeClients = Effect.addFinalizer(() =>
  Effect.sync(() => {
    for (const c of clients.splice(0)) c.close()
  }),
)

const spec = (id: string) => ({ spec: { id, vcpus: 1, memory_mb: 64 } })

describe("gRPC policy", () => {
  it("every RPC of the served services takes its REST twin's permission", () => {
    const rpcs = GrpcServer.services.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`))
    expect(rpcs.length).toBe(16)
    // The same surface as REST: every route has its RPC but the Prometheus text (a scrape target).
    const twins = new Set(GrpcServer.rpcRoutes.values())
    expect([...ApiServer.routePermissions.keys()].filter((route) => !twins.has(route))).toEqual(["GET /v1/metrics"])
    expect([...GrpcServer.rpcPermissions.keys()].sort()).toEqual([...rpcs].sort())
    for (const [rpc, route] of GrpcServer.rpcRoutes) {
      expect(GrpcServer.rpcPermissions.get(rpc), rpc).toBe(ApiServer.routePermissions.get(route))
    }
    expect(GrpcServer.rpcPermissions.get("novacron.v1.VmService/CreateVm")).toBe("vm:write")
    expect(GrpcServer.rpcPermissions.get("novacron.v1.EventService/Events")).toBe("cluster:read")
  })
})

describe("gRPC over TLS with tokens", () => {
  it.scopedLive("role matrix: no token, reader on a mutation, operator", () =>
    Effect.gen(function* () {
      yield* closeClients
      const fx = yield* start("token")
      const anonymous = client(fx, "VmService")
      const reader = client(fx, "VmService", { token: tokens.reader })
      const operator = client(fx, "VmService", { token: tokens.operator })
      const bogus = client(fx, "VmService", { token: "not-a-token-0123456789abcdef0123456789" })
      const r = yield* Effect.promise(async () => ({
        anonymousList: await status(unary(anonymous, "ListVms")),
        bogusList: await status(unary(bogus, "ListVms")),
        anonymousCreate: await status(unary(anonymous, "CreateVm", spec("web-1"))),
        // Over api.max_body_bytes (1 MiB): a stranger is refused on its headers, the body never read.
        anonymousHuge: await status(unary(anonymous, "CreateVm", spec("x".repeat(2 * 1024 * 1024)))),
        readerList: await status(unary(reader, "ListVms")),
        readerCreate: await status(unary(reader, "CreateVm", spec("web-1"))),
        operatorCreate: await unary(operator, "CreateVm", spec("web-1")),
        readerStart: await status(unary(reader, "StartVm", { id: "web-1" })),
        operatorStart: await unary(operator, "StartVm", { id: "web-1" }),
        operatorStop: await unary(operator, "StopVm", { id: "web-1", timeout_s: 1 }),
        readerDelete: await status(unary(reader, "DeleteVm", { id: "web-1" })),
        operatorDelete: await status(unary(operator, "DeleteVm", { id: "web-1" })),
        after: await unary(reader, "ListVms"),
      }))
      expect(r.anonymousList.code).toBe("UNAUTHENTICATED")
      expect(r.anonymousList.details).toMatch(/no credentials/)
      expect(r.bogusList.code).toBe("UNAUTHENTICATED")
      expect(r.anonymousCreate.code).toBe("UNAUTHENTICATED")
      expect(r.anonymousHuge.code).toBe("UNAUTHENTICATED")
      expect(r.readerList.code).toBe("OK")
      expect(r.readerCreate).toEqual({
        code: "PERMISSION_DENIED",
        details: "reader-token (role reader) lacks the permission vm:write",
      })
      expect(r.operatorCreate.vm).toMatchObject({ id: "web-1", state: "defined", vcpus: 1, memory_mb: 64 })
      expect(r.readerStart.code).toBe("PERMISSION_DENIED")
      expect(r.operatorStart.vm).toMatchObject({ id: "web-1", state: "running", pid: 4242 })
      expect(r.operatorStop).toMatchObject({ method: "powerdown", vm: { state: "stopped" } })
      expect(r.readerDelete.code).toBe("PERMISSION_DENIED")
      expect(r.operatorDelete.code).toBe("OK")
      expect(r.after.vms).toEqual([])
      // One audit line per mutating call, refused ones too; none for reads.
      expect(fx.audit.map((a) => `${a.principal} ${a.path} ${a.status}`)).toEqual([
        "unauthenticated novacron.v1.VmService/CreateVm Unauthenticated",
        "unauthenticated novacron.v1.VmService/CreateVm Unauthenticated",
        "reader-token novacron.v1.VmService/CreateVm PermissionDenied",
        "operator-token novacron.v1.VmService/CreateVm OK",
        "reader-token novacron.v1.VmService/StartVm PermissionDenied",
        "operator-token novacron.v1.VmService/StartVm OK",
        "operator-token novacron.v1.VmService/StopVm OK",
        "reader-token novacron.v1.VmService/DeleteVm PermissionDenied",
        "operator-token novacron.v1.VmService/DeleteVm OK",
      ])
    }),
  )

  it.scopedLive("NOT_FOUND, INVALID_ARGUMENT with the field, FAILED_PRECONDITION, UNAVAILABLE", () =>
    Effect.gen(function* () {
      yield* closeClients
      const fx = yield* start("token")
      const vms = client(fx, "VmService", { token: tokens.operator })
      const taskClient = client(fx, "TaskService", { token: tokens.operator })
      const r = yield* Effect.promise(async () => ({
        missing: await status(unary(vms, "GetVm", { id: "nope" })),
        badId: await status(unary(vms, "GetVm", { id: "no spaces allowed" })),
        noSpec: await status(unary(vms, "CreateVm", {})),
        badVcpus: await status(unary(vms, "CreateVm", { spec: { id: "web-2", vcpus: 0, memory_mb: 64 } })),
        badDisk: await status(
          unary(vms, "CreateVm", { spec: { id: "web-2", vcpus: 1, memory_mb: 64, disks: [{ base: "" }] } }),
        ),
        badTimeout: await status(unary(vms, "StopVm", { id: "web-2", timeout_s: 7200 })),
        created: await status(unary(vms, "CreateVm", spec("web-2"))),
        twice: await status(unary(vms, "CreateVm", spec("web-2"))),
        shown: await unary(vms, "GetVm", { id: "web-2" }),
        tasks: await status(unary(taskClient, "ListTasks")),
      }))
      expect(r.missing).toEqual({ code: "NOT_FOUND", details: "vm nope not found" })
      expect(r.badId.code).toBe("INVALID_ARGUMENT")
      expect(r.badId.details).toMatch(/^id: /)
      expect(r.noSpec).toEqual({ code: "INVALID_ARGUMENT", details: "spec: is missing" })
      expect(r.badVcpus.code).toBe("INVALID_ARGUMENT")
      expect(r.badVcpus.details).toMatch(/^spec\.vcpus: /)
      expect(r.badDisk.code).toBe("INVALID_ARGUMENT")
      expect(r.badDisk.details).toMatch(/^spec\.disks\.0\.base: /)
      expect(r.badTimeout.code).toBe("INVALID_ARGUMENT")
      expect(r.badTimeout.details).toMatch(/^timeout_s: /)
      expect(r.created.code).toBe("OK")
      expect(r.twice.code).toBe("FAILED_PRECONDITION")
      expect(r.shown).toMatchObject({ vm: { id: "web-2" }, spec: { id: "web-2", vcpus: 1, memory_mb: 64 } })
      expect(r.tasks.code).toBe("UNAVAILABLE")
      expect(r.tasks.details).toMatch(/orchestration is not running/)
    }),
  )

  it.scopedLive("a gRPC mutation's event is published at once, not at the next periodic look", () =>
    Effect.gen(function* () {
      yield* closeClients
      // The server's own look for changes every hour: only the mutation itself can publish in time.
      const fx = yield* start("token", {}, "1 hour")
      const vms = client(fx, "VmService", { token: tokens.operator })
      const events = client(fx, "EventService", { token: tokens.reader })
      const got = yield* Effect.promise(async () => {
        const call = events.Events({ topics: ["VM"] }) as grpc.ClientReadableStream<any>
        await new Promise<void>((resolve) => call.once("data", () => resolve()))
        const created = new Promise<any>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("no VmCreated within 3 s")), 3000)
          call.on("data", (m) => {
            if (m.event?.type === "VmCreated") {
              clearTimeout(timer)
              call.cancel()
              resolve(m.event)
            }
          })
          call.on("error", (e: grpc.ServiceError) => {
            if (e.code !== grpc.status.CANCELLED) reject(e)
          })
        })
        await unary(vms, "CreateVm", spec("web-now"))
        return created
      })
      expect(got.key).toBe("web-now")
    }),
  )

  it.scopedLive("Events: streams an event after a mutation, replays from an index, filters by topic", () =>
    Effect.gen(function* () {
      yield* closeClients
      const fx = yield* start("token")
      const vms = client(fx, "VmService", { token: tokens.operator })
      const events = client(fx, "EventService", { token: tokens.reader })
      const collect = (request: object, until: (e: any) => boolean) => {
        const call = events.Events(request) as grpc.ClientReadableStream<any>
        const got: Array<any> = []
        const done = new Promise<Array<any>>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no matching event; got ${JSON.stringify(got)}`)), 5000)
          call.on("data", (m) => {
            got.push(m)
            if (until(m)) {
              clearTimeout(timer)
              call.cancel()
              resolve(got)
            }
          })
          call.on("error", (e: grpc.ServiceError) => {
            if (e.code !== grpc.status.CANCELLED) {
              clearTimeout(timer)
              reject(e)
            }
          })
        })
        return { call, done }
      }
      const r = yield* Effect.promise(async () => {
        // Subscribed before the mutation, on the VM topic of web-3 only.
        const live = collect({ topics: ["VM:web-3"] }, (m) => m.event?.type === "VmCreated")
        // The first message, a heartbeat, says the subscription is live.
        const first = await new Promise<any>((resolve) => live.call.once("data", resolve))
        await unary(vms, "CreateVm", spec("web-4"))
        await unary(vms, "CreateVm", spec("web-3"))
        const liveEvents = await live.done
        // A new stream replaying from index 0 sees both creations.
        const keys = new Set<string>()
        const replay = collect({ topics: ["VM"], index: 0 }, (m) => {
          if (m.event?.type === "VmCreated") keys.add(m.event.key)
          return keys.size === 2
        })
        const replayed = await replay.done
        const badTopic = await new Promise<grpc.ServiceError>((resolve) => {
          const call = events.Events({ topics: ["not a topic"] })
          call.on("error", resolve)
          call.on("data", () => {})
        })
        const anonymous = await new Promise<grpc.ServiceError>((resolve) => {
          const call = client(fx, "EventService").Events({})
          call.on("error", resolve)
          call.on("data", () => {})
        })
        return {
          first,
          liveEvents: liveEvents.filter((m) => m.kind === "event"),
          replayed: replayed.filter((m) => m.kind === "event"),
          badTopic,
          anonymous,
        }
      })
      expect(r.first.kind).toBe("heartbeat")
      expect(r.liveEvents.map((m) => `${m.kind} ${m.event.type} ${m.event.key}`)).toEqual(["event VmCreated web-3"])
      expect(r.liveEvents[0].event.payload.structValue.fields.state.stringValue).toBe("defined")
      expect(r.liveEvents[0].event.index).toBeGreaterThan(0)
      // The poll that saw them may have seen both at once: order by index, not by call.
      expect(r.replayed.map((m) => `${m.event.type} ${m.event.key}`).sort()).toEqual([
        "VmCreated web-3",
        "VmCreated web-4",
      ])
      expect(r.replayed[0].event.index).toBeLessThan(r.replayed[1].event.index)
      expect(grpc.status[r.badTopic.code]).toBe("INVALID_ARGUMENT")
      expect(r.badTopic.details).toMatch(/^topics\.0: /)
      expect(grpc.status[r.anonymous.code]).toBe("UNAUTHENTICATED")
    }),
  )
})

// What orchestration answers, for the RPCs that are its twins of REST routes.
const task: Api.Task = {
  id: "t-1",
  kind: "drain",
  state: "running",
  node_id: "node-b",
  vm_id: null,
  created_at: 1000,
  updated_at: 2000,
  error: null,
}
const detail: Api.TaskDetail = {
  ...task,
  history: [
    { step: "mark", attempt: 1, started_at: 1000, finished_at: 1100, outcome: "ok", error: null, result: null },
    {
      step: "move:web",
      attempt: 2,
      started_at: 1200,
      finished_at: null,
      outcome: null,
      error: null,
      result: '{"to":"c"}',
    },
  ],
  progress: { node: "node-b", total: 2, moved: ["db"], left: ["web"] },
  placement: {
    chosen: "node-c",
    policy: "binpack",
    hosts: 3,
    feasible: 2,
    ranking: [{ host: "node-c", total: 90, scores: { MostAllocated: 90 } }],
    filters: [{ name: "Resources", removed: 1 }],
    excluded: [{ host: "node-b", reason: "draining" }],
  },
}
const migration: Api.Migration = {
  id: "m-1",
  vm_id: "web",
  source: "node-a",
  target: "node-b",
  state: "completed",
  started_at: 1000,
  finished_at: 2000,
}
const orchestration = (asked: Array<string>) =>
  Layer.succeed(TaskSource, {
    tasks: Effect.succeed([task]),
    task: (id) => (id === "t-1" ? Effect.succeed(detail) : Effect.fail(new NotFound({ kind: "task", id }))),
    migrations: Effect.succeed([migration]),
    drain: (node, request) =>
      Effect.sync(() => asked.push(`drain ${node} ${JSON.stringify(request)}`)).pipe(
        Effect.zipRight(
          node === "node-x" ? Effect.fail(new NotFound({ kind: "node", id: node })) : Effect.succeed(task),
        ),
      ),
    migrate: (vm, request) =>
      Effect.sync(() => asked.push(`migrate ${vm} ${JSON.stringify(request)}`)).pipe(
        Effect.as({ ...migration, state: "running", finished_at: null }),
      ),
  }) as unknown as Layer.Layer<never>

describe("gRPC twins of the orchestration routes", () => {
  it.scopedLive("task history, migrations, drain and migrate: same answers, checks and roles as REST", () =>
    Effect.gen(function* () {
      yield* closeClients
      const asked: Array<string> = []
      const fx = yield* start("token", {}, "50 millis", orchestration(asked))
      const operator = client(fx, "TaskService", { token: tokens.operator })
      const reader = client(fx, "TaskService", { token: tokens.reader })
      const vmOperator = client(fx, "VmService", { token: tokens.operator })
      const vmReader = client(fx, "VmService", { token: tokens.reader })

      const shown = yield* Effect.promise(() => unary(reader, "GetTask", { id: "t-1" }))
      expect(shown.task).toMatchObject({ id: "t-1", kind: "drain", node_id: "node-b" })
      expect(shown.history.map((h: any) => [h.step, h.attempt, h.outcome ?? null, h.finished_at_ms ?? null])).toEqual([
        ["mark", 1, "ok", 1100],
        ["move:web", 2, null, null],
      ])
      expect(shown.history[1].result).toBe('{"to":"c"}')
      expect(shown.progress).toMatchObject({ node: "node-b", total: 2, moved: ["db"], left: ["web"] })
      expect(shown.placement).toMatchObject({ chosen: "node-c", policy: "binpack", hosts: 3, feasible: 2 })
      expect(shown.placement.ranking[0]).toMatchObject({ host: "node-c", total: 90, scores: { MostAllocated: 90 } })
      expect(shown.placement.excluded).toEqual([{ host: "node-b", reason: "draining" }])

      const listed = yield* Effect.promise(() => unary(reader, "ListMigrations"))
      expect(listed.migrations).toEqual([
        expect.objectContaining({
          id: "m-1",
          vm_id: "web",
          state: "completed",
          started_at_ms: 1000,
          finished_at_ms: 2000,
        }),
      ])
      expect(listed.index).toBeGreaterThan(0)

      // A reader may neither drain nor migrate; nothing reaches orchestration.
      expect(yield* Effect.promise(() => status(unary(reader, "DrainNode", { node_id: "node-b" })))).toMatchObject({
        code: "PERMISSION_DENIED",
      })
      expect(
        yield* Effect.promise(() => status(unary(vmReader, "MigrateVm", { id: "web", target_node: "node-b" }))),
      ).toMatchObject({ code: "PERMISSION_DENIED" })
      expect(asked).toEqual([])

      // Bad fields are named as REST names them; nothing reaches orchestration either.
      expect(
        yield* Effect.promise(() => status(unary(operator, "DrainNode", { node_id: "no such/node" }))),
      ).toMatchObject({ code: "INVALID_ARGUMENT", details: expect.stringMatching(/^node_id: expected a node id/) })
      expect(
        yield* Effect.promise(() => status(unary(operator, "DrainNode", { node_id: "node-b", deadline_s: 0 }))),
      ).toMatchObject({ code: "INVALID_ARGUMENT", details: expect.stringMatching(/^deadline_s: /) })
      expect(
        yield* Effect.promise(() => status(unary(vmOperator, "MigrateVm", { id: "web", target_node: "a b" }))),
      ).toMatchObject({ code: "INVALID_ARGUMENT", details: expect.stringMatching(/^target_node: /) })
      expect(asked).toEqual([])

      const drained = yield* Effect.promise(() =>
        unary(operator, "DrainNode", { node_id: "node-b", deadline_s: 600, max_parallel: 2 }),
      )
      expect(drained.task).toMatchObject({ id: "t-1", kind: "drain", state: "running" })
      expect(yield* Effect.promise(() => status(unary(operator, "DrainNode", { node_id: "node-x" })))).toMatchObject({
        code: "NOT_FOUND",
        details: "node node-x not found",
      })
      const moved = yield* Effect.promise(() => unary(vmOperator, "MigrateVm", { id: "web", target_node: "node-b" }))
      expect(moved.migration).toMatchObject({ id: "m-1", vm_id: "web", target: "node-b", state: "running" })
      expect(moved.migration.finished_at_ms).toBeUndefined()
      expect(asked).toEqual([
        'drain node-b {"deadline_s":600,"max_parallel":2}',
        "drain node-x {}",
        'migrate web {"target_node":"node-b"}',
      ])
      // One audit line per mutating call, refused ones too.
      expect(fx.audit.filter((a) => a.path === "novacron.v1.TaskService/DrainNode").length).toBe(5)
      expect(fx.audit.filter((a) => a.path === "novacron.v1.VmService/MigrateVm").length).toBe(3)
    }),
  )
})

describe("gRPC over mTLS", () => {
  it.scopedLive("the client certificate's role decides; no certificate, no connection", () =>
    Effect.gen(function* () {
      yield* closeClients
      const fx = yield* start("mtls")
      const r = yield* Effect.promise(async () => ({
        self: await unary(client(fx, "AgentService", { cert: fx.certs.reader }), "Self"),
        readerCreate: await status(unary(client(fx, "VmService", { cert: fx.certs.reader }), "CreateVm", spec("a"))),
        operatorCreate: await status(
          unary(client(fx, "VmService", { cert: fx.certs.operator }), "CreateVm", spec("a")),
        ),
        noCert: await status(unary(client(fx, "VmService"), "ListVms")),
        tokenOnly: await status(unary(client(fx, "VmService", { token: tokens.admin }), "ListVms")),
      }))
      expect(r.self).toMatchObject({
        node_id: "node-a",
        auth_method: "mtls",
        principal: { name: "reader-cert", role: "reader", method: "mtls" },
      })
      expect(r.self.grpc_url).toBe(`https://127.0.0.1:${fx.port}`)
      expect(r.self.api_url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
      expect(r.readerCreate.code).toBe("PERMISSION_DENIED")
      expect(r.operatorCreate.code).toBe("OK")
      // The handshake refuses a client without a certificate: the call never reaches the server.
      expect(r.noCert.code).toBe("UNAVAILABLE")
      expect(r.tokenOnly.code).toBe("UNAVAILABLE")
    }),
  )
})

describe("gRPC limits and shutdown", () => {
  it.scopedLive("a message over max_body_bytes is RESOURCE_EXHAUSTED; its unread stream does not hold shutdown", () =>
    Effect.gen(function* () {
      yield* closeClients
      const scope = yield* Scope.make()
      const fx = yield* Scope.extend(start("token", { shutdown_grace: "300ms" }), scope)
      const operator = client(fx, "VmService", { token: tokens.operator })
      const huge = yield* Effect.promise(() => status(unary(operator, "CreateVm", spec("x".repeat(2 * 1024 * 1024)))))
      expect(huge.code).toBe("RESOURCE_EXHAUSTED")
      // The connection still serves.
      expect((yield* Effect.promise(() => status(unary(operator, "ListVms")))).code).toBe("OK")
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      expect(Date.now() - started).toBeLessThan(3000)
    }),
  )
})
