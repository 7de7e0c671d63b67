/**
 * Ownership of a VM: it runs on exactly one host. Starting needs the node to hold the VM's term; the
 * term is a fencing token that grows with every acquisition, so a node holding an older term knows
 * it lost the VM. The terms live in the cluster state (`@novacron/dwcp-ass`): linearizable on etcd,
 * the node database on the single-node default; every change is a compare-and-set on the record's
 * revision, so two nodes racing for one VM cannot both win.
 *
 * @since 0.1.0
 */
import { StateStore } from "@novacron/dwcp-ass"
import { Context, Effect, Layer, Option, Schedule, Schema } from "effect"
import { VmOwnershipError } from "./VmError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Ownership {
  /** Takes (or renews) this node's ownership and returns the new term. */
  readonly acquire: (vmId: string) => Effect.Effect<number, VmOwnershipError>
  /** Fails unless this node still holds `term` for the VM. */
  readonly assert: (vmId: string, term: number) => Effect.Effect<void, VmOwnershipError>
  /**
   * Live migration's switchover: this node takes the VM from whichever node holds exactly `fromTerm`
   * (the source's term, handed over by the source) and returns the next term. Fails when the holder
   * moved on (another term) or released it, so a destination can never fence a newer owner.
   */
  readonly takeOver: (vmId: string, fromTerm: number) => Effect.Effect<number, VmOwnershipError>
  /** Gives the VM up (deleted); a later acquire anywhere starts from a higher term. */
  readonly release: (vmId: string) => Effect.Effect<void, VmOwnershipError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class VmOwnership extends Context.Tag("@novacron/vm/VmOwnership")<VmOwnership, Ownership>() {}

const Entry = Schema.parseJson(Schema.Struct({ node: Schema.String, term: Schema.Int, released: Schema.Boolean }))
const decode = Schema.decodeUnknownEither(Entry)
const encode = Schema.encodeSync(Entry)

/** Another writer changed the record between our read and our compare-and-set: read again. */
class Raced {
  readonly _tag = "Raced"
}

/**
 * Ownership on the cluster state: the record `vm-owner/<id>` holds `{node, term, released}`; taking
 * it is a compare-and-set on the revision read, retried when another writer got there first.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (nodeId: string): Layer.Layer<VmOwnership, never, StateStore.StateStore> =>
  Layer.effect(
    VmOwnership,
    Effect.gen(function* () {
      const state = yield* StateStore.StateStore
      const key = (id: string) => `vm-owner/${id}`
      const fail = (id: string) => (e: { readonly message: string }) => new VmOwnershipError({ id, detail: e.message })
      const read = (id: string) =>
        state.get(key(id)).pipe(
          Effect.mapError(fail(id)),
          Effect.flatMap(
            Option.match({
              onNone: () => Effect.succeed({ revision: 0, entry: Option.none<typeof Entry.Type>() }),
              onSome: (e) => {
                const r = decode(e.value)
                return r._tag === "Right"
                  ? Effect.succeed({ revision: e.modRevision, entry: Option.some(r.right) })
                  : Effect.fail(
                      new VmOwnershipError({
                        id,
                        detail: `${key(id)} at revision ${e.modRevision} does not decode: ${r.left.message}`,
                      }),
                    )
              },
            }),
          ),
        )
      const swap = (id: string, revision: number, entry: typeof Entry.Type) =>
        state.compareAndSet(key(id), revision, encode(entry)).pipe(
          Effect.catchTag("CompareFailed", () => Effect.fail(new Raced())),
          Effect.mapError((e) => (e instanceof Raced ? e : fail(id)(e))),
        )
      // A lost race re-reads; contention on one VM is a handful of nodes, so a short bound is plenty.
      const retryRaces = <A>(effect: Effect.Effect<A, VmOwnershipError | Raced>, id: string) =>
        effect.pipe(
          Effect.retry({ schedule: Schedule.recurs(32), while: (e) => e instanceof Raced }),
          Effect.catchIf(
            (e): e is Raced => e instanceof Raced,
            () => Effect.fail(new VmOwnershipError({ id, detail: "too much contention on its record" })),
          ),
        )
      return {
        acquire: (id) =>
          retryRaces(
            Effect.gen(function* () {
              const { revision, entry } = yield* read(id)
              if (Option.isSome(entry) && !entry.value.released && entry.value.node !== nodeId) {
                return yield* new VmOwnershipError({
                  id,
                  detail: `owned by node ${entry.value.node} (term ${entry.value.term})`,
                })
              }
              const term = Option.isSome(entry) ? entry.value.term + 1 : 1
              yield* swap(id, revision, { node: nodeId, term, released: false })
              return term
            }),
            id,
          ),
        assert: (id, term) =>
          Effect.flatMap(read(id), ({ entry: current }) =>
            Option.isSome(current) &&
            !current.value.released &&
            current.value.node === nodeId &&
            current.value.term === term
              ? Effect.void
              : Effect.fail(
                  new VmOwnershipError({
                    id,
                    detail: Option.isSome(current)
                      ? `term ${term} is stale: node ${current.value.node} holds term ${current.value.term}${current.value.released ? " (released)" : ""}`
                      : `term ${term} is not held: no owner recorded`,
                  }),
                ),
          ),
        takeOver: (id, fromTerm) =>
          retryRaces(
            Effect.gen(function* () {
              const { revision, entry } = yield* read(id)
              if (Option.isNone(entry) || entry.value.released || entry.value.term !== fromTerm) {
                return yield* new VmOwnershipError({
                  id,
                  detail: Option.isNone(entry)
                    ? `cannot take over term ${fromTerm}: no owner recorded`
                    : `cannot take over term ${fromTerm}: node ${entry.value.node} holds term ${entry.value.term}${entry.value.released ? " (released)" : ""}`,
                })
              }
              const term = fromTerm + 1
              yield* swap(id, revision, { node: nodeId, term, released: false })
              return term
            }),
            id,
          ),
        release: (id) =>
          retryRaces(
            Effect.flatMap(read(id), ({ revision, entry }) =>
              Option.isSome(entry) && entry.value.node === nodeId && !entry.value.released
                ? swap(id, revision, { ...entry.value, released: true })
                : Effect.void,
            ),
            id,
          ),
      }
    }),
  )
