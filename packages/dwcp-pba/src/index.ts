/**
 * Predictive bandwidth allocation for DWCP: per-link throughput history, baseline and LSTM
 * (ONNX) predictors with uncertainty, weighted max-min rate allocation.
 *
 * @packageDocumentation
 */
export * as Allocation from "./Allocation.js"
export * as History from "./History.js"
export * as Lstm from "./Lstm.js"
export * as Pba from "./Pba.js"
export * as PbaComponent from "./PbaComponent.js"
export * as Predictor from "./Predictor.js"
