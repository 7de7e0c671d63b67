/**
 * The node's API server: REST on `@effect/platform`'s HttpApi over HTTPS, mTLS and tokens with
 * roles from `@novacron/security`'s policy table, OpenAPI 3.1 and a Scalar page, blocking queries
 * and an NDJSON event stream; gRPC (Connect) from `proto/novacron/v1`.
 *
 * @packageDocumentation
 */

/** @since 0.1.0 */
export * as Api from "./Api.js"
/** @since 0.1.0 */
export * as ApiCommand from "./ApiCommand.js"
/** @since 0.1.0 */
export * as ApiComponent from "./ApiComponent.js"
/** @since 0.1.0 */
export * as ApiError from "./ApiError.js"
/** @since 0.1.0 */
export * as ApiServer from "./ApiServer.js"
/** @since 0.1.0 */
export * as ApiSettings from "./ApiSettings.js"
/** @since 0.1.0 */
export * as ApiSources from "./ApiSources.js"
/** @since 0.1.0 */
export * as EventLog from "./EventLog.js"
/** @since 0.1.0 */
export * as GrpcServer from "./GrpcServer.js"
/** @since 0.1.0 */
export * as OrchestrationSource from "./OrchestrationSource.js"
