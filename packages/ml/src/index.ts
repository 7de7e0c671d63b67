/**
 * The NovaCron ML engine.
 *
 * @packageDocumentation
 */

/**
 * Loads and serves the bandwidth model and the placement optimiser (baselines until loaded or
 * when they fail), records accuracy and effect.
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
 * Installs the engine's placement optimiser into placement (`Placement.setOptimizer`), following its state.
 *
 * @since 0.2.0
 */
export * as OptimizerBridge from "./OptimizerBridge.js"
/**
 * Serves the engine's bandwidth predictor to DWCP (`Dwcp.setPredictor`), following the model's state.
 *
 * @since 0.2.0
 */
export * as PredictorBridge from "./PredictorBridge.js"
/**
 * The bandwidth predictor's error on real transfers, recorded from DWCP's observations.
 *
 * @since 0.1.0
 */
export * as TransferAccuracy from "./TransferAccuracy.js"
