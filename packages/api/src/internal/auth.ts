import type { IncomingMessage } from "node:http"
import type { TLSSocket } from "node:tls"
import type { Authorization, Security } from "@novacron/security"
import { Effect, Option } from "effect"
import { Unauthorized } from "../ApiError.js"

const bearer = /^Bearer\s+(\S+)\s*$/i

// The principal of a request: a client certificate the TLS handshake verified against the node CA,
// else a token (Authorization: Bearer, or X-Novacron-Token), else the anonymous admin of
// `auth_method: none`, else 401.
export const authenticate = (
  security: Security.Security,
  request: IncomingMessage,
): Effect.Effect<Authorization.Principal, Unauthorized> =>
  Effect.suspend(() => {
    const socket = request.socket as TLSSocket
    if (socket.authorized === true) {
      const cert = socket.getPeerX509Certificate?.()
      if (cert !== undefined) {
        return Effect.mapError(
          security.authenticateCertificate(cert),
          (e) => new Unauthorized({ reason: `client certificate refused: ${e.reason}` }),
        )
      }
    }
    const header = request.headers.authorization
    const fromBearer = typeof header === "string" ? bearer.exec(header)?.[1] : undefined
    if (typeof header === "string" && fromBearer === undefined) {
      return Effect.fail(new Unauthorized({ reason: "Authorization header must be 'Bearer <token>'" }))
    }
    const custom = request.headers["x-novacron-token"]
    const token = fromBearer ?? (typeof custom === "string" ? custom.trim() : undefined)
    if (token !== undefined && token !== "") {
      if (security.authMethod === "mtls") {
        return Effect.fail(new Unauthorized({ reason: "security.auth_method is mtls: present a client certificate" }))
      }
      return Effect.mapError(security.authenticateToken(token), (e) => new Unauthorized({ reason: e.reason }))
    }
    if (Option.isSome(security.anonymous)) return Effect.succeed(security.anonymous.value)
    const peer = socket.getPeerCertificate?.()
    const refused =
      peer !== undefined && Object.keys(peer).length > 0 && socket.authorizationError !== undefined
        ? ` (the client certificate was not accepted: ${String(socket.authorizationError)})`
        : ""
    return Effect.fail(
      new Unauthorized({
        reason:
          `no credentials${refused}: present a client certificate of the node CA, ` +
          "or a token in 'Authorization: Bearer <token>' or 'X-Novacron-Token'",
      }),
    )
  })
