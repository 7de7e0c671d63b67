import * as fs from "node:fs/promises"
import * as path from "node:path"
import { DurableFile } from "@novacron/init"
import { Effect, Option, Ref } from "effect"
import * as MasterKey from "../MasterKey.js"
import type { RotationResult, SecretsManager } from "../SecretsManager.js"
import { type MasterKeyError, SecretsError } from "../SecurityError.js"
import type { NodeInfo, SecuritySettings } from "../SecuritySettings.js"
import { deriveKey, open, parse, seal } from "./aead.js"
import { errorText, readIfExists } from "./files.js"

const PURPOSE = "novacron/secrets/v1"
/**
 * Version 2 binds each secret to its name and to the store generation it was sealed at; every write
 * re-seals every secret under the next generation, so entries of different versions of the file
 * cannot be mixed, and the generation a file claims is authenticated by its entries. Version 1
 * (name only) is read and rewritten as version 2 on the next write.
 */
const aadOf = (name: string, generation: number | undefined) =>
  Buffer.from(
    generation === undefined ? `novacron/secret:${name}` : `novacron/secret:${name}\0generation:${generation}`,
    "utf8",
  )

/** AES-GCM with random 96-bit IVs: at most 2^32 messages per key (NIST SP 800-38D §8.3). */
export const GCM_MESSAGE_LIMIT = 2 ** 32

interface StoreFile {
  readonly version: 1 | 2
  readonly key_id: string
  /** Version 2: incremented by every write, bound into every secret's associated data. */
  readonly generation?: number
  /** Version 2: messages sealed under the current master key's derived key so far. */
  readonly sealed?: number
  readonly secrets: Readonly<Record<string, string>>
}

interface State {
  readonly master: MasterKey.MasterKey
  readonly key: Buffer
  /** `undefined`: a version 1 store, not yet rewritten. */
  readonly generation: number | undefined
  readonly sealed: number
  readonly secrets: Readonly<Record<string, string>>
}

export interface Options {
  /** Messages allowed per derived key; default {@link GCM_MESSAGE_LIMIT}. */
  readonly maxMessagesPerKey?: number | undefined
}

const fail = (reason: string, cause?: unknown, secret?: string) =>
  new SecretsError({ reason: cause === undefined ? reason : `${reason}: ${errorText(cause)}`, cause, secret })

const readStore = (file: string): Effect.Effect<StoreFile | undefined, SecretsError> =>
  Effect.tryPromise({ try: () => readIfExists(file), catch: (e) => fail("cannot read secrets store", e) }).pipe(
    Effect.flatMap((data) =>
      data === undefined
        ? Effect.succeed(undefined)
        : Effect.try({
            try: () => {
              const parsed = JSON.parse(data.toString("utf8")) as StoreFile
              if (
                (parsed.version !== 1 && parsed.version !== 2) ||
                typeof parsed.key_id !== "string" ||
                typeof parsed.secrets !== "object" ||
                (parsed.version === 2 &&
                  (!Number.isSafeInteger(parsed.generation) || !Number.isSafeInteger(parsed.sealed)))
              ) {
                throw new Error("unrecognised format")
              }
              return parsed
            },
            catch: (e) => fail(`secrets store ${file} is corrupt`, e),
          }),
    ),
  )

const writeStore = (file: string, store: StoreFile) =>
  DurableFile.write(file, `${JSON.stringify(store, null, 2)}\n`, { mode: 0o600, directoryMode: 0o700 }).pipe(
    Effect.mapError((e) => fail("cannot write secrets store", e.cause)),
  )

/**
 * A rotation writes `<key file>.next`, then the re-encrypted store, then renames `.next` over the key
 * file. A crash in between leaves `.next`: if the store was already re-encrypted under it, finish the
 * rename; otherwise the rotation never happened and `.next` is dropped.
 */
