/**
 * The cluster state API: one service for every consensus mode. Keys are strings, values JSON
 * text (use {@link Keyspace} for Schema-typed values). Each mode states its consistency per
 * operation; in Raft mode (etcd) and local mode every operation below is linearizable.
 *
 * @since 0.1.0
 */
import { Context, type Duration, type Effect, type Option, type Scope, type Stream } from "effect"
import type { CompareFailed, LeaseLost, StateError, WriteError } from "./StateError.js"

/**
 * A stored key with its revisions (etcd's meaning: a revision is the store-wide counter of writes).
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly key: string
  readonly value: string
  /** Revision of the write that created the key (since its last delete). */
  readonly createRevision: number
  /** Revision of the last write of the key: the token for {@link StateStoreApi.compareAndSet}. */
  readonly modRevision: number
  /** Writes since creation (1 after the first). */
  readonly version: number
  /** Lease the key is bound to (deleted when it lapses). */
  readonly lease: string | undefined
}

/**
 * The entries under a prefix at one revision.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly entries: ReadonlyArray<Entry>
  readonly revision: number
}

/**
 * A change seen by {@link StateStoreApi.watch}. `Reset` replaces everything the watcher knew:
 * it comes first when the requested start revision was compacted away (the changes in between
 * are lost, so the watch re-reads the prefix and continues from there).
 *
 * @since 0.1.0
 * @category models
 */
export type WatchEvent =
  | { readonly _tag: "Put"; readonly entry: Entry }
  | { readonly _tag: "Delete"; readonly key: string; readonly revision: number }
  | { readonly _tag: "Reset"; readonly snapshot: Snapshot }

/**
 * A lease kept alive by a fiber of the Scope it was granted in, revoked when that Scope closes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Lease {
  readonly id: string
  readonly ttl: Duration.Duration
  /**
   * Whether the lease surely still holds: now < (send time of the last acknowledged keepalive)
   * + TTL - margin. Turns false by itself, without waiting for the store to say so.
   */
  readonly valid: Effect.Effect<boolean>
  /** Completes when the lease is no longer {@link Lease.valid}. */
  readonly lost: Effect.Effect<void>
}

/**
 * Leadership of an election. `token` (the election key's create revision) grows with every new
 * leader; writes made with `{ fence: leadership }` carry it and are refused with `Deposed` once
 * the leadership ended, both locally (lease no longer valid) and in the store (compare on the
 * election key's create revision in the same transaction).
 *
 * @since 0.1.0
 * @category models
 */
export interface Leadership {
  readonly election: string
  /** This candidate's key under the election prefix. */
  readonly key: string
  /** Fencing token. */
  readonly token: number
  readonly lease: Lease
  /** Whether this node may still act as leader (see {@link Lease.valid}). */
  readonly isLeader: Effect.Effect<boolean>
  /** Completes when the leadership ended. */
  readonly deposed: Effect.Effect<void>
}

/**
 * Options of a write.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteOptions {
  /** Binds the key to a lease: it is deleted when the lease lapses or is revoked. */
  readonly lease?: Lease | undefined
  /** Applies the write only while this leadership holds (fails with `Deposed` otherwise). */
  readonly fence?: Leadership | undefined
}

/**
 * Options of {@link StateStoreApi.campaign}.
 *
 * @since 0.1.0
 * @category models
 */
export interface CampaignOptions {
  /** TTL of the lease granted for the candidacy (default: the store's `lease_ttl`). */
  readonly ttl?: Duration.DurationInput | undefined
  /** Runs the candidacy on this lease instead of granting one. */
  readonly lease?: Lease | undefined
}

/**
 * Options of {@link StateStoreApi.lease}.
 *
 * @since 0.1.0
 * @category models
 */
export interface LeaseOptions {
  /**
   * Consulted before each keepalive; while it yields false none is sent (maintenance, tests of
   * what happens to a leader that stalls). Default: always send.
   */
  readonly keepAlive?: Effect.Effect<boolean> | undefined
}

/**
 * The state API.
 *
 * @since 0.1.0
 * @category models
 */
export interface StateStoreApi {
  /**
   * `"etcd"` (Raft mode), `"local"` (single node, the local database), `"gossip"` (eventual),
   * `"pbft"` (Byzantine fault tolerant) or `"hybrid"` (etcd in the site, gossip between sites).
   */
  readonly mode: "etcd" | "local" | "gossip" | "pbft" | "hybrid"
  /** Linearizable read of one key. */
  readonly get: (key: string) => Effect.Effect<Option.Option<Entry>, StateError>
  /** Linearizable read of every key under `prefix`, at one revision, ordered by key. */
  readonly list: (prefix: string) => Effect.Effect<Snapshot, StateError>
  /** Linearizable write; returns its revision. A `StateTimeout` means the outcome is unknown. */
  readonly put: (key: string, value: string, options?: WriteOptions) => Effect.Effect<number, WriteError>
  /**
   * Linearizable compare-and-set: writes only when the key's mod revision is `expected`
   * (0: the key must be absent). Returns the new revision.
   */
  readonly compareAndSet: (
    key: string,
    expected: number,
    value: string,
    options?: WriteOptions,
  ) => Effect.Effect<number, WriteError | CompareFailed>
  /** Linearizable delete; whether the key existed. */
  readonly delete: (key: string, options?: WriteOptions) => Effect.Effect<boolean, WriteError>
  /**
   * Changes under `prefix` after revision `from` (default: from now), in revision order, each
   * once. When `from` was compacted the stream starts with a `Reset` (see {@link WatchEvent}).
   * Reconnects by itself after member failures.
   */
  readonly watch: (prefix: string, from?: number) => Stream.Stream<WatchEvent, StateError>
  /** Grants a lease kept alive for the life of the Scope and revoked when it closes. */
  readonly lease: (
    ttl: Duration.DurationInput,
    options?: LeaseOptions,
  ) => Effect.Effect<Lease, StateError | LeaseLost, Scope.Scope>
  /**
   * Stands for leader of `election` with `value` and waits until elected (the oldest living
   * candidate leads). The candidacy ends with the Scope (resigns) or when its lease lapses.
   */
  readonly campaign: (
    election: string,
    value: string,
    options?: CampaignOptions,
  ) => Effect.Effect<Leadership, StateError | LeaseLost, Scope.Scope>
  /** The current leader's entry of `election` (linearizable read), if any. */
  readonly leader: (election: string) => Effect.Effect<Option.Option<Entry>, StateError>
}

/**
 * The state service.
 *
 * @since 0.1.0
 * @category services
 */
export class StateStore extends Context.Tag("@novacron/dwcp-ass/StateStore")<StateStore, StateStoreApi>() {}
