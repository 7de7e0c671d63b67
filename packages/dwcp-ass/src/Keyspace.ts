/**
 * A typed keyspace: every key under a prefix holds one Schema's values (stored as JSON). Reads
 * decode; a stored value that does not decode fails with `StateDecodeError` naming the key and
 * revision. Consistency is the store's (see {@link StateStore}).
 *
 * @since 0.1.0
 */
import { Effect, Option, ParseResult, Schema, Stream } from "effect"
import { type CompareFailed, DecodeError, type StateError, type WriteError } from "./StateError.js"
import { type Entry, StateStore, type WriteOptions } from "./StateStore.js"

/**
 * A decoded entry.
 *
 * @since 0.1.0
 * @category models
 */
export interface Item<A> {
  /** The key without the keyspace prefix. */
  readonly id: string
  readonly key: string
  readonly value: A
  readonly createRevision: number
  readonly modRevision: number
  readonly version: number
}

/**
 * A decoded change (see `WatchEvent`).
 *
 * @since 0.1.0
 * @category models
 */
export type Event<A> =
  | { readonly _tag: "Put"; readonly item: Item<A> }
  | { readonly _tag: "Delete"; readonly id: string; readonly revision: number }
  | { readonly _tag: "Reset"; readonly items: ReadonlyArray<Item<A>>; readonly revision: number }

/**
 * @since 0.1.0
 * @category models
 */
export interface Keyspace<A, I = A> {
  readonly prefix: string
  readonly schema: Schema.Schema<A, I>
  readonly key: (id: string) => string
  readonly get: (id: string) => Effect.Effect<Option.Option<Item<A>>, StateError | DecodeError, StateStore>
  /** Every item, ordered by id, at one revision. */
  readonly list: Effect.Effect<
    { readonly items: ReadonlyArray<Item<A>>; readonly revision: number },
    StateError | DecodeError,
    StateStore
  >
  /** Fails with `StateDecodeError` (revision 0) when `value` does not encode. */
  readonly put: (
    id: string,
    value: A,
    options?: WriteOptions,
  ) => Effect.Effect<number, WriteError | DecodeError, StateStore>
  readonly compareAndSet: (
    id: string,
    expected: number,
    value: A,
    options?: WriteOptions,
  ) => Effect.Effect<number, WriteError | CompareFailed | DecodeError, StateStore>
  readonly delete: (id: string, options?: WriteOptions) => Effect.Effect<boolean, WriteError, StateStore>
  /** Decoded changes after revision `from`; ends with `StateDecodeError` at a value that does not decode. */
  readonly watch: (from?: number) => Stream.Stream<Event<A>, StateError | DecodeError, StateStore>
}

/**
 * A keyspace of `schema` values under `prefix` (end it with `/`).
 *
 * @example
 * ```ts
 * import { Keyspace } from "@novacron/dwcp-ass"
 * import { Effect, Schema } from "effect"
 *
 * const VmRecord = Schema.Struct({ owner: Schema.String, vcpus: Schema.Int })
 * const vms = Keyspace.make("vm/", VmRecord)
 *
 * const move = Effect.gen(function* () {
 *   const vm = yield* vms.get("vm-7")
 *   if (vm._tag === "Some") {
 *     yield* vms.compareAndSet("vm-7", vm.value.modRevision, { ...vm.value.value, owner: "node-2" })
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, I>(prefix: string, schema: Schema.Schema<A, I>): Keyspace<A, I> => {
  const json = Schema.parseJson(schema)
  const decode = Schema.decodeUnknownEither(json)
  const encode = Schema.encodeEither(json)
  const key = (id: string) => prefix + id

  const item = (e: Entry): Effect.Effect<Item<A>, DecodeError> => {
    const r = decode(e.value)
    return r._tag === "Right"
      ? Effect.succeed({
          id: e.key.slice(prefix.length),
          key: e.key,
          value: r.right,
          createRevision: e.createRevision,
          modRevision: e.modRevision,
          version: e.version,
        })
      : Effect.fail(
          new DecodeError({
            key: e.key,
            revision: e.modRevision,
            message: `${e.key} at revision ${e.modRevision}: ${ParseResult.TreeFormatter.formatErrorSync(r.left)}`,
          }),
        )
  }

  const text = (id: string, value: A) => {
    const r = encode(value)
    return r._tag === "Right"
      ? Effect.succeed(r.right)
      : Effect.fail(
          new DecodeError({
            key: key(id),
            revision: 0,
            message: `${key(id)}: value does not encode: ${ParseResult.TreeFormatter.formatErrorSync(r.left)}`,
          }),
        )
  }

  return {
    prefix,
    schema,
    key,
    get: (id) =>
      StateStore.pipe(
        Effect.flatMap((s) => s.get(key(id))),
        Effect.flatMap(Option.match({ onNone: () => Effect.succeedNone, onSome: (e) => Effect.asSome(item(e)) })),
      ),
    list: StateStore.pipe(
      Effect.flatMap((s) => s.list(prefix)),
      Effect.flatMap((snap) =>
        Effect.map(Effect.forEach(snap.entries, item), (items) => ({ items, revision: snap.revision })),
      ),
    ),
    put: (id, value, options) =>
      Effect.flatMap(text(id, value), (t) => Effect.flatMap(StateStore, (s) => s.put(key(id), t, options))),
    compareAndSet: (id, expected, value, options) =>
      Effect.flatMap(text(id, value), (t) =>
        Effect.flatMap(StateStore, (s) => s.compareAndSet(key(id), expected, t, options)),
      ),
    delete: (id, options) => Effect.flatMap(StateStore, (s) => s.delete(key(id), options)),
    watch: (from) =>
      Stream.unwrap(
        Effect.map(StateStore, (s) =>
          s.watch(prefix, from).pipe(
            Stream.mapEffect(
              (e): Effect.Effect<Event<A>, DecodeError> =>
                e._tag === "Put"
                  ? Effect.map(item(e.entry), (i) => ({ _tag: "Put", item: i }))
                  : e._tag === "Delete"
                    ? Effect.succeed({ _tag: "Delete", id: e.key.slice(prefix.length), revision: e.revision })
                    : Effect.map(Effect.forEach(e.snapshot.entries, item), (items) => ({
                        _tag: "Reset",
                        items,
                        revision: e.snapshot.revision,
                      })),
            ),
          ),
        ),
      ),
  }
}
