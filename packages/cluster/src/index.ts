/**
 * Forms a cluster: one CA for every node and a kubeadm-like join flow (a token that pins the CA's
 * fingerprint) served over HTTPS.
 *
 * @packageDocumentation
 */
export * as Cluster from "./Cluster.js"
export * as ClusterCa from "./ClusterCa.js"
export * as ClusterComponent from "./ClusterComponent.js"
export * as ClusterError from "./ClusterError.js"
export * as ClusterSettings from "./ClusterSettings.js"
export * as Join from "./Join.js"
export * as JoinServer from "./JoinServer.js"
export * as JoinToken from "./JoinToken.js"
export * as Membership from "./Membership.js"
