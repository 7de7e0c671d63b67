/**
 * DWCP Adaptive State Synchronization: one typed cluster state API (get, put, compareAndSet,
 * watch, leases, leader election with fencing) on etcd (Raft mode) or the node's local database.
 *
 * @packageDocumentation
 */

/** @since 0.1.0 */
export * as ClusterState from "./ClusterState.js"
/** @since 0.1.0 */
export * as ConsensusSettings from "./ConsensusSettings.js"
/** @since 0.1.0 */
export * as EtcdStore from "./EtcdStore.js"
/** @since 0.3.0 */
export * as GossipStore from "./GossipStore.js"
/** @since 0.5.0 */
export * as HybridStore from "./HybridStore.js"
/** @since 0.1.0 */
export * as Keyspace from "./Keyspace.js"
/** @since 0.1.0 */
export * as LocalStore from "./LocalStore.js"
/** @since 0.4.0 */
export * as Pbft from "./Pbft.js"
/** @since 0.5.0 */
export * as PbftStore from "./PbftStore.js"
/** @since 0.2.0 */
export * as ServiceRegistry from "./ServiceRegistry.js"
/** @since 0.1.0 */
export * as StateComponent from "./StateComponent.js"
/** @since 0.1.0 */
export * as StateError from "./StateError.js"
/** @since 0.2.0 */
export * as StateMetrics from "./StateMetrics.js"
/** @since 0.1.0 */
export * as StateStore from "./StateStore.js"
/** @since 0.1.0 */
export * as StateSync from "./StateSync.js"
