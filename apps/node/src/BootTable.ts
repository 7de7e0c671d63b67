/**
 * The node's boot table: for every component the host may run, its phase, criticality and
 * dependencies, in one place. Packages export specs (Layer, health check, retry, fallback); this
 * table alone places them. It follows the design's tables (initialization-architecture-v2.md:
 * the four phases, and CRITICAL halts and rolls back, DEGRADED retries then continues on its
 * fallback, WARNING logs and continues).
 */
import { Component } from "@novacron/init"
import type { Effect } from "effect"

/**
 * | Component        | Phase     | Criticality | Dependencies      | Why this placement                                   |
 * |------------------|-----------|-------------|-------------------|------------------------------------------------------|
 * | config           | pre-init  | CRITICAL    | -                 | every other component reads it                       |
 * | logging          | pre-init  | CRITICAL    | config            | log level, format and file come from config          |
 * | resources        | pre-init  | CRITICAL    | config            | a node below its profile must not join               |
 * | conflict-check   | pre-init  | CRITICAL    | config            | data-dir lock, free ports                            |
 * | environment      | pre-init  | CRITICAL    | config            | DWCP mode (datacenter, internet, hybrid)             |
 * | security         | core      | CRITICAL    | -                 | keys, certificates, auth                             |
 * | database         | core      | CRITICAL    | -                 | state store (opens its own files; no key needed)     |
 * | cache            | core      | DEGRADED    | -                 | in-memory fallback while Redis is away               |
 * | network          | core      | CRITICAL    | security          | TLS needs the node certificate                       |
 * | state-sync       | core      | CRITICAL    | database,         | cluster state (etcd, or the node database alone);    |
 * |                  |           |             | security          | no node may own a VM without it; etcd over mTLS uses |
 * |                  |           |             |                   | the node certificate security issues                 |
 * | dwcp             | core      | DEGRADED    | environment,      | the receiver and the v3 parts behind one service; a  |
 * |                  |           |             | security,         | part that fails runs v1 (the design: HIGH, "continue |
 * |                  |           |             | network,          | with v1 fallback"); each link's row from the         |
 * |                  |           |             | state-sync        | detector; endpoints in the cluster state             |
 * | membership       | services  | CRITICAL    | database, network | takes accepted connections, writes `nodes`           |
 * | cluster-join     | services  | WARNING     | security          | serves joins with the CA; a node runs without it     |
 * | vm               | services  | DEGRADED    | database,         | VMs through QEMU; without QEMU the node still serves |
 * |                  |           |             | state-sync        | (ownership terms are in the cluster state)           |
 * | migration        | services  | DEGRADED    | vm, security,     | live migration: the mTLS tunnel and the driver; when |
 * |                  |           |             | state-sync        | it cannot start, migrations are refused with why     |
 * | dwcp-itp         | services  | DEGRADED    | -                 | placement; binpack fallback (a node that cannot place |
 * |                  |           |             |                   | a VM is worse off than one placing simply)           |
 * | orchestration    | services  | CRITICAL    | database,         | durable tasks and the fenced coordinator (the design:|
 * |                  |           |             | state-sync, vm    | its failure halts boot); VM tasks act through `vm`   |
 * | api              | services  | CRITICAL    | dwcp, security,   | operators and tools drive the node through it (the   |
 * |                  |           |             | network,          | design: its failure halts boot, after DWCP and       |
 * |                  |           |             | state-sync,       | security); it serves members, VMs, tasks and the     |
 * |                  |           |             | membership, vm,   | leader, so it starts after them                      |
 * |                  |           |             | migration,        |                                                      |
 * |                  |           |             | orchestration     |                                                      |
 * | ml-engine        | services  | WARNING     | -                 | the design's LOW: baselines serve without the models |
 * | metrics-endpoint | post-init | WARNING     | -                 | a node without /metrics still does its work          |
 * | profiling        | post-init | WARNING     | security          | CPU profiles and heap snapshots for admins, on demand |
 * | database-        | post-init | WARNING     | database,         | hourly upkeep (SQLite optimize and WAL checkpoint,   |
 * | maintenance      |           |             | background-jobs   | PostgreSQL ANALYZE) on a background job              |
 * | background-jobs  | post-init | WARNING     | -                 | the supervisor of recurring jobs (listed in /status) |
 * | environment-     | post-init | WARNING     | environment,      | re-detects the network mode every detection_interval |
 * | redetection      |           |             | background-jobs   | on a background job                                  |
 * | capacity-report  | post-init | WARNING     | vm, state-sync,   | the node's VM capacity in the cluster state under a  |
 * |                  |           |             | background-jobs   | lease, on a background job (placement reads it)      |
 * | transfer-accuracy| post-init | WARNING     | dwcp, ml-engine   | the predictor's error on each real DWCP transfer, as |
 * |                  |           |             |                   | a metric (the ML engine's; DWCP publishes them)      |
 * | bandwidth-       | post-init | WARNING     | dwcp, ml-engine   | DWCP predicts with the ML engine's predictor (it     |
 * | predictor        |           |             |                   | boots first, on its baseline; one LSTM per agent)    |
 * | placement-       | post-init | WARNING     | dwcp-itp,         | the ML engine's optimiser in placement once loaded;  |
 * | optimizer        |           |             | ml-engine         | without it the policy's first choice places          |
 * | service-registry | post-init | WARNING     | state-sync,       | the node's endpoints in the cluster state, refreshed |
 * |                  |           |             | network,          | by a job; a node not registered still runs its VMs   |
 * |                  |           |             | background-jobs   |                                                      |
 *
 * A row without a component is one this node does not run (metrics disabled, a DWCP part off).
 */
