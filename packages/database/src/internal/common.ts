import { Effect, Either } from "effect"
import { DatabaseError, type MigrationError } from "../DatabaseError.js"
import { type Applied, checksum, type Migration, plan } from "../Migration.js"

/** Wraps a promise-returning call of a backend into a typed failure. */
export const tryPromise =
  (backend: string) =>
  <A>(operation: string, f: () => PromiseLike<A>): Effect.Effect<A, DatabaseError> =>
    Effect.tryPromise({
      try: () => Promise.resolve(f()),
      catch: (cause) => new DatabaseError({ backend, operation, cause }),
    })

/** Wraps a synchronous call of a backend into a typed failure. */
export const trySync =
  (backend: string) =>
  <A>(operation: string, f: () => A): Effect.Effect<A, DatabaseError> =>
    Effect.try({ try: f, catch: (cause) => new DatabaseError({ backend, operation, cause }) })

/** `plan` as a plain throw, for use inside a backend's own transaction callback. */
export const planOrThrow = (
  known: ReadonlyArray<Migration>,
  applied: ReadonlyArray<Applied>,
): ReadonlyArray<Migration> => {
  const p = plan(known, applied)
  if (Either.isLeft(p)) throw p.left
  return p.right
}

/** Splits a failure thrown inside a backend transaction back into the typed errors. */
export const migrationFailure =
  (backend: string) =>
  (cause: unknown): DatabaseError | MigrationError =>
    isMigrationError(cause) ? cause : new DatabaseError({ backend, operation: "migrate", cause })

const isMigrationError = (u: unknown): u is MigrationError =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "MigrationError"

export { checksum }

/** JSON text of a value, `null` for `undefined` so every backend round-trips the same. */
export const toJson = (u: unknown): string => JSON.stringify(u ?? null)
