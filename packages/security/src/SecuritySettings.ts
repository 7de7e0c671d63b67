/**
 * The `security` section of the node configuration, and the few node facts the component needs.
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Schema } from "effect"
import { RoleSchema, roles } from "./Authorization.js"

// Each leaf says what is allowed: the configuration loader prints it next to the key and its source.
const allowed = (message: string) => ({ message: () => ({ message, override: true }) })
const str = Schema.String.annotations(allowed("expected a string"))
const oneOf = (values: ReadonlyArray<string>) => `expected one of ${values.map((v) => JSON.stringify(v)).join(", ")}`
const opt = <S extends Schema.Schema.AnyNoContext>(schema: S, value: () => Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: value, exact: true })

/**
 * How callers (API clients and peers) are authenticated.
 *
 * @since 0.1.0
 */
export const AuthMethod = Schema.Literal("mtls", "token", "none").annotations(allowed(oneOf(["mtls", "token", "none"])))

/**
 * @since 0.1.0
 */
export type AuthMethod = typeof AuthMethod.Type

/**
 * A configured API token: only the SHA-256 of the token (lowercase hex) is kept.
 *
 * @since 0.1.0
 */
export const TokenEntry = Schema.Struct({
  name: Schema.NonEmptyString.annotations(allowed("expected a non-empty name")),
  role: RoleSchema.annotations(allowed(oneOf(roles))),
  sha256: Schema.String.pipe(Schema.pattern(/^[0-9a-fA-F]{64}$/)).annotations(
    allowed("expected 64 hex digits (the SHA-256 of the token)"),
  ),
})

/**
 * @since 0.1.0
 */
export type TokenEntry = typeof TokenEntry.Type

/**
 * A `trusted_nodes` entry; `sha256:` must be followed by 64 hex digits (colons allowed).
 *
 * @since 0.1.0
 */
export const TrustedNodeEntry = Schema.String.annotations(
  allowed('expected "sha256:<64 hex digits>", "cn:<common name>", or a bare fingerprint or common name'),
).pipe(
  Schema.filter((s) =>
    s.startsWith("sha256:")
      ? /^[0-9a-fA-F]{64}$/.test(s.slice(7).replaceAll(":", "").trim()) ||
        `"${s}": sha256: needs the 64 hex digits of a certificate's SHA-256`
      : s.startsWith("cn:")
        ? s.length > 3 || `"${s}": cn: needs a common name`
        : s.trim() !== "" || "a trusted node entry must not be empty",
  ),
)

/**
 * The `security` section, with the defaults of the settings contract. This package owns it:
 * `@novacron/config` composes it (subpath `@novacron/security/SecuritySettings`).
 *
 * @since 0.1.0
 */
export const SecuritySettings = Schema.Struct({
  auth_method: opt(AuthMethod, () => "mtls" as const),
  /** Node certificate (PEM). Empty with `key_file` and `ca_file`: issued into `<data_dir>/tls`. */
  cert_file: opt(str, () => ""),
  key_file: opt(str, () => ""),
  ca_file: opt(str, () => ""),
  /**
   * Peers accepted over mTLS: `sha256:<fingerprint>` or `cn:<common name>`; bare forms are aliases
   * (64 hex digits: a fingerprint, anything else: a common name). Empty: any certificate of the CA.
   */
  trusted_nodes: opt(Schema.Array(TrustedNodeEntry), () => []),
  tokens: opt(Schema.Array(TokenEntry), () => []),
  /**
   * Where the master key lives: a path outside the data directory (Vault/Consul style: the key apart
   * from what it protects). Must exist, mode 0600, owned by the agent's user. Empty: `<data_dir>.master.key`,
   * beside the data directory (not in it), created on first start.
   */
  master_key_file: opt(str, () => ""),
  /** When this environment variable is set, it holds the master key (64 hex digits or canonical base64 of 32 bytes); it is removed from `process.env` once read. */
  master_key_env: opt(str, () => "NOVACRON_MASTER_KEY"),
  /** The design's switch: secrets at rest are always sealed, so `false` is accepted but not in effect. */
  enable_encryption: opt(Common.bool, () => true),
  /** The AEAD that seals secrets at rest: the only one built. */
  encryption_algo: opt(Common.oneOf("aes-256-gcm"), () => "aes-256-gcm" as const),
})

/**
 * @since 0.1.0
 */
export type SecuritySettings = typeof SecuritySettings.Type

/**
 * The defaults (the decoding of an empty section).
 *
 * @since 0.1.0
 */
export const defaults: SecuritySettings = Schema.decodeUnknownSync(SecuritySettings)({})

/**
 * Node facts from other sections that the security component needs.
 *
 * @since 0.1.0
 */
export interface NodeInfo {
  /** `system.data_dir`: master key, secrets and issued certificates live here. */
  readonly data_dir: string
  /** `system.node_id`: the common name of the issued node certificate. */
  readonly node_id: string
  /** `network.listen_address`: `auth_method: none` beyond loopback is warned about loudly. */
  readonly listen_address: string
  /** Environment to read `master_key_env` from. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
}

/**
 * Decodes a `security` section (throws a readable error on invalid input).
 *
 * @since 0.1.0
 */
export const decode: (input: unknown) => SecuritySettings = Schema.decodeUnknownSync(SecuritySettings)
