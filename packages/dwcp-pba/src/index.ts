/**
 * Predictive bandwidth allocation for DWCP: per-link throughput history, baseline and LSTM (ONNX) predictors with uncertainty, weighted max-min rate allocation.
 *
 * @packageDocumentation
 */
export {}
