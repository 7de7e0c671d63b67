// HELLO authentication for receivers without client certificates (the standalone CLI): the sender
// proves it holds the shared token with an HMAC over the HELLO fields and a timestamp, so the token
// itself never crosses the wire. A captured HELLO replays only within `maxSkewMs` and only for the
// same transfer (id, name, size); use TLS for confidentiality.
import { createHmac, timingSafeEqual } from "node:crypto"

export interface HelloFields {
  readonly name: string
  readonly size: number
  readonly chunkSize: number
  readonly stream: number
}

export const maxSkewMs = 5 * 60 * 1000

const message = (transferId: string, h: HelloFields, ts: number) =>
  ["amst-hello-v1", transferId, h.name, h.size, h.chunkSize, h.stream, ts].join("\n")

export const sign = (token: Buffer, transferId: string, h: HelloFields, ts: number): string =>
  createHmac("sha256", token)
    .update(message(transferId, h, ts))
    .digest("hex")

/** Why the HELLO is refused, or undefined when it proves the token. */
export const verify = (
  token: Buffer,
  transferId: string,
  h: HelloFields,
  auth: { readonly ts: number; readonly mac: string } | undefined,
  now: number,
): string | undefined => {
  if (!auth) return "HELLO carries no authentication"
  if (Math.abs(now - auth.ts) > maxSkewMs) return "HELLO timestamp outside the accepted clock skew"
  const want = Buffer.from(sign(token, transferId, h, auth.ts), "hex")
  const got = Buffer.from(auth.mac, "hex")
  return got.length === want.length && timingSafeEqual(got, want) ? undefined : "HELLO authentication failed"
}

const finMessage = (transferId: string, integrity: string, digest: string) =>
  ["amst-fin-v1", transferId, integrity, digest].join("\n")

/**
 * Binds a FIN's digest to the token: on plain TCP the data is not authenticated, so without it an
 * on-path attacker could replace chunks and the digest together.
 */
export const signFin = (token: Buffer, transferId: string, integrity: string, digest: string): string =>
  createHmac("sha256", token)
    .update(finMessage(transferId, integrity, digest))
    .digest("hex")

export const verifyFin = (
  token: Buffer,
  transferId: string,
  integrity: string,
  digest: string,
  mac: string | undefined,
): boolean => {
  if (mac === undefined) return false
  const want = Buffer.from(signFin(token, transferId, integrity, digest), "hex")
  const got = Buffer.from(mac, "hex")
  return got.length === want.length && timingSafeEqual(got, want)
}
