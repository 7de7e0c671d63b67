/**
 * Secrets never leave the process: token hashes, key material and passwords inside URLs are
 * masked before anything is printed (`config print`, error messages).
 *
 * @since 0.1.0
 */

/**
 * What a redacted value is replaced with.
 *
 * @since 0.1.0
 */
export const mask = "<redacted>"

const secretKey = /(^|_)(sha256|password|secret|private_key|key_material|token_value)$/
const urlKey = /(^|_)url$/

/**
 * Masks the password of a URL (`postgres://app:s3cret@db/x` becomes `postgres://app:***@db/x`).
 *
 * @since 0.1.0
 */
export const redactUrl = (url: string): string =>
  url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@\s]*):[^@/\s]*@/i, "$1:***@")

/**
 * Redacts one value given the key it sits under (the last segment of its path).
 *
 * @since 0.1.0
 */
export const redactValue = (key: string, value: unknown): unknown => {
  if (secretKey.test(key)) return value === "" || value === undefined ? value : mask
  if (urlKey.test(key) && typeof value === "string") return redactUrl(value)
  return redact(value)
}

/**
 * Returns a deep copy of `value` (a configuration in its file form, or any part of it) with
 * every secret masked.
 *
 * @example
 * ```ts
 * import { Redact } from "@novacron/config"
 *
 * Redact.redact({ storage: { postgres_url: "postgres://app:pw@db/app" } })
 * // { storage: { postgres_url: "postgres://app:***@db/app" } }
 * ```
 *
 * @since 0.1.0
 */
export const redact = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map((v) => redact(v))
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(k, v)]))
  }
  return value
}

/**
 * Redacts the value found at a dotted path such as `security.tokens[0].sha256`.
 *
 * @since 0.1.0
 */
export const redactAt = (path: string, value: unknown): unknown => {
  const key =
    path
      .replace(/\[\d+\]$/, "")
      .split(".")
      .at(-1) ?? ""
  return redactValue(key, value)
}
