/**
 * Detects the node's network environment (datacenter, internet, hybrid) from measured peer links and RDMA, and keeps re-detecting.
 *
 * @packageDocumentation
 */
export {}
