/**
 * DWCP: the v3 parts (AMST, HDE, PBA, ASS, ACP, ITP) behind one service, each link on its row of
 * the design's mode table, each part falling back to v1 on its own.
 *
 * @packageDocumentation
 */

/** @since 0.1.0 */
export * as Dwcp from "./Dwcp.js"
/** @since 0.1.0 */
export * as DwcpComponent from "./DwcpComponent.js"
/** @since 0.1.0 */
export * as DwcpNode from "./DwcpNode.js"
/** @since 0.1.0 */
export * as DwcpSettings from "./DwcpSettings.js"
/** @since 0.1.0 */
export * as Endpoint from "./Endpoint.js"
/** @since 0.1.0 */
export * as Engine from "./Engine.js"
/** @since 0.1.0 */
export * as Envelope from "./Envelope.js"
/** @since 0.1.0 */
export * as LinkClassifier from "./LinkClassifier.js"
/** @since 0.1.0 */
export * as ModeTable from "./ModeTable.js"
/** @since 0.1.0 */
export * as Negotiation from "./Negotiation.js"
/** @since 0.1.0 */
export * as Part from "./Part.js"
/** @since 0.1.0 */
export * as Parts from "./Parts.js"
/** @since 0.1.0 */
export * as Rollout from "./Rollout.js"
/** @since 0.1.0 */
export * as V1 from "./V1.js"
