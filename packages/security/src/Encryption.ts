/**
 * AES-256-GCM encryption for other components, with associated data and key ids. Data keys are
 * random, kept in the secrets store (so a master key rotation re-encrypts them too), and never
 * forgotten on rotation: a ciphertext names the key that sealed it and stays readable.
 *
 * Every ciphertext must be bound to what it protects: associated data is required and must not be
 * empty (e.g. `vm/42/disk-key`). Keys are used for at most 2^32 messages (random 96-bit IVs,
 * NIST SP 800-38D): messages are counted per key, the count is reserved in the store in blocks so
 * a restart never reuses a lower count, and the key is rotated before the limit.
 *
 * Envelope: `version(1) | keyIdLength(1) | keyId | iv(12) | tag(16) | ciphertext`.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import { Context, Effect, Layer, Option, Ref } from "effect"
import { KEY_BYTES, keyIdOf, open, parse, seal } from "./internal/aead.js"
import { SecretsManager } from "./SecretsManager.js"
import { DecryptionError, EncryptionError, SecretsError } from "./SecurityError.js"

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
  /**
   * Seals `plaintext` bound to `aad` (required, not empty), which must be given again, identical, to
   * decrypt. Rotates the key first when it reached its message limit.
   */
  readonly encrypt: (plaintext: Uint8Array, aad: Uint8Array) => Effect.Effect<Buffer, EncryptionError>
  readonly decrypt: (envelope: Uint8Array, aad: Uint8Array) => Effect.Effect<Buffer, DecryptionError>
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

/**
 * Options of {@link make} and {@link fromKeys}.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Messages one key may seal; default 2^32 (the AES-GCM limit for random IVs). */
  readonly maxMessagesPerKey?: number | undefined
  /** Messages reserved in the store at a time (one store write per block); default 2^20. */
  readonly reserveBlock?: number | undefined
}

interface Keyring {
  readonly current: string
  readonly keys: ReadonlyMap<string, Buffer>
  /** Messages sealed under the current key. */
  readonly used: number
  /** Messages of the current key reserved in the store: a restart continues from here. */
  readonly reserved: number
}

const fromRing = (
  ring: Ref.Ref<Keyring>,
  save: (ring: Keyring) => Effect.Effect<void, SecretsError>,
  lock: Effect.Semaphore,
  options: Options,
): Encryption => {
  const limit = options.maxMessagesPerKey ?? 2 ** 32
  const block = Math.max(1, options.reserveBlock ?? 2 ** 20)
  const rotate = Effect.gen(function* () {
    const key = randomBytes(KEY_BYTES)
    const id = keyIdOf(key)
    const r = yield* Ref.get(ring)
    const next = { current: id, keys: new Map([...r.keys, [id, key]]), used: 0, reserved: 0 }
    yield* save(next)
    yield* Ref.set(ring, next)
    return id
  })
  const cannot = (e: SecretsError) =>
    new EncryptionError({ reason: `cannot record the data key's message count: ${e.reason}`, cause: e })
  return {
    currentKeyId: Effect.map(Ref.get(ring), (r) => r.current),
    keyIds: Effect.map(Ref.get(ring), (r) => [...r.keys.keys()]),
    // Serialized with rotation: the count and the key it counts must move together.
    encrypt: (plaintext, aad) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          if (aad.length === 0) {
            return yield* new EncryptionError({
              reason: "associated data is required: bind the ciphertext to what it protects (e.g. vm/42/disk-key)",
            })
          }
          let r = yield* Ref.get(ring)
          if (r.used >= limit) {
            const old = r.current
            yield* Effect.mapError(rotate, cannot)
            r = yield* Ref.get(ring)
            yield* Effect.logInfo(`data key ${old} reached ${limit} messages; rotated to ${r.current}`)
          }
          if (r.used >= r.reserved) {
            const reserved = Math.min(limit, r.reserved + block)
            yield* Effect.mapError(save({ ...r, reserved }), cannot)
            r = { ...r, reserved }
          }
          const sealed = seal(r.keys.get(r.current)!, r.current, plaintext, aad)
          yield* Ref.set(ring, { ...r, used: r.used + 1 })
          return sealed
        }),
      ),
    decrypt: (envelope, aad) =>
      Effect.flatMap(Ref.get(ring), (r) => {
        const parsed = parse(envelope)
        if (typeof parsed === "string") return Effect.fail(new DecryptionError({ reason: parsed }))
        const key = r.keys.get(parsed.keyId)
        if (key === undefined) return Effect.fail(new DecryptionError({ reason: "unknown key", keyId: parsed.keyId }))
        const plain = open(key, parsed, aad)
        return plain === undefined
          ? Effect.fail(
              new DecryptionError({
                reason: "authentication failed (tampered data or wrong aad)",
                keyId: parsed.keyId,
              }),
            )
          : Effect.succeed(plain)
      }),
    // Serialized: two concurrent rotations must not each save a ring missing the other's key.
    rotateKey: lock.withPermits(1)(rotate),
  }
}