const recoverRotation = (keyFile: string, storeFile: string): Effect.Effect<void, SecretsError | MasterKeyError> =>
  Effect.gen(function* () {
    const nextFile = `${keyFile}.next`
    const next = yield* MasterKey.readFile(nextFile)
    if (next === undefined) return
    const store = yield* readStore(storeFile)
    if (store !== undefined && store.key_id === MasterKey.idOf(next)) {
      yield* DurableFile.rename(nextFile, keyFile).pipe(
        Effect.mapError((e) => fail("cannot complete interrupted master key rotation", e.cause)),
      )
      yield* Effect.logWarning(`completed an interrupted master key rotation (key ${MasterKey.idOf(next)})`)
    } else {
      yield* Effect.tryPromise({
        try: () => fs.rm(nextFile, { force: true }),
        catch: (e) => fail(`cannot discard an uncommitted master key rotation (${nextFile})`, e),
      })
      yield* Effect.logWarning("discarded an uncommitted master key rotation")
    }
  })

export const storePath = (node: NodeInfo) => path.join(node.data_dir, "secrets.json")

/** The highest store generation written, kept apart from the store so a restored old store is noticed. */
export const generationPath = (node: NodeInfo) => path.join(node.data_dir, "secrets.generation")

const readGeneration = (file: string): Effect.Effect<number | undefined, SecretsError> =>
  Effect.tryPromise({ try: () => readIfExists(file), catch: (e) => fail(`cannot read ${file}`, e) }).pipe(
    Effect.flatMap((data) => {
      if (data === undefined) return Effect.succeed(undefined)
      const n = Number(data.toString("utf8").trim())
      return Number.isSafeInteger(n) && n >= 0 ? Effect.succeed(n) : Effect.fail(fail(`${file} is corrupt`))
    }),
  )

