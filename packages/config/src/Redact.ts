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

// Query parameters that carry credentials (`?password=`, `sslpassword`, `access_token`, `api_key`, `auth`…).
const credentialParam = /pass(word|wd)?|pwd|secret|token|key|auth|credential|signature/i

/**
 * Masks the credentials of a URL: the userinfo password (`postgres://app:s3cret@db/x` becomes
 * `postgres://app:***@db/x`) and every credential query parameter (`?password=…`, `token`, `key`,
 * `auth`…). The URL is parsed with WHATWG `URL`, so a password holding `@` is masked whole; a value
 * that does not parse, or whose path holds an `@` (a password with an unencoded `/`), is masked
 * entirely, since nothing says where its secret ends.
 *
 * @since 0.1.0
 */
export const redactUrl = (url: string): string => {
  if (url === "") return url
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return mask
  }
  // `app:p@ss/w0rd@db` parses as host `ss` and path `/w0rd@db`: an `@` after the authority means the
  // password probably ran past a `/`, so nothing of the value can be shown safely.
  if (`${parsed.pathname}${parsed.search}${parsed.hash}`.includes("@")) return mask
  if (parsed.password !== "") parsed.password = "***"
  for (const name of new Set(parsed.searchParams.keys())) {
    if (credentialParam.test(name)) parsed.searchParams.set(name, "***")
  }
  return parsed.toString()
}

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
