/**
 * The NovaCron ML engine.
 *
 * @packageDocumentation
 */

/**
 * Loads and serves the bandwidth model (baseline until loaded or when it fails), records accuracy.
 *
 * @since 0.1.0
 */
export * as MlEngine from "./MlEngine.js"

/**
 * The `ml:` section of `novacron.yaml`.
 *
 * @since 0.1.0
 */
export * as MlSettings from "./MlSettings.js"

/**
 * The bandwidth predictor's error on real transfers, recorded from DWCP's observations.
 *
 * @since 0.1.0
 */
export * as TransferAccuracy from "./TransferAccuracy.js"
