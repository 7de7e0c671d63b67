import { Security } from "@novacron/security"
import { Effect, Either } from "effect"

/**
 * The node's TLS for node-to-node listeners (DWCP's receiver, the migration tunnel): its
 * certificate and the security service's rule for a peer, which takes cluster nodes only
 * (certificates it authenticates as role `node`; an operator's client certificate names another role).
 */
export const nodeTls = Effect.map(Security.Security, (sec) => ({
  cert: sec.tls.cert,
  key: sec.tls.key,
  ca: sec.tls.ca,
  isNode: (cert: import("node:crypto").X509Certificate) => {
    const r = Effect.runSync(Effect.either(sec.authenticateCertificate(cert)))
    return Either.isRight(r) && r.right.role === "node"
  },
}))
