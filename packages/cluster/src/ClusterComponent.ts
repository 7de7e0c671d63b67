/**
 * The `@novacron/init` component spec that serves joins on the seed; it needs the CA that `security`
 * makes or loads. The host's boot table places it (phase, criticality, dependencies).
 * On a node that is not the seed (no `cluster init` here, or joined: no CA key) it starts nothing.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs/promises"
import { Component } from "@novacron/init"
import { Context, Effect, Layer, Option } from "effect"
import * as ClusterCa from "./ClusterCa.js"
import { ClusterStateError } from "./ClusterError.js"
import type { ClusterSettings } from "./ClusterSettings.js"
import * as JoinServer from "./JoinServer.js"

/**
 * What this node does for joiners: `None` when it is not the seed.
 *
 * @since 0.1.0
 * @category services
 */
export class ClusterJoin extends Context.Tag("@novacron/cluster/ClusterJoin")<
  ClusterJoin,
  { readonly server: Option.Option<JoinServer.JoinServerInfo> }
>() {}

/**
 * The node facts the component needs.
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeInfo {
  readonly data_dir: string
  readonly listen_address: string
  readonly bind_port: number
}

const hasCaKey = (dataDir: string) =>
  Effect.tryPromise({
    try: () => fs.access(ClusterCa.paths(dataDir).caKey).then(() => true),
    catch: (cause) => cause,
  }).pipe(
    Effect.catchAll((cause) =>
      (cause as NodeJS.ErrnoException).code === "ENOENT"
        ? Effect.succeed(false)
        : Effect.fail(
            new ClusterStateError({
              reason: `cannot read: ${(cause as Error).message}`,
              path: ClusterCa.paths(dataDir).caKey,
              cause,
            }),
          ),
    ),
  )

const bracket = (host: string) => (host.includes(":") ? `[${host}]` : host)

/**
 * The join server when this node is the seed, closed with the component's scope.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (settings: ClusterSettings, node: NodeInfo) =>
  Layer.scoped(
    ClusterJoin,
    Effect.gen(function* () {
      const seed = yield* ClusterCa.info(node.data_dir)
      if (seed === undefined || !(yield* hasCaKey(node.data_dir))) {
        yield* Effect.logDebug("not the cluster seed (no cluster init or no CA key here): join server not started")
        return { server: Option.none() }
      }
      const server = yield* JoinServer.make({
        dataDir: node.data_dir,
        host: node.listen_address,
        port: settings.join_port,
        peerAddress: `${bracket(node.listen_address)}:${node.bind_port}`,
        maxRequestBytes: settings.max_request_bytes,
        requestsPerMinute: settings.requests_per_minute,
      })
      yield* Effect.logInfo(
        `serving cluster joins on ${bracket(server.host)}:${server.port} (CA sha256:${server.caFingerprint})`,
      )
      return { server: Option.some(server) }
    }),
  )

/**
 * The component spec (placed by the host's boot table).
 *
 * @since 0.1.0
 * @category components
 */
export const component = (settings: ClusterSettings, node: NodeInfo) =>
  Component.spec({
    name: "cluster-join",
    layer: layer(settings, node),
    healthCheck: Effect.map(ClusterJoin, ({ server }) => ({
      status: "healthy" as const,
      details: Option.match(server, {
        onNone: () => ({ serving: false }),
        onSome: (s) => ({ serving: true, address: `${bracket(s.host)}:${s.port}`, ca: `sha256:${s.caFingerprint}` }),
      }),
    })),
    description: "serves cluster joins on the seed (cluster init); nothing elsewhere",
  })
