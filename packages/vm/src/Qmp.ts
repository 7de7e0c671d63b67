/**
 * A QMP client: the QEMU Machine Protocol on a unix socket (newline-delimited JSON). Connecting reads
 * the greeting and negotiates `qmp_capabilities`; commands carry an `id` and are matched to their
 * replies in any order; asynchronous events are a `Stream`. Every line is bounded and Schema-decoded:
 * a peer that sends garbage or an endless line gets the connection closed with `QmpProtocolError`,
 * one that hangs gets `QmpTimeout`.
 *
 * @since 0.1.0
 */
import { Effect, Schema, type Scope } from "effect"
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
): Effect.Effect<A, QmpError> =>
  Effect.flatMap(client.execute(command, args), (value) =>
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
