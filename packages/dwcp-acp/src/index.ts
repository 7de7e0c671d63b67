/**
 * Per-connection TCP congestion control (TCP_CONGESTION, TCP_INFO via a native addon) and token-bucket pacing for DWCP transfers
 *
 * @packageDocumentation
 */
export {}