export const make = (
  settings: SecuritySettings,
  node: NodeInfo,
  options: Options = {},
): Effect.Effect<SecretsManager, SecretsError | MasterKeyError> =>
  Effect.gen(function* () {
    const limit = options.maxMessagesPerKey ?? GCM_MESSAGE_LIMIT
    const storeFile = storePath(node)
    const generationFile = generationPath(node)
    const keyFile = MasterKey.filePath(settings, node)
    yield* recoverRotation(keyFile, storeFile)
    if (settings.master_key_file === "") yield* recoverRotation(MasterKey.legacyFile(node), storeFile)
    const master = yield* MasterKey.load(settings, node)
    const store = yield* readStore(storeFile)
    if (store !== undefined && store.key_id !== master.id) {
      return yield* fail(
        `secrets store is encrypted under master key ${store.key_id} but the loaded master key is ${master.id}`,
      )
    }
    const written = yield* readGeneration(generationFile)
    const generation = store?.version === 2 ? store.generation! : store === undefined ? 0 : undefined
    if (written !== undefined && (generation ?? 0) < written) {
      return yield* fail(
        `secrets store ${storeFile} is at generation ${generation ?? "1 (version 1 format)"} but generation ${written} ` +
          `was written (${generationFile}): the store was rolled back (restored from an older copy?). ` +
          "Restore the latest secrets.json, or, to accept the old one knowingly, delete secrets.generation",
      )
    }
    const state = yield* Ref.make<State>({
      master,
      key: deriveKey(master.key, PURPOSE),
      generation,
      sealed: store?.sealed ?? 0,
      secrets: store?.secrets ?? {},
    })
    const lock = yield* Effect.makeSemaphore(1)

    const decrypt = (s: State, name: string, encoded: string): Effect.Effect<Buffer, SecretsError> => {
      const parsed = parse(Buffer.from(encoded, "base64"))
      if (typeof parsed === "string") return Effect.fail(fail(parsed, undefined, name))
      const plain = open(s.key, parsed, aadOf(name, s.generation))
      return plain === undefined
        ? Effect.fail(fail("authentication failed (tampered, rolled back or wrong key)", undefined, name))
        : Effect.succeed(plain)
    }

    /** Every secret re-sealed under `key` at the next generation, then written durably. */
    const commit = (
      s: State,
      plain: ReadonlyMap<string, Uint8Array>,
      master: MasterKey.MasterKey,
      key: Buffer,
      sealedBefore: number,
    ): Effect.Effect<State, SecretsError> =>
      Effect.gen(function* () {
        const sealed = sealedBefore + plain.size
        if (sealed > limit) {
          return yield* fail(
            `the secrets key has sealed ${sealedBefore} messages; ${plain.size} more would pass the AES-GCM limit of ${limit}: rotate the master key`,
          )
        }
        const next = (s.generation ?? 0) + 1
        const secrets: Record<string, string> = {}
        for (const [name, value] of plain)
          secrets[name] = seal(key, master.id, value, aadOf(name, next)).toString("base64")
        yield* writeStore(storeFile, { version: 2, key_id: master.id, generation: next, sealed, secrets })
        yield* DurableFile.write(generationFile, `${next}\n`, { mode: 0o600, directoryMode: 0o700 }).pipe(
          Effect.mapError((e) => fail(`cannot write ${generationFile}`, e.cause)),
        )
        return { master, key, generation: next, sealed, secrets }
      })

    const plaintexts = (s: State) =>
      Effect.gen(function* () {
        const out = new Map<string, Uint8Array>()
        for (const [name, encoded] of Object.entries(s.secrets)) out.set(name, yield* decrypt(s, name, encoded))
        return out
      })

    const get = (name: string) =>
      Effect.flatMap(Ref.get(state), (s) => {
        const encoded = Object.hasOwn(s.secrets, name) ? s.secrets[name] : undefined
        return encoded === undefined ? Effect.succeed(Option.none()) : Effect.asSome(decrypt(s, name, encoded))
      })

    const set = (name: string, value: string | Uint8Array) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          if (name === "") return yield* fail("secret name must not be empty")
          const s = yield* Ref.get(state)
          const all = yield* plaintexts(s)
          all.set(name, typeof value === "string" ? Buffer.from(value, "utf8") : value)
          yield* Ref.set(state, yield* commit(s, all, s.master, s.key, s.sealed))
        }),
      )

    const remove = (name: string) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const s = yield* Ref.get(state)
          if (!Object.hasOwn(s.secrets, name)) return false
          const all = yield* plaintexts(s)
          all.delete(name)
          yield* Ref.set(state, yield* commit(s, all, s.master, s.key, s.sealed))
          return true
        }),
      )

    const rotateMasterKey = (supplied?: Uint8Array) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const s = yield* Ref.get(state)
          if (s.master.source._tag === "Env" && supplied === undefined) {
            return yield* fail(
              `the master key comes from ${s.master.source.variable}: pass the new key to rotateMasterKey and update the variable`,
            )
          }
          const newKey = supplied === undefined ? MasterKey.generate() : Buffer.from(supplied)
          if (newKey.length !== 32) return yield* fail("a master key is 32 bytes")
          const newId = MasterKey.idOf(newKey)
          const derived = deriveKey(newKey, PURPOSE)
          // Open everything first: a secret that fails to open aborts before any write.
          const all = yield* plaintexts(s)
          const source = s.master.source
          const master: MasterKey.MasterKey = {
            key: newKey,
            id: newId,
            source: source._tag === "File" ? { _tag: "File", path: source.path, created: false } : source,
          }
          let next: State
          if (source._tag === "File") {
            const nextFile = `${source.path}.next`
            yield* MasterKey.writeFile(nextFile, newKey)
            next = yield* commit(s, all, master, derived, 0)
            yield* DurableFile.rename(nextFile, source.path).pipe(
              Effect.mapError((e) => fail("cannot install the new master key", e.cause)),
            )
          } else {
            next = yield* commit(s, all, master, derived, 0)
            yield* Effect.logWarning(`master key rotated to ${newId}: set ${source.variable} to the new key now`)
          }
          yield* Ref.set(state, next)
          yield* Effect.logInfo(`master key rotated from ${s.master.id} to ${newId}`)
          return {
            previousKeyId: s.master.id,
            keyId: newId,
            reencrypted: all.size,
          } satisfies RotationResult
        }),
      )

    return {
      get,
      getString: (name: string) =>
        Effect.map(
          get(name),
          Option.map((b) => b.toString("utf8")),
        ),
      set,
      remove,
      names: Effect.map(Ref.get(state), (s) => Object.keys(s.secrets).sort()),
      masterKeyId: Effect.map(Ref.get(state), (s) => s.master.id),
      masterKeySource: Effect.map(Ref.get(state), (s) => s.master.source),
      rotateMasterKey,
    } satisfies SecretsManager
  })
