import * as fs from "node:fs/promises"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { fuzzSeed, tempDir } from "@novacron/testing"
import { Effect, Exit, Option } from "effect"
import * as fc from "fast-check"
import * as Encryption from "../src/Encryption.js"
import * as MasterKey from "../src/MasterKey.js"
import * as SecretsManager from "../src/SecretsManager.js"
import { modeOf, nodeInfo, settings, withLogs } from "./helpers.js"

describe("MasterKey", () => {
  it.scoped("creates <data_dir>.master.key beside (not in) the data directory, mode 0600, and reuses it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const first = yield* MasterKey.load(settings(), nodeInfo(dir))
      const file = `${dir}.master.key`
      expect(first.source).toEqual({ _tag: "File", path: file, created: true })
      // A copy of the data directory does not carry the key that opens its secrets.
      expect(yield* Effect.promise(() => fs.readdir(dir))).not.toContain("master.key")
      expect(yield* Effect.promise(() => modeOf(file))).toBe(0o600)
      const second = yield* MasterKey.load(settings(), nodeInfo(dir))
      expect(second.source).toMatchObject({ created: false })
      expect(second.id).toBe(first.id)
      expect(second.key.equals(first.key)).toBe(true)
    }),
  )

  it.scoped("refuses a key file group or others may read, or owned by another user, naming file, mode and owner", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = `${dir}.master.key`
      yield* MasterKey.load(settings(), nodeInfo(dir))
      yield* Effect.promise(() => fs.chmod(file, 0o644))
      const lax = yield* Effect.flip(MasterKey.load(settings(), nodeInfo(dir)))
      expect(lax).toMatchObject({ _tag: "MasterKeyError", path: file })
      expect(lax.reason).toBe(
        `master key file ${file} has mode 644 (owner uid ${process.getuid!()}): group or others may read it; chmod 600 ${file}`,
      )
      yield* Effect.promise(() => fs.chmod(file, 0o640))
      expect((yield* Effect.flip(MasterKey.load(settings(), nodeInfo(dir)))).reason).toMatch(/has mode 640/)
      yield* Effect.promise(() => fs.chmod(file, 0o400))
      expect((yield* MasterKey.load(settings(), nodeInfo(dir))).source).toMatchObject({ created: false })
      expect(MasterKey.checkPrivate(file, { mode: 0o100600, uid: 4242 }, 1000)).toBe(
        `master key file ${file} is owned by uid 4242, not by the agent's user (uid 1000), mode 600; chown it to the agent's user`,
      )
      expect(MasterKey.checkPrivate(file, { mode: 0o100600, uid: 1000 }, 1000)).toBeUndefined()
      expect(MasterKey.checkPrivate(file, { mode: 0o100600, uid: 4242 }, undefined)).toBeUndefined()
      if (process.getuid!() === 0) {
        // As root the real check can be shown: a file handed to another user is refused.
        yield* Effect.promise(() => fs.chown(file, 4242, 4242))
        expect((yield* Effect.flip(MasterKey.load(settings(), nodeInfo(dir)))).reason).toMatch(
          /owned by uid 4242, not by the agent's user \(uid 0\)/,
        )
      }
    }),
  )

  it("accepts only 64 hex digits or canonical padded base64 of 32 bytes", () => {
    const key = MasterKey.generate()
    const b64 = key.toString("base64")
    expect(MasterKey.decode(`${b64}\n`)).toEqual(key)
    expect(MasterKey.decode(key.toString("hex").toUpperCase())).toEqual(key)
    const bad = [
      b64.slice(0, 43), // no padding
      `${b64.slice(0, 10)} ${b64.slice(10)}`, // inner space
      key.toString("base64url"),
      `${b64}=`,
      key.toString("hex").slice(0, 63),
      `${key.toString("hex")}00`,
      "A".repeat(43), // 43 characters of the alphabet: Node alone would take it
    ]
    for (const text of bad) expect(MasterKey.decode(text), text).toBeUndefined()
    // Non-canonical: the last character carries bits beyond the 32 bytes.
    const last = b64.at(-2)!
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    const sibling = alphabet[alphabet.indexOf(last) ^ 1]!
    expect(MasterKey.decode(`${b64.slice(0, 42)}${sibling}=`)).toBeUndefined()
  })

  it.scoped("takes the key from the environment first, and refuses a malformed one", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const key = MasterKey.generate()
      const fromEnv = yield* MasterKey.load(
        settings(),
        nodeInfo(dir, { env: { NOVACRON_MASTER_KEY: key.toString("hex") } }),
      )
      expect(fromEnv.id).toBe(MasterKey.idOf(key))
      expect(fromEnv.source).toEqual({ _tag: "Env", variable: "NOVACRON_MASTER_KEY" })
      expect((yield* Effect.promise(() => fs.readdir(dir))).sort()).toEqual([])
      const bad = yield* Effect.exit(
        MasterKey.load(settings(), nodeInfo(dir, { env: { NOVACRON_MASTER_KEY: "short" } })),
      )
      expect(bad).toMatchObject({ _tag: "Failure" })
    }),
  )

  it.scoped("removes the variable from process.env once read", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const key = MasterKey.generate()
      const variable = "NOVACRON_TEST_MASTER_KEY"
      process.env[variable] = key.toString("base64")
      const loaded = yield* MasterKey.load(settings({ master_key_env: variable }), nodeInfo(dir, { env: undefined }))
      expect(loaded.id).toBe(MasterKey.idOf(key))
      expect(process.env[variable]).toBeUndefined()
      // An injected environment (tests, tools) is the caller's own and left alone.
      const env = { [variable]: key.toString("hex") }
      yield* MasterKey.load(settings({ master_key_env: variable }), nodeInfo(dir, { env }))
      expect(env[variable]).toBe(key.toString("hex"))
    }),
  )

  it.scoped("warns at every start while the key sits in the data directory, not when it is kept apart", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      // A data directory from an earlier version holds its key inside: it is used, with the warning.
      const legacy = path.join(dir, "master.key")
      const key = MasterKey.generate()
      yield* MasterKey.writeFile(legacy, key)
      const [loaded, first] = yield* withLogs(MasterKey.load(settings(), nodeInfo(dir)))
      expect(loaded.source).toEqual({ _tag: "File", path: legacy, created: false })
      expect(loaded.key.equals(key)).toBe(true)
      const [, second] = yield* withLogs(MasterKey.load(settings(), nodeInfo(dir)))
      const fresh = yield* tempDir
      const [, byDefault] = yield* withLogs(MasterKey.load(settings(), nodeInfo(fresh)))
      expect(byDefault.filter((l) => l.level === "WARN")).toEqual([])
      for (const logs of [first, second]) {
        expect(logs.find((l) => l.level === "WARN")?.message).toMatch(
          /^SECURITY WARNING: master key .*master\.key is in the data directory, beside the secrets it protects/,
        )
      }
      const apart = yield* tempDir
      const file = path.join(apart, "master.key")
      yield* MasterKey.writeFile(file, MasterKey.generate())
      const data = path.join(apart, "data")
      const [, quiet] = yield* withLogs(MasterKey.load(settings({ master_key_file: file }), nodeInfo(data)))
      expect(quiet.filter((l) => l.level === "WARN")).toEqual([])
      const [, inside] = yield* withLogs(
        MasterKey.load(settings({ master_key_file: path.join(dir, "master.key") }), nodeInfo(dir)),
      )
      expect(inside.some((l) => l.message.startsWith("SECURITY WARNING"))).toBe(true)
    }),
  )

  it.scoped("refuses a configured master_key_file that does not exist instead of inventing a key", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = path.join(dir, "supplied.key")
      const exit = yield* Effect.exit(MasterKey.load(settings({ master_key_file: file }), nodeInfo(dir)))
      expect(Exit.isFailure(exit)).toBe(true)
      yield* MasterKey.writeFile(file, MasterKey.generate())
      const ok = yield* MasterKey.load(settings({ master_key_file: file }), nodeInfo(dir))
      expect(ok.source).toMatchObject({ _tag: "File", path: file, created: false })
    }),
  )
})

