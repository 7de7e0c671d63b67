/**
 * AES-256-GCM encryption for other components, with associated data and key ids. Data keys are
 * random, kept in the secrets store (so a master key rotation re-encrypts them too), and never
 * forgotten on rotation: a ciphertext names the key that sealed it and stays readable.
 *
 * Envelope: `version(1) | keyIdLength(1) | keyId | iv(12) | tag(16) | ciphertext`.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import { Context, Effect, Layer, Option, Ref } from "effect"
import { KEY_BYTES, keyIdOf, open, parse, seal } from "./internal/aead.js"
import { SecretsManager } from "./SecretsManager.js"
import { DecryptionError, SecretsError } from "./SecurityError.js"

/**
 * The encryption service.
 *
 * @since 0.1.0
 */
export interface Encryption {
  /** Id of the key that new ciphertexts are sealed with. */
  readonly currentKeyId: Effect.Effect<string>
  /** Every key id that can still be opened. */
  readonly keyIds: Effect.Effect<ReadonlyArray<string>>
  /** Seals `plaintext`; `aad` (default empty) must be given again, identical, to decrypt. */
  readonly encrypt: (plaintext: Uint8Array, aad?: Uint8Array) => Effect.Effect<Buffer>
  readonly decrypt: (envelope: Uint8Array, aad?: Uint8Array) => Effect.Effect<Buffer, DecryptionError>
  /** Creates a new current key; older keys remain for decryption. Returns the new id. */
  readonly rotateKey: Effect.Effect<string, SecretsError>
}

/**
 * The service tag.
 *
 * @since 0.1.0
 */
export const Encryption = Context.GenericTag<Encryption>("@novacron/security/Encryption")

/**
 * Name of the secret holding the data keys.
 *
 * @since 0.1.0
 */
export const keysSecret = "novacron.encryption.keys"

interface Keyring {
  readonly current: string
  readonly keys: ReadonlyMap<string, Buffer>
}

const EMPTY = Buffer.alloc(0)

const fromRing = (
  ring: Ref.Ref<Keyring>,
  save: (ring: Keyring) => Effect.Effect<void, SecretsError>,
  lock: Effect.Semaphore,
): Encryption => ({
  currentKeyId: Effect.map(Ref.get(ring), (r) => r.current),
  keyIds: Effect.map(Ref.get(ring), (r) => [...r.keys.keys()]),
  encrypt: (plaintext, aad = EMPTY) =>
    Effect.map(Ref.get(ring), (r) => seal(r.keys.get(r.current)!, r.current, plaintext, aad)),
  decrypt: (envelope, aad = EMPTY) =>
    Effect.flatMap(Ref.get(ring), (r) => {
      const parsed = parse(envelope)
      if (typeof parsed === "string") return Effect.fail(new DecryptionError({ reason: parsed }))
      const key = r.keys.get(parsed.keyId)
      if (key === undefined) return Effect.fail(new DecryptionError({ reason: "unknown key", keyId: parsed.keyId }))
      const plain = open(key, parsed, aad)
      return plain === undefined
        ? Effect.fail(
            new DecryptionError({ reason: "authentication failed (tampered data or wrong aad)", keyId: parsed.keyId }),
          )
        : Effect.succeed(plain)
    }),
  // Serialized: two concurrent rotations must not each save a ring missing the other's key.
  rotateKey: lock.withPermits(1)(
    Effect.gen(function* () {
      const key = randomBytes(KEY_BYTES)
      const id = keyIdOf(key)
      const r = yield* Ref.get(ring)
      const next = { current: id, keys: new Map([...r.keys, [id, key]]) }
      yield* save(next)
      yield* Ref.set(ring, next)
      return id
    }),
  ),
})

/**
 * An in-memory service over given keys (tests, tools). Rotation keeps the new key in memory only.
 *
 * @since 0.1.0
 */
export const fromKeys = (keys: ReadonlyMap<string, Uint8Array>, current: string): Effect.Effect<Encryption> =>
  Effect.gen(function* () {
    const copy = new Map([...keys].map(([id, k]) => [id, Buffer.from(k)] as const))
    if (!copy.has(current) || copy.get(current)!.length !== KEY_BYTES) {
      return yield* Effect.dieMessage(`current key ${current} missing or not ${KEY_BYTES} bytes`)
    }
    return fromRing(
      yield* Ref.make<Keyring>({ current, keys: copy }),
      () => Effect.void,
      yield* Effect.makeSemaphore(1),
    )
  })

const encodeRing = (ring: Keyring) =>
  JSON.stringify({
    current: ring.current,
    keys: Object.fromEntries([...ring.keys].map(([id, k]) => [id, k.toString("base64")])),
  })

/**
 * The service over the data keys in the secrets store, creating the first key on first start.
 *
 * @since 0.1.0
 */
export const make = (secrets: SecretsManager): Effect.Effect<Encryption, SecretsError> =>
  Effect.gen(function* () {
    const save = (ring: Keyring) => secrets.set(keysSecret, encodeRing(ring))
    const stored = yield* secrets.getString(keysSecret)
    let initial: Keyring
    if (Option.isSome(stored)) {
      initial = yield* Effect.try({
        try: () => {
          const json = JSON.parse(stored.value) as { current: string; keys: Record<string, string> }
          const keys = new Map(Object.entries(json.keys).map(([id, k]) => [id, Buffer.from(k, "base64")] as const))
          if (!keys.has(json.current)) throw new Error("current key missing")
          return { current: json.current, keys }
        },
        catch: (e) => new SecretsError({ reason: `data key ring is corrupt: ${String(e)}`, secret: keysSecret }),
      })
    } else {
      const key = randomBytes(KEY_BYTES)
      initial = { current: keyIdOf(key), keys: new Map([[keyIdOf(key), key]]) }
      yield* save(initial)
    }
    return fromRing(yield* Ref.make(initial), save, yield* Effect.makeSemaphore(1))
  })

/**
 * The service from the `SecretsManager` in context.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Encryption, SecretsError, SecretsManager> = Layer.effect(
  Encryption,
  Effect.flatMap(SecretsManager, make),
)
