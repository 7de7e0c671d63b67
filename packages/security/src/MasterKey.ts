/**
 * The master key: 32 random bytes that encrypt the secrets store. Taken from the environment
 * variable `master_key_env` when it is set (the variable is then removed from `process.env`), else
 * from `master_key_file`, else from `<data_dir>.master.key` BESIDE the data directory (for
 * `/var/lib/novacron`: `/var/lib/novacron.master.key`), created (mode 0600) on first start.
 *
 * Like Vault's seal or Consul's gossip key, the key belongs somewhere apart from the data it
 * protects: by default outside the data directory, so a copy of the directory (backup, snapshot)
 * does not carry the key that opens its secrets; in production `master_key_file` on another volume
 * or the environment. A key still in the data directory (`<data_dir>/master.key`, where earlier
 * versions created it, or configured there) is used with a warning at every start. A key file must
 * be mode 0600 (or stricter) and owned by the agent's user, or it is refused.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { DurableFile } from "@novacron/init"
import { Effect } from "effect"
import { KEY_BYTES, keyIdOf } from "./internal/aead.js"
import { errorText, readIfExists } from "./internal/files.js"
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
  settings.master_key_file !== "" ? settings.master_key_file : defaultFile(node)

/**
 * The default key file: `<data_dir>.master.key`, beside the data directory, not in it.
 *
 * @since 0.2.0
 */
export const defaultFile = (node: NodeInfo): string => `${path.resolve(node.data_dir)}.master.key`

/**
 * Where versions before 0.2 created the key: inside the data directory. Still read (with a warning)
 * when the default file does not exist.
 *
 * @since 0.2.0
 */
export const legacyFile = (node: NodeInfo): string => path.join(node.data_dir, "master.key")

/**
 * Decodes a key of exactly 32 bytes written as 64 hex digits or as canonical padded base64 (44
 * characters ending in one `=`, unused bits zero); `undefined` for anything else. Surrounding
 * whitespace (the file's newline) is ignored. Node's lenient base64 decoder would otherwise take
 * any 43 characters of its alphabet, typos included.
 *
 * @since 0.1.0
 */
export const decode = (text: string): Buffer | undefined => {
  const t = text.trim()
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, "hex")
  if (!/^[A-Za-z0-9+/]{43}=$/.test(t)) return undefined
  const key = Buffer.from(t, "base64")
  return key.toString("base64") === t ? key : undefined
}

/**
 * Why a key file's mode or owner is refused, or `undefined` when it is private to `uid`.
 *
 * @since 0.1.0
 */
export const checkPrivate = (
  file: string,
  stat: { readonly mode: number; readonly uid: number },
  uid: number | undefined,
): string | undefined => {
  const mode = (stat.mode & 0o777).toString(8).padStart(3, "0")
  if ((stat.mode & 0o077) !== 0) {
    return `master key file ${file} has mode ${mode} (owner uid ${stat.uid}): group or others may read it; chmod 600 ${file}`
  }
  if (uid !== undefined && stat.uid !== uid) {
    return `master key file ${file} is owned by uid ${stat.uid}, not by the agent's user (uid ${uid}), mode ${mode}; chown it to the agent's user`
  }
  return undefined
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

const statIfExists = async (file: string) => {
  try {
    return await fs.stat(file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
}

/**
 * Reads a key file, failing when it does not hold a 32-byte key (strict hex or base64), when group
 * or others may read it, or when it is not owned by the agent's user.
 *
 * @since 0.1.0
 */
export const readFile = (file: string): Effect.Effect<Buffer | undefined, MasterKeyError> =>
  Effect.gen(function* () {
    const cannotRead = (cause: unknown) =>
      new MasterKeyError({ reason: `cannot read master key: ${errorText(cause)}`, path: file, cause })
    // Mode and owner first: a key anyone may read is refused before it is used.
    const stat = yield* Effect.tryPromise({ try: () => statIfExists(file), catch: cannotRead })
    if (stat === undefined) return undefined
    const refused = checkPrivate(file, stat, process.getuid?.())
    if (refused !== undefined) return yield* new MasterKeyError({ reason: refused, path: file })
    const data = yield* Effect.tryPromise({ try: () => readIfExists(file), catch: cannotRead })
    if (data === undefined) return undefined
    const key = decode(data.toString("utf8"))
    if (key === undefined) {
      return yield* new MasterKeyError({
        reason: "master key file does not hold 32 bytes as 64 hex digits or canonical base64",
        path: file,
      })
    }
    return key
  })

const insideDataDir = (file: string, node: NodeInfo): boolean => {
  const rel = path.relative(path.resolve(node.data_dir), path.resolve(file))
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel))
}

const warnBeside = (file: string) =>
  Effect.logWarning(
    `SECURITY WARNING: master key ${file} is in the data directory, beside the secrets it protects: ` +
      "any copy of the data directory (backup, snapshot, stolen disk) opens every secret. " +
      "Move it out (e.g. to /etc/novacron/master.key, mode 0600, and set security.master_key_file), " +
      "or provide the key in NOVACRON_MASTER_KEY.",
  )

/**
 * Writes a key file atomically with mode 0600.
 *
 * @since 0.1.0
 */
export const writeFile = (file: string, key: Uint8Array): Effect.Effect<void, MasterKeyError> =>
  DurableFile.write(file, encode(key), { mode: 0o600, directoryMode: 0o700 }).pipe(
    Effect.mapError(
      (e) => new MasterKeyError({ reason: `cannot write master key: ${e.reason}`, path: file, cause: e.cause }),
    ),
  )

/**
 * Loads the master key, creating `<data_dir>.master.key` on first start. An explicitly configured
 * `master_key_file` must exist: a missing operator-supplied key is an error, not a reason to invent one.
 *
 * @since 0.1.0
 */
export const load = (settings: SecuritySettings, node: NodeInfo): Effect.Effect<MasterKey, MasterKeyError> =>
  Effect.gen(function* () {
    const env = node.env ?? process.env
    const variable = settings.master_key_env
    const fromEnv = variable === "" ? undefined : env[variable]
    if (fromEnv !== undefined && fromEnv !== "") {
      // Child processes and crash dumps inherit process.env: the key must not stay there.
      if (env === process.env) delete process.env[variable]
      const key = decode(fromEnv)
      if (key === undefined) {
        return yield* new MasterKeyError({
          reason: `environment variable ${variable} does not hold 32 bytes as 64 hex digits or canonical base64`,
        })
      }
      return { key, id: keyIdOf(key), source: { _tag: "Env", variable } } as const
    }
    const file = filePath(settings, node)
    if (insideDataDir(file, node)) yield* warnBeside(file)
    const existing = yield* readFile(file)
    if (existing !== undefined) {
      return { key: existing, id: keyIdOf(existing), source: { _tag: "File", path: file, created: false } } as const
    }
    if (settings.master_key_file === "") {
      // A data directory from before 0.2 holds its key inside: keep using it (its secrets need it), say so.
      const legacy = legacyFile(node)
      const old = yield* readFile(legacy)
      if (old !== undefined) {
        yield* warnBeside(legacy)
        return { key: old, id: keyIdOf(old), source: { _tag: "File", path: legacy, created: false } } as const
      }
    }
    if (settings.master_key_file !== "") {
      return yield* new MasterKeyError({ reason: "configured master key file does not exist", path: file })
    }
    const key = generate()
    yield* writeFile(file, key)
    yield* Effect.logInfo(`created master key ${keyIdOf(key)} in ${file}`)
    return { key, id: keyIdOf(key), source: { _tag: "File", path: file, created: true } } as const
  })
