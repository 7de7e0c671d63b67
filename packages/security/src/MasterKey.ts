/**
 * The master key: 32 random bytes that encrypt the secrets store. Taken from the environment
 * variable `master_key_env` when it is set, else from `master_key_file`, else from
 * `<data_dir>/master.key`, which is created (mode 0600) on first start.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect } from "effect"
import { KEY_BYTES, keyIdOf } from "./internal/aead.js"
import { errorText, readIfExists, writeAtomic } from "./internal/files.js"
import { MasterKeyError } from "./SecurityError.js"
import type { NodeInfo, SecuritySettings } from "./SecuritySettings.js"

/**
 * Where the key came from.
 *
 * @since 0.1.0
 */
export type MasterKeySource =
  | { readonly _tag: "Env"; readonly variable: string }
  | { readonly _tag: "File"; readonly path: string; readonly created: boolean }

/**
 * A loaded master key.
 *
 * @since 0.1.0
 */
export interface MasterKey {
  readonly key: Buffer
  /** Public id: first 16 hex digits of the key's SHA-256. Recorded beside ciphertexts. */
  readonly id: string
  readonly source: MasterKeySource
}

/**
 * The key file path the settings select.
 *
 * @since 0.1.0
 */
export const filePath = (settings: SecuritySettings, node: NodeInfo): string =>
  settings.master_key_file !== "" ? settings.master_key_file : path.join(node.data_dir, "master.key")

/**
 * Decodes a key written as base64 or hex; `undefined` unless it is exactly 32 bytes.
 *
 * @since 0.1.0
 */
export const decode = (text: string): Buffer | undefined => {
  const t = text.trim()
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, "hex") : Buffer.from(t, "base64")
  return key.length === KEY_BYTES ? key : undefined
}

/**
 * The file form of a key (base64 and a newline).
 *
 * @since 0.1.0
 */
export const encode = (key: Uint8Array): string => `${Buffer.from(key).toString("base64")}\n`

/**
 * A fresh random key.
 *
 * @since 0.1.0
 */
export const generate = (): Buffer => randomBytes(KEY_BYTES)

/**
 * The public id of a key.
 *
 * @since 0.1.0
 */
export const idOf = (key: Uint8Array): string => keyIdOf(key)

/**
 * Reads a key file, failing when it does not hold a 32-byte key. Warns when group or others may read it.
 *
 * @since 0.1.0
 */
export const readFile = (file: string): Effect.Effect<Buffer | undefined, MasterKeyError> =>
  Effect.gen(function* () {
    const data = yield* Effect.tryPromise({
      try: () => readIfExists(file),
      catch: (cause) =>
        new MasterKeyError({ reason: `cannot read master key: ${errorText(cause)}`, path: file, cause }),
    })
    if (data === undefined) return undefined
    const key = decode(data.toString("utf8"))
    if (key === undefined) {
      return yield* new MasterKeyError({ reason: "master key file does not hold 32 bytes (base64 or hex)", path: file })
    }
    const stat = yield* Effect.promise(() => fs.stat(file))
    if ((stat.mode & 0o077) !== 0) {
      yield* Effect.logWarning(
        `master key file ${file} is readable by group or others (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it`,
      )
    }
    return key
  })

/**
 * Writes a key file atomically with mode 0600.
 *
 * @since 0.1.0
 */
export const writeFile = (file: string, key: Uint8Array): Effect.Effect<void, MasterKeyError> =>
  Effect.tryPromise({
    try: () => writeAtomic(file, encode(key), 0o600),
    catch: (cause) => new MasterKeyError({ reason: `cannot write master key: ${errorText(cause)}`, path: file, cause }),
  })

/**
 * Loads the master key, creating `<data_dir>/master.key` on first start. An explicitly configured
 * `master_key_file` must exist: a missing operator-supplied key is an error, not a reason to invent one.
 *
 * @since 0.1.0
 */
export const load = (settings: SecuritySettings, node: NodeInfo): Effect.Effect<MasterKey, MasterKeyError> =>
  Effect.gen(function* () {
    const env = node.env ?? process.env
    const fromEnv = settings.master_key_env === "" ? undefined : env[settings.master_key_env]
    if (fromEnv !== undefined && fromEnv !== "") {
      const key = decode(fromEnv)
      if (key === undefined) {
        return yield* new MasterKeyError({
          reason: `environment variable ${settings.master_key_env} does not hold 32 bytes (base64 or hex)`,
        })
      }
      return { key, id: keyIdOf(key), source: { _tag: "Env", variable: settings.master_key_env } } as const
    }
    const file = filePath(settings, node)
    const existing = yield* readFile(file)
    if (existing !== undefined) {
      return { key: existing, id: keyIdOf(existing), source: { _tag: "File", path: file, created: false } } as const
    }
    if (settings.master_key_file !== "") {
      return yield* new MasterKeyError({ reason: "configured master key file does not exist", path: file })
    }
    const key = generate()
    yield* writeFile(file, key)
    yield* Effect.logInfo(`created master key ${keyIdOf(key)} in ${file}`)
    return { key, id: keyIdOf(key), source: { _tag: "File", path: file, created: true } } as const
  })
