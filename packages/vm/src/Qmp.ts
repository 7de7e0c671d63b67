/**
 * A QMP client: the QEMU Machine Protocol on a unix socket (newline-delimited JSON). Connecting reads
 * the greeting and negotiates `qmp_capabilities`; commands carry an `id` and are matched to their
 * replies in any order; asynchronous events are a `Stream`. Every line is bounded and Schema-decoded:
 * a peer that sends garbage or an endless line gets the connection closed with `QmpProtocolError`,
 * one that hangs gets `QmpTimeout`.
 *
 * @since 0.1.0
 */
import { type Duration, Effect, Schema, type Scope } from "effect"
import * as internal from "./internal/qmp.js"
import { type QmpError, QmpProtocolError } from "./QmpError.js"

/**
 * The greeting QEMU sends on connect.
 *
 * @since 0.1.0
 * @category models
 */
export const Greeting = internal.Greeting

/**
 * @since 0.1.0
 * @category models
 */
export type Greeting = internal.Greeting

/**
 * An asynchronous event (`SHUTDOWN`, `POWERDOWN`, `STOP`, `RESUME`, ...).
 *
 * @since 0.1.0
 * @category models
 */
export const Event = internal.Event

/**
 * @since 0.1.0
 * @category models
 */
export type Event = internal.Event

/**
 * Connection options.
 *
 * @since 0.1.0
 * @category models
 */
export type Options = internal.Options

/**
 * A connected, negotiated QMP session; closed when the Scope that opened it closes.
 *
 * @since 0.1.0
 * @category models
 */
export type Client = internal.Client

/**
 * Connects to a QMP socket, reads the greeting and enters command mode.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Qmp } from "@novacron/vm"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const qmp = yield* Qmp.connect("/var/lib/novacron/vms/web-1/qmp.sock")
 *     const status = yield* Qmp.queryStatus(qmp)
 *     console.log(qmp.greeting.QMP.version.qemu, status.status)
 *   }),
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect: (path: string, options?: Options) => Effect.Effect<Client, QmpError, Scope.Scope> =
  internal.connect

/**
 * Runs a command and decodes its `return` value; a reply of the wrong shape is a `QmpProtocolError`.
 *
 * @since 0.1.0
 * @category commands
 */
export const executeAs = <A, I>(
  client: Client,
  schema: Schema.Schema<A, I>,
  command: string,
  args?: Readonly<Record<string, unknown>>,
  options?: { readonly timeout?: Duration.DurationInput | undefined },
): Effect.Effect<A, QmpError> =>
  Effect.flatMap(client.execute(command, args, options), (value) =>
    Effect.mapError(
      Schema.decodeUnknown(schema)(value),
      (e) =>
        new QmpProtocolError({
          socket: client.socket,
          detail: `${command} returned an unexpected value: ${e.message}`,
        }),
    ),
  )

/**
 * The reply of `query-status`.
 *
 * @since 0.1.0
 * @category models
 */
export const Status = Schema.Struct({ status: Schema.String, running: Schema.Boolean })

/**
 * `query-status`: the run state (`running`, `paused`, `shutdown`, ...).
 *
 * @since 0.1.0
 * @category commands
 */
export const queryStatus = (client: Client) => executeAs(client, Status, "query-status")

/**
 * The reply of `query-kvm`.
 *
 * @since 0.1.0
 * @category models
 */
export const Kvm = Schema.Struct({ enabled: Schema.Boolean, present: Schema.Boolean })

/**
 * `query-kvm`: whether this QEMU runs its guest on KVM.
 *
 * @since 0.1.0
 * @category commands
 */
export const queryKvm = (client: Client) => executeAs(client, Kvm, "query-kvm")

/**
 * The reply of `query-name`.
 *
 * @since 0.1.0
 * @category models
 */
export const Name = Schema.Struct({ name: Schema.optional(Schema.String) })

/**
 * `query-name`: the `-name` QEMU was started with (the VM id here), used to check that a socket
 * belongs to the VM it is expected to.
 *
 * @since 0.1.0
 * @category commands
 */
export const queryName = (client: Client) => executeAs(client, Name, "query-name")

/**
 * `cont`: resumes a paused guest (after `-S`, or a source whose migration failed).
 *
 * @since 0.1.0
 * @category migration
 */
export const cont = (client: Client) => executeAs(client, Schema.Struct({}), "cont")

/**
 * A migration capability and whether it is on (`multifd`, `auto-converge`, `postcopy-ram`, ...).
 *
 * @since 0.1.0
 * @category migration
 */
export const MigrationCapability = Schema.Struct({ capability: Schema.String, state: Schema.Boolean })

/**
 * `migrate-set-capabilities`; set on both sides before the stream starts.
 *
 * @since 0.1.0
 * @category migration
 */
