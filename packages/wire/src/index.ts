/**
 * One wire format for NovaCron's framed protocols: length-prefixed, checksummed, bounded frames with
 * a streaming decoder and one `FrameError`.
 *
 * @packageDocumentation
 */

export * as TraceContext from "./TraceContext.js"
export * as Wire from "./Wire.js"
export * as WireError from "./WireError.js"
