/**
 * Cluster transport: TCP/TLS listener with connection limits, timeouts and drain, a checksummed
 * framed message protocol and peer dialing with backoff.
 *
 * @packageDocumentation
 */
export * as Connection from "./Connection.js"
export * as Frame from "./Frame.js"
export * as Network from "./Network.js"
export * as NetworkComponent from "./NetworkComponent.js"
export * as NetworkError from "./NetworkError.js"
export * as NetworkMetrics from "./NetworkMetrics.js"
export * as NetworkSettings from "./NetworkSettings.js"