export const migrateSetCapabilities = (client: Client, capabilities: ReadonlyArray<typeof MigrationCapability.Type>) =>
  executeAs(client, Schema.Struct({}), "migrate-set-capabilities", { capabilities })

/**
 * The parameters NovaCron sets (`migrate-set-parameters`): a subset of QEMU's, in QEMU's names.
 *
 * @since 0.1.0
 * @category migration
 */
export const MigrationParameters = Schema.Struct({
  /** Bytes per second. */
  "max-bandwidth": Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  /** Milliseconds. */
  "downtime-limit": Schema.optional(Schema.Int.pipe(Schema.between(0, 2_000_000))),
  "multifd-channels": Schema.optional(Schema.Int.pipe(Schema.between(1, 255))),
  "multifd-compression": Schema.optional(Schema.Literal("none", "zlib", "zstd")),
  "cpu-throttle-initial": Schema.optional(Schema.Int.pipe(Schema.between(1, 99))),
  "cpu-throttle-increment": Schema.optional(Schema.Int.pipe(Schema.between(1, 99))),
  "max-postcopy-bandwidth": Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
})

/**
 * @since 0.1.0
 * @category migration
 */
export type MigrationParameters = typeof MigrationParameters.Type

/**
 * `migrate-set-parameters`.
 *
 * @since 0.1.0
 * @category migration
 */
export const migrateSetParameters = (client: Client, parameters: MigrationParameters) =>
  executeAs(client, Schema.Struct({}), "migrate-set-parameters", Schema.encodeSync(MigrationParameters)(parameters))

/**
 * `migrate` on the source: QEMU connects to `uri` (here always `unix:<path>`; `fd:` and `exec:`
 * are not used) and streams in the background; follow it with {@link queryMigrate}.
 *
 * @since 0.1.0
 * @category migration
 */
export const migrate = (client: Client, uri: string) => executeAs(client, Schema.Struct({}), "migrate", { uri })

/**
 * `migrate-incoming` on a destination started with `-incoming defer`: QEMU listens on `uri`.
 *
 * @since 0.1.0
 * @category migration
 */
export const migrateIncoming = (client: Client, uri: string) =>
  executeAs(client, Schema.Struct({}), "migrate-incoming", { uri })

/**
 * `migrate_cancel` on the source: the stream stops, the source keeps (or resumes) the guest.
 *
 * @since 0.1.0
 * @category migration
 */
export const migrateCancel = (client: Client) => executeAs(client, Schema.Struct({}), "migrate_cancel")

/**
 * `migrate-start-postcopy`: the source stops the guest, the destination runs it and pulls the
 * remaining pages on demand. Needs `postcopy-ram` on both sides.
 *
 * @since 0.1.0
 * @category migration
 */
export const migrateStartPostcopy = (client: Client) => executeAs(client, Schema.Struct({}), "migrate-start-postcopy")

/**
 * The RAM part of `query-migrate`.
 *
 * @since 0.1.0
 * @category migration
 */
export const MigrationRam = Schema.Struct({
  transferred: Schema.Number,
  remaining: Schema.Number,
  total: Schema.Number,
  duplicate: Schema.optional(Schema.Number),
  normal: Schema.optional(Schema.Number),
  "dirty-pages-rate": Schema.optional(Schema.Number),
  "dirty-sync-count": Schema.optional(Schema.Number),
  "page-size": Schema.optional(Schema.Number),
  mbps: Schema.optional(Schema.Number),
  "multifd-bytes": Schema.optional(Schema.Number),
  "postcopy-requests": Schema.optional(Schema.Number),
})

/**
 * The reply of `query-migrate` (fields QEMU omits before the migration starts are optional).
 *
 * @since 0.1.0
 * @category migration
 */
export const MigrationInfo = Schema.Struct({
  /** `none`, `setup`, `active`, `postcopy-active`, `device`, `completed`, `failed`, `cancelling`, `cancelled`, ... */
  status: Schema.optional(Schema.String),
  ram: Schema.optional(MigrationRam),
  "total-time": Schema.optional(Schema.Number),
  "expected-downtime": Schema.optional(Schema.Number),
  downtime: Schema.optional(Schema.Number),
  "setup-time": Schema.optional(Schema.Number),
  "cpu-throttle-percentage": Schema.optional(Schema.Number),
  "error-desc": Schema.optional(Schema.String),
})

/**
 * @since 0.1.0
 * @category migration
 */
export type MigrationInfo = typeof MigrationInfo.Type

/**
 * `query-migrate`: the status and counters of the current (or last) migration, on either side.
 * `timeout` replaces the client's per-command timeout: a destination loading the incoming state
 * can leave its main loop (and so QMP) unanswered for longer.
 *
 * @since 0.1.0
 * @category migration
 */
export const queryMigrate = (client: Client, options?: { readonly timeout?: Duration.DurationInput | undefined }) =>
  executeAs(client, MigrationInfo, "query-migrate", undefined, options)