/**
 * An in-memory service over given keys (tests, tools). Rotation keeps the new key in memory only.
 *
 * @since 0.1.0
 */
export const fromKeys = (
  keys: ReadonlyMap<string, Uint8Array>,
  current: string,
  options: Options = {},
): Effect.Effect<Encryption> =>
  Effect.gen(function* () {
    const copy = new Map([...keys].map(([id, k]) => [id, Buffer.from(k)] as const))
    if (!copy.has(current) || copy.get(current)!.length !== KEY_BYTES) {
      return yield* Effect.dieMessage(`current key ${current} missing or not ${KEY_BYTES} bytes`)
    }
    return fromRing(
      yield* Ref.make<Keyring>({ current, keys: copy, used: 0, reserved: 0 }),
      () => Effect.void,
      yield* Effect.makeSemaphore(1),
      options,
    )
  })

const encodeRing = (ring: Keyring) =>
  JSON.stringify({
    current: ring.current,
    keys: Object.fromEntries([...ring.keys].map(([id, k]) => [id, k.toString("base64")])),
    reserved: ring.reserved,
  })

/**
 * The service over the data keys in the secrets store, creating the first key on first start.
 *
 * @since 0.1.0
 */
export const make = (secrets: SecretsManager, options: Options = {}): Effect.Effect<Encryption, SecretsError> =>
  Effect.gen(function* () {
    const save = (ring: Keyring) => secrets.set(keysSecret, encodeRing(ring))
    const stored = yield* secrets.getString(keysSecret)
    let initial: Keyring
    if (Option.isSome(stored)) {
      initial = yield* Effect.try({
        try: () => {
          const json = JSON.parse(stored.value) as { current: string; keys: Record<string, string>; reserved?: number }
          const keys = new Map(Object.entries(json.keys).map(([id, k]) => [id, Buffer.from(k, "base64")] as const))
          if (!keys.has(json.current)) throw new Error("current key missing")
          // Rings written before counting: unknown use, so count the current key as used up to its reservation.
          const reserved = typeof json.reserved === "number" ? json.reserved : 0
          return { current: json.current, keys, used: reserved, reserved }
        },
        catch: (e) => new SecretsError({ reason: `data key ring is corrupt: ${String(e)}`, secret: keysSecret }),
      })
    } else {
      const key = randomBytes(KEY_BYTES)
      initial = { current: keyIdOf(key), keys: new Map([[keyIdOf(key), key]]), used: 0, reserved: 0 }
      yield* save(initial)
    }
    return fromRing(yield* Ref.make(initial), save, yield* Effect.makeSemaphore(1), options)
  })

/**
 * The service from the `SecretsManager` in context.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Encryption, SecretsError, SecretsManager> = Layer.effect(
  Encryption,
  Effect.flatMap(SecretsManager, (s) => make(s)),
)
