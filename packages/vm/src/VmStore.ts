/**
 * Where VM records live. The default keeps them in the node's database through its repository
 * (`kv` entries `vm/<id>`, JSON, Schema-decoded on read), so they follow `storage.backend`.
 *
 * @since 0.1.0
 */
import { Database } from "@novacron/database"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { VmRecord } from "./Vm.js"
import { VmStoreError } from "./VmError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Store {
  readonly get: (id: string) => Effect.Effect<Option.Option<VmRecord>, VmStoreError>
  readonly put: (record: VmRecord) => Effect.Effect<void, VmStoreError>
  readonly list: Effect.Effect<ReadonlyArray<VmRecord>, VmStoreError>
  readonly remove: (id: string) => Effect.Effect<boolean, VmStoreError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class VmStore extends Context.Tag("@novacron/vm/VmStore")<VmStore, Store>() {}

const PREFIX = "vm/"
const codec = Schema.parseJson(VmRecord)
const decode = Schema.decodeUnknownEither(codec)
const encode = Schema.encodeSync(codec)

const fromRow = (key: string, raw: string): Effect.Effect<VmRecord, VmStoreError> => {
  const r = decode(raw)
  return r._tag === "Right"
    ? Effect.succeed(r.right)
    : Effect.fail(new VmStoreError({ key, detail: `stored record does not decode: ${r.left.message}` }))
}

/**
 * Records in the node database's key-value table.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerDatabase: Layer.Layer<VmStore, never, Database.Database> = Layer.effect(
  VmStore,
  Effect.map(Database.Database, (db): Store => {
    const fail = (key: string) => (e: { readonly message: string }) => new VmStoreError({ key, detail: e.message })
    return {
      get: (id) =>
        db.kv.get(PREFIX + id).pipe(
          Effect.mapError(fail(PREFIX + id)),
          Effect.flatMap(
            Option.match({
              onNone: () => Effect.succeedNone,
              onSome: (raw) => Effect.asSome(fromRow(PREFIX + id, raw)),
            }),
          ),
        ),
      put: (record) =>
        Effect.mapError(db.kv.set(PREFIX + record.spec.id, encode(record)), fail(PREFIX + record.spec.id)),
      list: db.kv.list(PREFIX).pipe(
        Effect.mapError(fail(PREFIX)),
        Effect.flatMap((rows) => Effect.forEach(rows, ([key, raw]) => fromRow(key, raw))),
      ),
      remove: (id) => Effect.mapError(db.kv.delete(PREFIX + id), fail(PREFIX + id)),
    }
  }),
)
