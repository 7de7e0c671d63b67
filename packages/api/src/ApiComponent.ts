/**
 * The API as a boot component spec (the host's boot table places it: services phase, CRITICAL,
 * after DWCP and security as the design says, and after what it serves: network, state-sync,
 * membership, vm and orchestration).
 *
 * @since 0.1.0
 */
import { connect } from "node:net"
import { Component } from "@novacron/init"
import type { Security } from "@novacron/security"
import { Effect, Layer } from "effect"
import { ApiEndpoint, type ApiStartError, layer, type Options } from "./ApiServer.js"
import type { ApiSettings } from "./ApiSettings.js"
import type * as EventLog from "./EventLog.js"
import * as GrpcServer from "./GrpcServer.js"

/**
 * Healthy while it answers on its port (a TCP connect to itself).
 *
 * @since 0.1.0
 * @category health
 */
export const healthCheck: Effect.Effect<Component.HealthResult, never, ApiEndpoint> = Effect.flatMap(
  ApiEndpoint,
  (endpoint) =>
    Effect.async<Component.HealthResult>((resume) => {
      // A static import: the agent runs its bundle through vm.Script (code cache), where a dynamic
      // import() throws ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING and kills the process.
      const socket = connect({ host: endpoint.host, port: endpoint.port })
      const done = (result: Component.HealthResult) => {
        socket.destroy()
        resume(Effect.succeed(result))
      }
      socket.setTimeout(2000, () => done({ status: "unhealthy", message: "no answer within 2 s" }))
      socket.once("connect", () => done({ status: "healthy", details: { url: endpoint.url } }))
      socket.once("error", (e) => done({ status: "unhealthy", message: e.message }))
    }),
)

/**
 * The component spec: `name: "api"`: the REST server and, beside it on `api.grpc_port`, the gRPC
 * server (`GrpcServer`, reading REST's `EventLog`). Its layer needs `Security`; the VM manager, membership, the
 * state store, `AgentInfo`, and `TaskSource` (or orchestration's `Tasks`) are used when the boot's
 * context has them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const component = (
  settings: ApiSettings,
  options: Options = {},
): Component.Spec<
  ApiEndpoint | EventLog.EventLog | GrpcServer.GrpcEndpoint,
  ApiStartError | GrpcServer.GrpcStartError,
  Security.Security
> =>
  Component.spec<
    ApiEndpoint | EventLog.EventLog | GrpcServer.GrpcEndpoint,
    ApiStartError | GrpcServer.GrpcStartError,
    Security.Security
  >({
    name: "api",
    layer: Layer.provideMerge(
      Layer.unwrapEffect(
        Effect.map(ApiEndpoint, (rest) =>
          GrpcServer.layer(settings, { election: options.election, apiUrl: rest.url, refresh: rest.refresh }),
        ),
      ),
      layer(settings, options),
    ),
    healthCheck,
    timeout: "10 seconds",
    expectedDuration: "20 millis",
    description: "the REST and gRPC API (HTTPS, mTLS or tokens, roles)",
  })

/**
 * @since 0.1.0
 * @category errors
 */
export type { ApiStartError }

/**
 * @since 0.1.0
 * @category errors
 */
export type GrpcStartError = GrpcServer.GrpcStartError