describe("SecretsManager", () => {
  it.scoped("stores secrets encrypted, durable across restarts, bound to their names", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const node = nodeInfo(dir)
      const secrets = yield* SecretsManager.make(settings(), node)
      yield* secrets.set("db/password", "hunter2-very-secret")
      yield* secrets.set("api/key", new Uint8Array([1, 2, 3]))
      expect(yield* secrets.getString("db/password")).toEqual(Option.some("hunter2-very-secret"))
      expect(yield* secrets.get("missing")).toEqual(Option.none())

      const file = SecretsManager.storePath(node)
      const raw = yield* Effect.promise(() => fs.readFile(file, "utf8"))
      expect(raw).not.toContain("hunter2")
      expect(yield* Effect.promise(() => modeOf(file))).toBe(0o600)

      const reopened = yield* SecretsManager.make(settings(), node)
      expect(yield* reopened.names).toEqual(["api/key", "db/password"])
      expect(Option.getOrThrow(yield* reopened.get("api/key"))).toEqual(Buffer.from([1, 2, 3]))

      // Swapping two ciphertexts in the file must not decrypt one secret under the other's name.
      const json = JSON.parse(raw)
      ;[json.secrets["db/password"], json.secrets["api/key"]] = [json.secrets["api/key"], json.secrets["db/password"]]
      yield* Effect.promise(() => fs.writeFile(file, JSON.stringify(json)))
      const swapped = yield* SecretsManager.make(settings(), node)
      const err = yield* Effect.flip(swapped.get("db/password"))
      expect(err._tag).toBe("SecretsError")
      expect(err.message).toMatch(/authentication failed/)

      // Every write re-seals every secret, so a store holding a tampered entry cannot be written over it.
      expect((yield* Effect.flip(swapped.remove("api/key")))._tag).toBe("SecretsError")
      expect(yield* reopened.remove("api/key")).toBe(true)
      expect(yield* reopened.remove("api/key")).toBe(false)
    }),
  )

  it.scoped("refuses to open a store with a different master key", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const secrets = yield* SecretsManager.make(settings(), nodeInfo(dir))
      yield* secrets.set("a", "1")
      const other = MasterKey.generate().toString("base64")
      const err = yield* Effect.flip(
        SecretsManager.make(settings(), nodeInfo(dir, { env: { NOVACRON_MASTER_KEY: other } })),
      )
      expect(err.message).toMatch(/encrypted under master key/)
    }),
  )

  it.scoped(
    "rotation re-encrypts every secret under a new key file (0600); the old key no longer opens the store",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const node = nodeInfo(dir)
        const keyFile = `${dir}.master.key`
        const secrets = yield* SecretsManager.make(settings(), node)
        const values = Object.fromEntries(
          Array.from({ length: 20 }, (_, i) => [`s${i}`, `value-${i}-${"x".repeat(i)}`]),
        )
        for (const [k, v] of Object.entries(values)) yield* secrets.set(k, v)
        const oldKey = yield* Effect.promise(() => fs.readFile(keyFile, "utf8"))
        const oldStore = yield* Effect.promise(() => fs.readFile(SecretsManager.storePath(node), "utf8"))

        const result = yield* secrets.rotateMasterKey()
        expect(result.reencrypted).toBe(20)
        expect(result.keyId).not.toBe(result.previousKeyId)
        expect(yield* secrets.masterKeyId).toBe(result.keyId)
        const newKey = yield* Effect.promise(() => fs.readFile(keyFile, "utf8"))
        expect(newKey).not.toBe(oldKey)
        expect(MasterKey.idOf(MasterKey.decode(newKey)!)).toBe(result.keyId)
        expect(yield* Effect.promise(() => modeOf(keyFile))).toBe(0o600)
        const newStore = JSON.parse(yield* Effect.promise(() => fs.readFile(SecretsManager.storePath(node), "utf8")))
        for (const name of Object.keys(values))
          expect(newStore.secrets[name]).not.toBe(JSON.parse(oldStore).secrets[name])
        expect((yield* Effect.promise(() => fs.readdir(dir))).sort()).toEqual(["secrets.generation", "secrets.json"])

        const reopened = yield* SecretsManager.make(settings(), node)
        for (const [k, v] of Object.entries(values)) expect(yield* reopened.getString(k)).toEqual(Option.some(v))
        const withOld = yield* Effect.flip(
          SecretsManager.make(settings(), nodeInfo(dir, { env: { NOVACRON_MASTER_KEY: oldKey } })),
        )
        expect(withOld._tag).toBe("SecretsError")
      }),
  )

  it.scoped("an interrupted rotation is completed when the store was committed, discarded otherwise", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const node = nodeInfo(dir)
      const keyFile = `${dir}.master.key`
      const secrets = yield* SecretsManager.make(settings(), node)
      yield* secrets.set("k", "v")
      const oldKey = yield* Effect.promise(() => fs.readFile(keyFile))
      const { keyId } = yield* secrets.rotateMasterKey()
      // Crash after the store was written but before `.next` replaced the key file.
      yield* Effect.promise(async () => {
        await fs.rename(keyFile, `${keyFile}.next`)
        await fs.writeFile(keyFile, oldKey, { mode: 0o600 })
      })
      const recovered = yield* SecretsManager.make(settings(), node)
      expect(yield* recovered.masterKeyId).toBe(keyId)
      expect(yield* recovered.getString("k")).toEqual(Option.some("v"))
      // Crash before the store was written: `.next` holds a key nothing was encrypted under.
      yield* MasterKey.writeFile(`${keyFile}.next`, MasterKey.generate())
      const discarded = yield* SecretsManager.make(settings(), node)
      expect(yield* discarded.masterKeyId).toBe(keyId)
      expect(yield* discarded.getString("k")).toEqual(Option.some("v"))
      expect((yield* Effect.promise(() => fs.readdir(dir))).sort()).toEqual(["secrets.generation", "secrets.json"])
      // Nothing is left of the discarded rotation beside the key either.
      const beside = yield* Effect.promise(() => fs.readdir(path.dirname(dir)))
      expect(beside.filter((f) => f.startsWith(path.basename(keyFile)))).toEqual([path.basename(keyFile)])
    }),
  )

  it.scoped("with the key in the environment, rotation needs the new key and does not write a key file", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const env = { NOVACRON_MASTER_KEY: MasterKey.generate().toString("base64") }
      const secrets = yield* SecretsManager.make(settings(), nodeInfo(dir, { env }))
      yield* secrets.set("k", "v")
      expect((yield* Effect.flip(secrets.rotateMasterKey())).message).toMatch(/pass the new key/)
      const next = MasterKey.generate()
      yield* secrets.rotateMasterKey(next)
      expect((yield* Effect.promise(() => fs.readdir(dir))).sort()).toEqual(["secrets.generation", "secrets.json"])
      const reopened = yield* SecretsManager.make(
        settings(),
        nodeInfo(dir, { env: { NOVACRON_MASTER_KEY: next.toString("base64") } }),
      )
      expect(yield* reopened.getString("k")).toEqual(Option.some("v"))
    }),
  )
})

