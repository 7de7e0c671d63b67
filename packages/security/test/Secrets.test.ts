import * as fs from "node:fs/promises"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option } from "effect"
import * as fc from "fast-check"
import * as Encryption from "../src/Encryption.js"
import * as MasterKey from "../src/MasterKey.js"
import * as SecretsManager from "../src/SecretsManager.js"
import { modeOf, nodeInfo, settings, tempDir, withLogs } from "./helpers.js"

describe("MasterKey", () => {
  it.scoped("creates <data_dir>/master.key with mode 0600 on first start and reuses it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const first = yield* MasterKey.load(settings(), nodeInfo(dir))
      const file = path.join(dir, "master.key")
      expect(first.source).toEqual({ _tag: "File", path: file, created: true })
      expect(yield* Effect.promise(() => modeOf(file))).toBe(0o600)
      const second = yield* MasterKey.load(settings(), nodeInfo(dir))
      expect(second.source).toMatchObject({ created: false })
      expect(second.id).toBe(first.id)
      expect(second.key.equals(first.key)).toBe(true)
    }),
  )

  it.scoped("warns when an existing key file is readable by group or others", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* MasterKey.load(settings(), nodeInfo(dir))
      yield* Effect.promise(() => fs.chmod(path.join(dir, "master.key"), 0o644))
      const [, logs] = yield* withLogs(MasterKey.load(settings(), nodeInfo(dir)))
      expect(logs.find((l) => l.level === "WARN")?.message).toMatch(/readable by group or others \(mode 644\)/)
    }),
  )

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
      expect(yield* Effect.promise(() => fs.readdir(dir))).toEqual([])
      const bad = yield* Effect.exit(
        MasterKey.load(settings(), nodeInfo(dir, { env: { NOVACRON_MASTER_KEY: "short" } })),
      )
      expect(bad).toMatchObject({ _tag: "Failure" })
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

      expect(yield* swapped.remove("api/key")).toBe(true)
      expect(yield* swapped.remove("api/key")).toBe(false)
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
        const keyFile = path.join(dir, "master.key")
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
        expect(yield* Effect.promise(() => fs.readdir(dir))).toEqual(["master.key", "secrets.json"])

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
      const keyFile = path.join(dir, "master.key")
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
      expect(yield* Effect.promise(() => fs.readdir(dir))).toEqual(["master.key", "secrets.json"])
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
      expect(yield* Effect.promise(() => fs.readdir(dir))).toEqual(["secrets.json"])
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
      const sealed2 = yield* enc.encrypt(plain)
      yield* secrets.rotateMasterKey()
      // A restart after both rotations: data keys came back from the re-encrypted store.
      const enc2 = yield* Encryption.make(yield* SecretsManager.make(settings(), nodeInfo(dir)))
      expect(yield* enc2.currentKeyId).toBe(second)
      expect([...(yield* enc2.keyIds)].sort()).toEqual([firstKey, ...concurrent, second].sort())
      expect(yield* enc2.decrypt(sealed, aad)).toEqual(plain)
      expect(yield* enc2.decrypt(sealed2)).toEqual(plain)
    }),
  )

  it.effect("fromKeys refuses an unknown key id in an envelope", () =>
    Effect.gen(function* () {
      const a = yield* Encryption.fromKeys(new Map([["a", MasterKey.generate()]]), "a")
      const b = yield* Encryption.fromKeys(new Map([["b", MasterKey.generate()]]), "b")
      const err = yield* Effect.flip(b.decrypt(yield* a.encrypt(Buffer.from("x"))))
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
        fc.uint8Array({ maxLength: 64 }),
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
      { numRuns: 200 },
    )
  })
})
