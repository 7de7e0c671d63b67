import type { X509Certificate } from "node:crypto"
import { CertificateAuthority } from "@novacron/security"

/**
 * The node ids a certificate vouches for: its common name and its DNS subject alternative names
 * (the node's certificate is issued with CN = node id, and the id as a DNS SAN when it is a host name).
 */
export const certificateNodeIds = (cert: X509Certificate): ReadonlyArray<string> => {
  const names: Array<string> = []
  const cn = CertificateAuthority.commonName(cert)
  if (cn !== undefined && cn !== "") names.push(cn)
  for (const entry of (cert.subjectAltName ?? "").split(",")) {
    const m = /^\s*DNS:(.+?)\s*$/.exec(entry)
    // "localhost" is in every node's certificate: it names no node.
    if (m && m[1] !== "localhost" && !names.includes(m[1]!)) names.push(m[1]!)
  }
  return names
}

/** Whether `cert` was issued for node `nodeId`. */
export const certificateNames = (cert: X509Certificate, nodeId: string): boolean =>
  certificateNodeIds(cert).includes(nodeId)

/** The certificate's names for a log line. */
export const describeNames = (cert: X509Certificate): string => {
  const names = certificateNodeIds(cert)
  return names.length === 0 ? "no node" : names.map((n) => `"${n}"`).join(", ")
}
