/**
 * Ownership of a VM: it runs on exactly one host. Starting needs the node to hold the VM's term; the
 * term is a fencing token that grows with every acquisition, so a node holding an older term knows
 * it lost the VM. This module is the narrow port; the local implementation keeps terms in the node
 * database (single-node default), and the cluster state's fencing token plugs in behind the same Tag.
 *
 * @since 0.1.0
 */
import { Database } from "@novacron/database"
import { Context, Effect, Layer, Option, Schema } from "effect"
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

/**
 * Terms in the node database (`kv` entries `vm-owner/<id>`). A VM owned by another node id is
 * refused: moving it is the migration's job, which transfers the term.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLocal = (nodeId: string): Layer.Layer<VmOwnership, never, Database.Database> =>
  Layer.effect(
    VmOwnership,
    Effect.gen(function* () {
      const db = yield* Database.Database
      // One node process: a semaphore serializes the read-modify-write of a term.
      const lock = yield* Effect.makeSemaphore(1)
      const key = (id: string) => `vm-owner/${id}`
      const read = (id: string) =>
        db.kv.get(key(id)).pipe(
          Effect.mapError((e) => new VmOwnershipError({ id, detail: e.message })),
          Effect.flatMap(
            Option.match({
              onNone: () => Effect.succeedNone,
              onSome: (raw) => {
                const r = decode(raw)
                return r._tag === "Right"
                  ? Effect.succeedSome(r.right)
                  : Effect.fail(new VmOwnershipError({ id, detail: `stored term does not decode: ${r.left.message}` }))
              },
            }),
          ),
        )
      const write = (id: string, entry: typeof Entry.Type) =>
        Effect.mapError(db.kv.set(key(id), encode(entry)), (e) => new VmOwnershipError({ id, detail: e.message }))
      return {
        acquire: (id) =>
          lock.withPermits(1)(
            Effect.gen(function* () {
              const current = yield* read(id)
              if (Option.isSome(current) && !current.value.released && current.value.node !== nodeId) {
                return yield* new VmOwnershipError({
                  id,
                  detail: `owned by node ${current.value.node} (term ${current.value.term})`,
                })
              }
              const term = Option.isSome(current) ? current.value.term + 1 : 1
              yield* write(id, { node: nodeId, term, released: false })
              return term
            }),
          ),
        assert: (id, term) =>
          Effect.flatMap(read(id), (current) =>
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
        release: (id) =>
          lock.withPermits(1)(
            Effect.flatMap(read(id), (current) =>
              Option.isSome(current) ? write(id, { ...current.value, released: true }) : Effect.void,
            ),
          ),
      }
    }),
  )
