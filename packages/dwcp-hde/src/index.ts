/**
 * DWCP hybrid data encoding: zstd/lz4/adaptive codecs, zero/duplicate page elimination, page
 * delta, a checked framed wire format, and a worker-thread encoder pool.
 *
 * @packageDocumentation
 */
export * as Hde from "./Hde.js"
export * as HdeComponent from "./HdeComponent.js"
export * as HdeError from "./HdeError.js"
export * as HdeSettings from "./HdeSettings.js"
export * as NodeStreams from "./NodeStreams.js"
