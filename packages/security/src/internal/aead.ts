import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto"

// Envelope: version(1) | keyIdLength(1) | keyId | iv(12) | tag(16) | ciphertext
const VERSION = 1
const IV = 12
const TAG = 16

export const KEY_BYTES = 32

/** Short public id of a key: the first 16 hex digits of its SHA-256. */
export const keyIdOf = (key: Uint8Array): string => createHash("sha256").update(key).digest("hex").slice(0, 16)

/** A purpose-bound subkey, so the master key never encrypts data directly. */
export const deriveKey = (master: Uint8Array, purpose: string): Buffer =>
  Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), purpose, KEY_BYTES))

export const seal = (key: Uint8Array, keyId: string, plaintext: Uint8Array, aad: Uint8Array): Buffer => {
  const id = Buffer.from(keyId, "utf8")
  if (id.length === 0 || id.length > 255) throw new RangeError("key id must be 1..255 bytes")
  const iv = randomBytes(IV)
  const cipher = createCipheriv("aes-256-gcm", key, iv)
  cipher.setAAD(aad)
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([Buffer.from([VERSION, id.length]), id, iv, cipher.getAuthTag(), body])
}

export type Parsed = { readonly keyId: string; readonly iv: Buffer; readonly tag: Buffer; readonly body: Buffer }

export const parse = (envelope: Uint8Array): Parsed | string => {
  const buf = Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength)
  if (buf.length < 2) return "envelope too short"
  if (buf[0] !== VERSION) return `unsupported envelope version ${buf[0]}`
  const n = buf[1]!
  if (n === 0 || buf.length < 2 + n + IV + TAG) return "envelope too short"
  return {
    keyId: buf.subarray(2, 2 + n).toString("utf8"),
    iv: buf.subarray(2 + n, 2 + n + IV),
    tag: buf.subarray(2 + n + IV, 2 + n + IV + TAG),
    body: buf.subarray(2 + n + IV + TAG),
  }
}

/** Returns the plaintext, or undefined when authentication fails. */
export const open = (key: Uint8Array, parsed: Parsed, aad: Uint8Array): Buffer | undefined => {
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, parsed.iv)
    decipher.setAAD(aad)
    decipher.setAuthTag(parsed.tag)
    return Buffer.concat([decipher.update(parsed.body), decipher.final()])
  } catch {
    return undefined
  }
}
