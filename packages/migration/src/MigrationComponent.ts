/**
 * The `migration` component: the node's live-migration service (tunnel listener included). Peers
 * are found in the cluster's service registry (`services/<node>/migration`, which the host
 * registers at READY with the node's other endpoints), so a node that is gone is not dialed.
 *
 * @since 0.1.0
 */
import { ServiceRegistry, StateStore } from "@novacron/dwcp-ass"
import { Component } from "@novacron/init"
import type { VmManager, VmOwnership } from "@novacron/vm"
import { Context, Effect, Layer, Option } from "effect"
import * as Migration from "./Migration.js"
import { MigrationInvalid } from "./MigrationError.js"
import type { MigrationSettings } from "./MigrationSettings.js"
import * as Migrations from "./Migrations.js"

/**
 * The registry entry's name, and the URL scheme of a tunnel endpoint (`tls://host:port`).
 *
 * @since 0.1.0
 * @category constants
 */
export const endpointName = "migration"

/**
 * The registry URL of a tunnel address.
 *
 * @since 0.1.0
 * @category encoding
 */
export const endpointUrl = (address: Migration.Address): string =>
  `tls://${address.host.includes(":") ? `[${address.host}]` : address.host}:${address.port}`

/**
 * A registry URL back to an address, or why not.
 *
 * @since 0.1.0
 * @category decoding
 */
export const parseEndpoint = (url: string): Option.Option<Migration.Address> => {
  const m = /^tls:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})$/.exec(url)
  if (m === null) return Option.none()
  const port = Number(m[2])
  if (port < 1 || port > 65535) return Option.none()
  return Option.some({ host: m[1]!.replace(/^\[|\]$/g, ""), port })
}

/**
 * Where node `node`'s tunnel listens, from the service registry in the cluster state.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolver =
  (store: StateStore.StateStoreApi) =>
  (node: string): Effect.Effect<Migration.Address, string> =>
    ServiceRegistry.services.get(`${node}/${endpointName}`).pipe(
      Effect.provideService(StateStore.StateStore, store),
      Effect.mapError((e) => `the cluster state cannot be read: ${e.message}`),
      Effect.flatMap(
        Option.match({
          onNone: () =>
            Effect.fail(
              `node ${node} has no migration endpoint in the cluster state (services/${node}/${endpointName})`,
            ),
          onSome: (entry) =>
            Option.match(parseEndpoint(entry.value.url), {
              onNone: () =>
                Effect.fail(`node ${node}'s migration endpoint "${entry.value.url}" is not tls://host:port`),
              onSome: Effect.succeed,
            }),
        }),
      ),
    )

/**
 * Where peers reach this node's tunnel, as registered: `tls://<advertised host>:<port>`.
 *
 * @since 0.1.0
 * @category tags
 */
export class MigrationEndpoint extends Context.Tag("@novacron/migration/MigrationEndpoint")<
  MigrationEndpoint,
  { readonly url: string }
>() {}

/**
 * The component spec. The host supplies the node's TLS (the security service's) and, when the
 * address to listen on is its cluster listener's, `listenAddress`.
 *
 * @example
 * ```ts
 * import { MigrationComponent, MigrationSettings } from "@novacron/migration"
 * import { Effect } from "effect"
 *
 * const spec = MigrationComponent.component(MigrationSettings.defaults, {
 *   nodeId: "node-1",
 *   tls: Effect.die("the host passes the security service's TLS here"),
 * })
 * console.log(spec.name) // "migration"
 * ```
 *
 * @since 0.1.0
 * @category components
 */
export const component = <R>(
  settings: MigrationSettings,
  options: {
    readonly nodeId: string
    readonly tls: Effect.Effect<Migration.NodeTls, never, R>
    /** The host peers dial when the tunnel listens on all addresses (default: the listen address). */
    readonly advertise?: string | undefined
  },
) =>
  Component.spec({
    name: "migration",
    description: "live migration: the mTLS tunnel for incoming VMs and the driver for outgoing ones",
    layer: Layer.unwrapEffect(
      Effect.gen(function* () {
        const tls = yield* options.tls
        const store = yield* StateStore.StateStore
        const service = Migration.layer({ nodeId: options.nodeId, settings, tls, resolve: resolver(store) })
        const endpoint = Layer.effect(
          MigrationEndpoint,
          Effect.map(Migration.Migration, (m) => ({
            url: endpointUrl({ host: options.advertise ?? m.address.host, port: m.address.port }),
          })),
        )
        return Layer.provideMerge(Layer.merge(Migrations.layer(options.nodeId), endpoint), service)
      }),
    ) as Layer.Layer<
      Migration.Migration | Migrations.Migrations | MigrationEndpoint,
      Error,
      R | StateStore.StateStore | VmManager.VmManager | VmOwnership.VmOwnership
    >,
    // The tunnel could not start (e.g. its port is taken): the node runs on, and every migration
    // to or from it is refused with why, so the API and the CLI say so instead of going missing.
    fallback: Layer.provideMerge(
      Migrations.layer(options.nodeId),
      Layer.succeed(Migration.Migration, {
        address: { host: "", port: 0 },
        migrate: (vm) =>
          Effect.fail(
            new MigrationInvalid({
              vm,
              detail: "this node's migration service did not start (see the boot log: component migration)",
            }),
          ),
      }),
    ),
    healthCheck: Effect.map(Migration.Migration, (m) =>
      m.address.port === 0
        ? { status: "degraded" as const, message: "the migration tunnel is not listening" }
        : { status: "healthy" as const, details: { listening: endpointUrl(m.address) } },
    ),
    expectedDuration: "20 millis",
  })