describe("Encryption", () => {
  it.scoped("seals with associated data and key ids; old keys still open after rotations of both key levels", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const secrets = yield* SecretsManager.make(settings(), nodeInfo(dir))
      const enc = yield* Encryption.make(secrets)
      const aad = Buffer.from("vm/42")
      const plain = Buffer.from("disk encryption key material")
      const sealed = yield* enc.encrypt(plain, aad)
      const firstKey = yield* enc.currentKeyId
      expect(sealed.subarray(2, 2 + sealed[1]!).toString()).toBe(firstKey)
      expect(yield* enc.decrypt(sealed, aad)).toEqual(plain)
      expect((yield* Effect.flip(enc.decrypt(sealed, Buffer.from("vm/43")))).reason).toMatch(/authentication failed/)
      const tampered = Buffer.from(sealed)
      tampered[tampered.length - 1]! ^= 1
      expect((yield* Effect.flip(enc.decrypt(tampered, aad)))._tag).toBe("DecryptionError")
      expect((yield* Effect.flip(enc.decrypt(Buffer.from([1]), aad))).reason).toMatch(/too short/)

      // Concurrent rotations are serialized: every key created survives in the ring.
      const concurrent = yield* Effect.all([enc.rotateKey, enc.rotateKey, enc.rotateKey], { concurrency: "unbounded" })
      expect(new Set(yield* enc.keyIds)).toEqual(new Set([firstKey, ...concurrent]))
      const second = yield* enc.rotateKey
      expect(second).not.toBe(firstKey)
      const sealed2 = yield* enc.encrypt(plain, aad)
      yield* secrets.rotateMasterKey()
      // A restart after both rotations: data keys came back from the re-encrypted store.
      const enc2 = yield* Encryption.make(yield* SecretsManager.make(settings(), nodeInfo(dir)))
      expect(yield* enc2.currentKeyId).toBe(second)
      expect([...(yield* enc2.keyIds)].sort()).toEqual([firstKey, ...concurrent, second].sort())
      expect(yield* enc2.decrypt(sealed, aad)).toEqual(plain)
      expect(yield* enc2.decrypt(sealed2, aad)).toEqual(plain)
    }),
  )

  it.effect("fromKeys refuses an unknown key id in an envelope", () =>
    Effect.gen(function* () {
      const a = yield* Encryption.fromKeys(new Map([["a", MasterKey.generate()]]), "a")
      const b = yield* Encryption.fromKeys(new Map([["b", MasterKey.generate()]]), "b")
      const aad = Buffer.from("test/x")
      const err = yield* Effect.flip(b.decrypt(yield* a.encrypt(Buffer.from("x"), aad), aad))
      expect(err).toMatchObject({ reason: "unknown key", keyId: "a" })
    }),
  )
})

