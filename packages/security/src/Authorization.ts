/**
 * Roles and permissions. The API and the cluster message handlers call {@link authorize} (or
 * {@link can}) with the principal that authentication produced.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import { Forbidden } from "./SecurityError.js"

/**
 * The four roles, most powerful first.
 *
 * @since 0.1.0
 */
export const roles = ["admin", "operator", "reader", "node"] as const

/**
 * @since 0.1.0
 */
export type Role = (typeof roles)[number]

/**
 * Schema of a role name.
 *
 * @since 0.1.0
 */
export const RoleSchema = Schema.Literal(...roles)

/**
 * Every permission the system checks.
 *
 * @since 0.1.0
 */
export const permissions = [
  "cluster:read",
  "cluster:write",
  "cluster:message",
  "vm:read",
  "vm:write",
  "vm:migrate",
  "node:drain",
  "secrets:read",
  "secrets:write",
  "node:admin",
] as const

/**
 * @since 0.1.0
 */
export type Permission = (typeof permissions)[number]

/**
 * What each role may do. `node` is what peers authenticated by certificate get: they exchange
 * cluster messages and move VMs, but cannot change membership, read secrets or administer.
 *
 * @since 0.1.0
 */
export const grants: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  admin: new Set(permissions),
  operator: new Set<Permission>(["cluster:read", "vm:read", "vm:write", "vm:migrate", "node:drain"]),
  reader: new Set<Permission>(["cluster:read", "vm:read"]),
  node: new Set<Permission>(["cluster:read", "cluster:message", "vm:read", "vm:migrate"]),
}

/**
 * An authenticated caller.
 *
 * @since 0.1.0
 */
export interface Principal {
  /** Certificate common name, token name, or "anonymous". */
  readonly name: string
  readonly role: Role
  /** How it was authenticated. */
  readonly method: "mtls" | "token" | "none"
}

/**
 * Whether a role (or a principal's role) holds a permission.
 *
 * @since 0.1.0
 */
export const can = (who: Role | Principal, permission: Permission): boolean =>
  grants[typeof who === "string" ? who : who.role].has(permission)

/**
 * Succeeds when the principal holds the permission, fails with `Forbidden` otherwise.
 *
 * @example
 * ```ts
 * import { Authorization } from "@novacron/security"
 * const check = Authorization.authorize({ name: "ops", role: "operator", method: "token" }, "vm:write")
 * ```
 *
 * @since 0.1.0
 */
export const authorize = (principal: Principal, permission: Permission): Effect.Effect<void, Forbidden> =>
  can(principal, permission)
    ? Effect.void
    : Effect.fail(new Forbidden({ principal: principal.name, role: principal.role, permission }))