export const table = {
  config: { phase: "pre-init", criticality: "CRITICAL" },
  logging: { phase: "pre-init", criticality: "CRITICAL", dependencies: ["config"] },
  resources: { phase: "pre-init", criticality: "CRITICAL", dependencies: ["config"] },
  "conflict-check": { phase: "pre-init", criticality: "CRITICAL", dependencies: ["config"] },
  environment: { phase: "pre-init", criticality: "CRITICAL", dependencies: ["config"] },

  security: { phase: "core", criticality: "CRITICAL" },
  database: { phase: "core", criticality: "CRITICAL" },
  cache: { phase: "core", criticality: "DEGRADED" },
  network: { phase: "core", criticality: "CRITICAL", dependencies: ["security"] },
  "state-sync": { phase: "core", criticality: "CRITICAL", dependencies: ["database", "security"] },
  dwcp: {
    phase: "core",
    criticality: "DEGRADED",
    dependencies: ["environment", "security", "network", "state-sync"],
  },

  membership: { phase: "services", criticality: "CRITICAL", dependencies: ["database", "network"] },
  "cluster-join": { phase: "services", criticality: "WARNING", dependencies: ["security"] },
  vm: { phase: "services", criticality: "DEGRADED", dependencies: ["database", "state-sync"] },
  migration: { phase: "services", criticality: "DEGRADED", dependencies: ["vm", "security", "state-sync"] },
  "dwcp-itp": { phase: "services", criticality: "DEGRADED" },
  // The design also lists DWCP: orchestration uses none of it until VM migration runs through it.
  orchestration: { phase: "services", criticality: "CRITICAL", dependencies: ["database", "state-sync", "vm"] },

  api: {
    phase: "services",
    criticality: "CRITICAL",
    dependencies: ["dwcp", "security", "network", "state-sync", "membership", "vm", "migration", "orchestration"],
  },

  "ml-engine": { phase: "services", criticality: "WARNING" },

  "metrics-endpoint": { phase: "post-init", criticality: "WARNING" },
  profiling: { phase: "post-init", criticality: "WARNING", dependencies: ["security"] },
  "background-jobs": { phase: "post-init", criticality: "WARNING" },
  "database-maintenance": { phase: "post-init", criticality: "WARNING", dependencies: ["database", "background-jobs"] },
  "environment-redetection": {
    phase: "post-init",
    criticality: "WARNING",
    dependencies: ["environment", "background-jobs"],
  },
  "capacity-report": {
    phase: "post-init",
    criticality: "WARNING",
    dependencies: ["vm", "state-sync", "background-jobs"],
  },
  "transfer-accuracy": { phase: "post-init", criticality: "WARNING", dependencies: ["dwcp", "ml-engine"] },
  "bandwidth-predictor": { phase: "post-init", criticality: "WARNING", dependencies: ["dwcp", "ml-engine"] },
  "placement-optimizer": { phase: "post-init", criticality: "WARNING", dependencies: ["dwcp-itp", "ml-engine"] },
  "service-registry": {
    phase: "post-init",
    criticality: "WARNING",
    dependencies: ["state-sync", "network", "background-jobs"],
  },
} as const satisfies Component.Table

/** The node's components, each placed by its row; a spec without a row is an error naming it. */
export const place = (
  specs: Iterable<Component.AnySpec>,
): Effect.Effect<ReadonlyArray<Component.AnyComponent>, Component.UnplacedComponent> => Component.placeAll(specs, table)