describe("Encryption properties", () => {
  const keys = new Map([
    ["k1", Buffer.alloc(32, 1)],
    ["k2", Buffer.alloc(32, 2)],
  ])
  it("round-trips any plaintext and aad; any changed byte or different aad is refused", async () => {
    const enc = await Effect.runPromise(Encryption.fromKeys(keys, "k2"))
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 2048 }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.nat(),
        async (plain, aad, pos) => {
          const sealed = await Effect.runPromise(enc.encrypt(plain, aad))
          expect(await Effect.runPromise(enc.decrypt(sealed, aad))).toEqual(Buffer.from(plain))
          const tampered = Buffer.from(sealed)
          tampered[pos % tampered.length]! ^= 0x01
          expect(Exit.isFailure(await Effect.runPromiseExit(enc.decrypt(tampered, aad)))).toBe(true)
          const otherAad = Buffer.concat([Buffer.from(aad), Buffer.from([0])])
          expect(Exit.isFailure(await Effect.runPromiseExit(enc.decrypt(sealed, otherAad)))).toBe(true)
        },
      ),
      { numRuns: 200, seed: fuzzSeed(18) },
    )
  })
})

describe("secrets at rest: generations and message limits", () => {
  it.scoped("an older secrets.json is refused, and entries of two versions of the file cannot be mixed", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const node = nodeInfo(dir)
      const file = SecretsManager.storePath(node)
      const secrets = yield* SecretsManager.make(settings(), node)
      yield* secrets.set("db/password", "old-password")
      yield* secrets.set("api/key", "k1")
      const old = yield* Effect.promise(() => fs.readFile(file, "utf8"))
      yield* secrets.set("db/password", "new-password")
      const current = yield* Effect.promise(() => fs.readFile(file, "utf8"))
      expect(JSON.parse(current)).toMatchObject({ version: 2, generation: 3 })

      // The whole old file put back: refused at open, naming both generations.
      yield* Effect.promise(() => fs.writeFile(file, old))
      const rolledBack = yield* Effect.flip(SecretsManager.make(settings(), node))
      expect(rolledBack.message).toMatch(/at generation 2 but generation 3 was written .*rolled back/)

      // One old entry inside the current file: its associated data names generation 2, not 3.
      const mixed = JSON.parse(current)
      mixed.secrets["db/password"] = JSON.parse(old).secrets["db/password"]
      yield* Effect.promise(() => fs.writeFile(file, JSON.stringify(mixed)))
      const opened = yield* SecretsManager.make(settings(), node)
      expect((yield* Effect.flip(opened.get("db/password"))).message).toMatch(/authentication failed/)
      expect(yield* opened.getString("api/key")).toEqual(Option.some("k1"))
    }),
  )

  it.scoped("a version 1 store (name-only binding) is read and rewritten as version 2", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const node = nodeInfo(dir)
      const master = yield* MasterKey.load(settings(), node)
      const { deriveKey, seal } = yield* Effect.promise(() => import("../src/internal/aead.js"))
      const key = deriveKey(master.key, "novacron/secrets/v1")
      const v1 = {
        version: 1,
        key_id: master.id,
        secrets: {
          a: seal(key, master.id, Buffer.from("legacy"), Buffer.from("novacron/secret:a")).toString("base64"),
        },
      }
      yield* Effect.promise(() => fs.writeFile(SecretsManager.storePath(node), JSON.stringify(v1), { mode: 0o600 }))
      const secrets = yield* SecretsManager.make(settings(), node)
      expect(yield* secrets.getString("a")).toEqual(Option.some("legacy"))
      yield* secrets.set("b", "new")
      const rewritten = JSON.parse(yield* Effect.promise(() => fs.readFile(SecretsManager.storePath(node), "utf8")))
      expect(rewritten).toMatchObject({ version: 2, generation: 1, sealed: 2 })
      const reopened = yield* SecretsManager.make(settings(), node)
      expect(yield* reopened.getString("a")).toEqual(Option.some("legacy"))
    }),
  )

  it.scoped("writes are refused before the derived key passes its message limit; a master rotation resets it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const secrets = yield* SecretsManager.make(settings(), nodeInfo(dir), { maxMessagesPerKey: 4 })
      yield* secrets.set("a", "1") // 1 sealed
      yield* secrets.set("b", "2") // 3 sealed (a and b re-sealed)
      const err = yield* Effect.flip(secrets.set("c", "3"))
      expect(err.message).toMatch(/sealed 3 messages; 3 more would pass the AES-GCM limit of 4: rotate the master key/)
      expect(yield* secrets.names).toEqual(["a", "b"])
      yield* secrets.rotateMasterKey()
      yield* secrets.set("a", "1b")
      expect(yield* secrets.getString("a")).toEqual(Option.some("1b"))
    }),
  )
})

