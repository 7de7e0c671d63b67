/**
 * Live migration of a running VM to another node. Each agent runs one service: it listens for
 * incoming migrations (the destination role) and migrates its own VMs away (the source role).
 *
 * The source asks the destination to `prepare` over the mTLS tunnel (VM spec, migration id, its
 * ownership term); the destination starts QEMU paused with `-incoming defer` and
 * `migrate-incoming unix:<socket>` and answers `ready`. The source then runs
 * `migrate unix:<socket it owns>`: every connection QEMU opens (main stream, multifd channels,
 * return path on the main stream) is carried over its own tunnel connection to the destination's
 * QEMU. When precopy completes (or postcopy starts) the source guest is stopped; the destination
 * takes the VM's ownership term from the source's term (fencing it) and only then `cont`s. Any
 * failure before that leaves the guest on the source (resumed only while the source still holds
 * its term); the destination discards its QEMU.
 *
 * @since 0.1.0
 */
import type { X509Certificate } from "node:crypto"
import type { VmManager, VmOwnership } from "@novacron/vm"
import { Context, type Effect, Layer, type Scope, type Stream } from "effect"
import * as internal from "./internal/migration.js"
import type { MigrationError } from "./MigrationError.js"
import type { LinkRow, Plan } from "./MigrationPolicy.js"
import type { MigrationSettings } from "./MigrationSettings.js"

/**
 * The node's TLS material (the same identity DWCP uses): PEM strings, and the security service's
 * rule for "this verified certificate is a cluster node".
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeTls {
  readonly cert: string
  readonly key: string
  readonly ca: string
  readonly isNode: (cert: X509Certificate) => boolean
}

/**
 * A tunnel endpoint.
 *
 * @since 0.1.0
 * @category models
 */
export interface Address {
  readonly host: string
  readonly port: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly nodeId: string
  readonly settings: MigrationSettings
  readonly tls: NodeTls
  /** Where a node's migration tunnel listens (the host derives it from the cluster state). */
  readonly resolve: (node: string) => Effect.Effect<Address, string>
}

/**
 * Phases, in order; progress never goes back to an earlier one.
 *
 * @since 0.1.0
 * @category models
 */
export type Phase = "preparing" | "setup" | "precopy" | "postcopy" | "switchover" | "completed"

/**
 * One progress report (QEMU's counters, polled every `poll_interval`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Progress {
  readonly migration: string
  readonly phase: Phase
  /** RAM bytes QEMU sent so far (never decreases). */
  readonly transferred: number
  readonly remaining: number
  readonly total: number
  /** Bytes per second the guest dirties (QEMU's dirty-pages-rate x page size). */
  readonly dirtyRate: number
  readonly expectedDowntimeMs: number | null
  /** Dirty-sync passes so far. */
  readonly passes: number
  /** Auto-converge's vCPU throttle, percent. */
  readonly throttle: number
  /** Bytes on the tunnel's TCP connections (TLS records, both ways). */
  readonly wireBytes: number
  readonly elapsedMs: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Result {
  readonly migration: string
  readonly vm: string
  readonly to: string
  /** The ownership term the destination runs the VM under. */
  readonly term: number
  readonly mode: "precopy" | "postcopy"
  /** From `migrate` being called to the source cleaned up. */
  readonly totalMs: number
  /** QEMU's own total-time. */
  readonly qemuTotalMs: number | null
  /** QEMU's measured downtime (guest stopped on the source until the end of the stream). */
  readonly downtimeMs: number | null
  /** RAM bytes QEMU sent. */
  readonly transferred: number
  readonly wireBytes: number
}

/**
 * A migration under way.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handle {
  readonly id: string
  readonly plan: Plan
  /** Progress reports; ends when the migration does. Single consumer. */
  readonly progress: Stream.Stream<Progress>
  readonly result: Effect.Effect<Result, MigrationError>
  /** Asks for a cancel; effective until the switchover starts (then `result` tells the outcome). */
  readonly cancel: Effect.Effect<void>
}

/**
 * Per-migration inputs from the link.
 *
 * @since 0.1.0
 * @category models
 */
export interface MigrateOptions {
  /** The DWCP mode row of the link to the peer (default: tcp-multistream, no compression). */
  readonly row?: LinkRow | undefined
  /** PBA's predicted bandwidth in bytes per second (default: unlimited). */
  readonly predictedBandwidth?: number | undefined
  /** Overrides the service's settings for this migration. */
  readonly settings?: MigrationSettings | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Where this node's tunnel listens. */
  readonly address: Address
  /**
   * Starts migrating `vmId` to node `to`; the migration runs in the given scope (closing it
   * interrupts and rolls back an unfinished one).
   */
  readonly migrate: (
    vmId: string,
    to: string,
    options?: MigrateOptions,
  ) => Effect.Effect<Handle, MigrationError, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Migration extends Context.Tag("@novacron/migration/Migration")<Migration, Service>() {}

/**
 * The service (listener included) in a scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: Options,
) => Effect.Effect<Service, Error, Scope.Scope | VmManager.VmManager | VmOwnership.VmOwnership> = internal.make

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Migration, Error, VmManager.VmManager | VmOwnership.VmOwnership> =>
  Layer.scoped(Migration, make(options))
