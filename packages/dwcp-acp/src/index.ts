/**
 * Adaptive congestion control for DWCP transfers: TCP_CONGESTION selection with read-back, TCP_INFO,
 * token-bucket pacing, and the ACP service / `@novacron/init` component.
 *
 * @packageDocumentation
 */
export * as Acp from "./Acp.js"
export * as AcpError from "./AcpError.js"
export * as CongestionControl from "./CongestionControl.js"
export * as Pacer from "./Pacer.js"
export * as TcpInfo from "./TcpInfo.js"
