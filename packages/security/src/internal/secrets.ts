import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Option, Ref } from "effect"
import * as MasterKey from "../MasterKey.js"
import type { RotationResult, SecretsManager } from "../SecretsManager.js"
import { type MasterKeyError, SecretsError } from "../SecurityError.js"
import type { NodeInfo, SecuritySettings } from "../SecuritySettings.js"
import { deriveKey, open, parse, seal } from "./aead.js"
import { errorText, readIfExists, renameDurable, writeAtomic } from "./files.js"

const PURPOSE = "novacron/secrets/v1"
const aadOf = (name: string) => Buffer.from(`novacron/secret:${name}`, "utf8")

interface StoreFile {
  readonly version: 1
  readonly key_id: string
  readonly secrets: Readonly<Record<string, string>>
}

interface State {
  readonly master: MasterKey.MasterKey
  readonly key: Buffer
  readonly secrets: Readonly<Record<string, string>>
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
              if (parsed.version !== 1 || typeof parsed.key_id !== "string" || typeof parsed.secrets !== "object") {
                throw new Error("unrecognised format")
              }
              return parsed
            },
            catch: (e) => fail(`secrets store ${file} is corrupt`, e),
          }),
    ),
  )

const writeStore = (file: string, store: StoreFile) =>
  Effect.tryPromise({
    try: () => writeAtomic(file, `${JSON.stringify(store, null, 2)}\n`, 0o600),
    catch: (e) => fail("cannot write secrets store", e),
  })

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
      yield* Effect.tryPromise({
        try: () => renameDurable(nextFile, keyFile),
        catch: (e) => fail("cannot complete interrupted master key rotation", e),
      })
      yield* Effect.logWarning(`completed an interrupted master key rotation (key ${MasterKey.idOf(next)})`)
    } else {
      yield* Effect.promise(() => fs.rm(nextFile, { force: true }))
      yield* Effect.logWarning("discarded an uncommitted master key rotation")
    }
  })

export const storePath = (node: NodeInfo) => path.join(node.data_dir, "secrets.json")

export const make = (
  settings: SecuritySettings,
  node: NodeInfo,
): Effect.Effect<SecretsManager, SecretsError | MasterKeyError> =>
  Effect.gen(function* () {
    const storeFile = storePath(node)
    const keyFile = MasterKey.filePath(settings, node)
    yield* recoverRotation(keyFile, storeFile)
    const master = yield* MasterKey.load(settings, node)
    const store = yield* readStore(storeFile)
    if (store !== undefined && store.key_id !== master.id) {
      return yield* fail(
        `secrets store is encrypted under master key ${store.key_id} but the loaded master key is ${master.id}`,
      )
    }
    const state = yield* Ref.make<State>({
      master,
      key: deriveKey(master.key, PURPOSE),
      secrets: store?.secrets ?? {},
    })
    const lock = yield* Effect.makeSemaphore(1)
    const persist = (s: State) => writeStore(storeFile, { version: 1, key_id: s.master.id, secrets: s.secrets })

    const decrypt = (s: State, name: string, encoded: string): Effect.Effect<Buffer, SecretsError> => {
      const parsed = parse(Buffer.from(encoded, "base64"))
      if (typeof parsed === "string") return Effect.fail(fail(parsed, undefined, name))
      const plain = open(s.key, parsed, aadOf(name))
      return plain === undefined
        ? Effect.fail(fail("authentication failed (tampered or wrong key)", undefined, name))
        : Effect.succeed(plain)
    }

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
          const plain = typeof value === "string" ? Buffer.from(value, "utf8") : value
          const next = {
            ...s,
            secrets: { ...s.secrets, [name]: seal(s.key, s.master.id, plain, aadOf(name)).toString("base64") },
          }
          yield* persist(next)
          yield* Ref.set(state, next)
        }),
      )

    const remove = (name: string) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          const s = yield* Ref.get(state)
          if (!Object.hasOwn(s.secrets, name)) return false
          const { [name]: _, ...rest } = s.secrets
          const next = { ...s, secrets: rest }
          yield* persist(next)
          yield* Ref.set(state, next)
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
          // Re-encrypt everything in memory first: a secret that fails to open aborts before any write.
          const reencrypted: Record<string, string> = {}
          for (const [name, encoded] of Object.entries(s.secrets)) {
            const plain = yield* decrypt(s, name, encoded)
            reencrypted[name] = seal(derived, newId, plain, aadOf(name)).toString("base64")
          }
          const source = s.master.source
          const next: State = {
            master: {
              key: newKey,
              id: newId,
              source: source._tag === "File" ? { _tag: "File", path: source.path, created: false } : source,
            },
            key: derived,
            secrets: reencrypted,
          }
          if (source._tag === "File") {
            const nextFile = `${source.path}.next`
            yield* MasterKey.writeFile(nextFile, newKey)
            yield* persist(next)
            yield* Effect.tryPromise({
              try: () => renameDurable(nextFile, source.path),
              catch: (e) => fail("cannot install the new master key", e),
            })
          } else {
            yield* persist(next)
            yield* Effect.logWarning(`master key rotated to ${newId}: set ${source.variable} to the new key now`)
          }
          yield* Ref.set(state, next)
          yield* Effect.logInfo(`master key rotated from ${s.master.id} to ${newId}`)
          return {
            previousKeyId: s.master.id,
            keyId: newId,
            reencrypted: Object.keys(reencrypted).length,
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
