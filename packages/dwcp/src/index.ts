/**
 * DWCP: the v3 parts (AMST, HDE, PBA, ASS, ACP, ITP) behind one service, each link on its row of
 * the design's mode table, each part falling back to v1 on its own.
 *
 * @packageDocumentation
 */

/** @since 0.1.0 */
export * as LinkClassifier from "./LinkClassifier.js"
/** @since 0.1.0 */
export * as ModeTable from "./ModeTable.js"