describe("Encryption: associated data and message limits", () => {
  const aad = Buffer.from("vm/7/disk-key")

  it.effect("refuses empty associated data", () =>
    Effect.gen(function* () {
      const enc = yield* Encryption.fromKeys(new Map([["k", MasterKey.generate()]]), "k")
      const err = yield* Effect.flip(enc.encrypt(Buffer.from("x"), Buffer.alloc(0)))
      expect(err).toMatchObject({ _tag: "EncryptionError" })
      expect(err.message).toMatch(/^associated data is required/)
    }),
  )

  it.effect("rotates the key before it seals more than its limit; older ciphertexts still open", () =>
    Effect.gen(function* () {
      const enc = yield* Encryption.fromKeys(new Map([["k", MasterKey.generate()]]), "k", { maxMessagesPerKey: 3 })
      const sealed = []
      for (let i = 0; i < 3; i++) sealed.push(yield* enc.encrypt(Buffer.from(`m${i}`), aad))
      expect(yield* enc.currentKeyId).toBe("k")
      const fourth = yield* enc.encrypt(Buffer.from("m3"), aad)
      const rotated = yield* enc.currentKeyId
      expect(rotated).not.toBe("k")
      expect(fourth.subarray(2, 2 + fourth[1]!).toString()).toBe(rotated)
      for (const [i, s] of sealed.entries()) expect((yield* enc.decrypt(s, aad)).toString()).toBe(`m${i}`)
    }),
  )

  it.scoped("the count survives a restart: it is reserved in the store ahead of use", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const options = { maxMessagesPerKey: 5, reserveBlock: 2 }
      const enc = yield* Encryption.make(yield* SecretsManager.make(settings(), nodeInfo(dir)), options)
      const first = yield* enc.currentKeyId
      for (let i = 0; i < 3; i++) yield* enc.encrypt(Buffer.from("x"), aad) // reserves 2, then 4
      // Restarted, the key counts as 4 used: one more message, then a new key.
      const again = yield* Encryption.make(yield* SecretsManager.make(settings(), nodeInfo(dir)), options)
      yield* again.encrypt(Buffer.from("y"), aad)
      expect(yield* again.currentKeyId).toBe(first)
      yield* again.encrypt(Buffer.from("z"), aad)
      expect(yield* again.currentKeyId).not.toBe(first)
    }),
  )
})
