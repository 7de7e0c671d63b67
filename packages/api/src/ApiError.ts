/**
 * The API's typed errors: each one a status and a JSON body with `_tag` and the fields that say
 * what went wrong. Malformed input is the platform's `HttpApiDecodeError` (400, with each issue's
 * `path` and `message`).
 *
 * @since 0.1.0
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/**
 * No credentials, or credentials that do not authenticate (401).
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { reason: Schema.String },
  HttpApiSchema.annotations({ status: 401, description: "no or invalid credentials" }),
) {}

/**
 * The caller's role lacks the route's permission (403).
 *
 * @since 0.1.0
 * @category errors
 */
export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { principal: Schema.String, role: Schema.String, permission: Schema.String },
  HttpApiSchema.annotations({ status: 403, description: "the caller's role lacks the route's permission" }),
) {}

/**
 * The named resource does not exist (404).
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound",
  { kind: Schema.String, id: Schema.String },
  HttpApiSchema.annotations({ status: 404 }),
) {}

/**
 * The request is well-formed but conflicts with the resource's state (409).
 *
 * @since 0.1.0
 * @category errors
 */
export class Conflict extends Schema.TaggedError<Conflict>()(
  "Conflict",
  { kind: Schema.String, id: Schema.String, reason: Schema.String },
  HttpApiSchema.annotations({ status: 409 }),
) {}

/**
 * The request is well-formed but cannot be done (422): a spec the VM manager refuses, capacity.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unprocessable extends Schema.TaggedError<Unprocessable>()(
  "Unprocessable",
  { kind: Schema.String, id: Schema.String, reason: Schema.String },
  HttpApiSchema.annotations({ status: 422 }),
) {}

/**
 * The caller sent more than its rate allows (429); `retry_after_ms` says when to try again.
 *
 * @since 0.1.0
 * @category errors
 */
export class TooManyRequests extends Schema.TaggedError<TooManyRequests>()(
  "TooManyRequests",
  { principal: Schema.String, retry_after_ms: Schema.Number },
  HttpApiSchema.annotations({ status: 429 }),
) {}

/**
 * A subsystem this route needs is not running on this node (503): orchestration not connected
 * yet, VMs without QEMU, the state store unreachable.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()(
  "ServiceUnavailable",
  { service: Schema.String, reason: Schema.String },
  HttpApiSchema.annotations({ status: 503 }),
) {}

/**
 * The body is larger than `api.max_body_bytes` (413). Sent before the body is read.
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()(
  "PayloadTooLarge",
  { limit_bytes: Schema.Number },
  HttpApiSchema.annotations({ status: 413 }),
) {}

/**
 * What orchestration-backed routes answer until the host provides a `TaskSource`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const orchestrationNotRunning = (): ServiceUnavailable =>
  new ServiceUnavailable({ service: "orchestration", reason: "orchestration is not running on this node" })
