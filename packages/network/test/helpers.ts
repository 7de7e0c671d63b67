import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { Security, SecuritySettings } from "@novacron/security"
import { Context, Effect, HashMap, Layer, Logger, type Scope } from "effect"
import * as Network from "../src/Network.js"
import * as NetworkSettings from "../src/NetworkSettings.js"

export const tempDir = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "novacron-network-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true })),
)

/** Log lines, shared by every node a test starts. */
export type Logs = Array<{
  readonly level: string
  readonly message: string
  readonly annotations?: Readonly<Record<string, unknown>>
}>

export const recordingLogger = (logs: Logs) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message, annotations }) => {
      logs.push({
        level: logLevel.label,
        message: Array.isArray(message) ? message.join(" ") : String(message),
        annotations: Object.fromEntries(HashMap.toEntries(annotations)),
      })
    }),
  )

export interface NodeOptions {
  readonly nodeId?: string
  readonly dir?: string
  readonly security?: Record<string, unknown>
  readonly network?: Record<string, unknown>
  readonly options?: Network.NetworkOptions
}

export interface TestNode {
  readonly network: Network.Network
  readonly security: Security.Security
  readonly dir: string
  readonly target: string
}

/** Starts security + network for one node in the current scope (port 0). */
export const startNode = (o: NodeOptions = {}): Effect.Effect<TestNode, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = o.dir ?? (yield* tempDir)
    const net = NetworkSettings.decode({ bind_port: 0, ...o.network })
    const node = { data_dir: dir, node_id: o.nodeId ?? "node-a", listen_address: net.listen_address, env: {} }
    const security = Security.layer(SecuritySettings.decode(o.security ?? {}), node)
    const ctx = yield* Layer.build(Layer.provideMerge(Network.layer(net, o.options), security))
    const network = Context.get(ctx, Network.Network)
    return {
      network,
      security: Context.get(ctx, Security.Security),
      dir,
      target: `127.0.0.1:${network.address.port}`,
    }
  })
