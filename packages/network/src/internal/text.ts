/**
 * Turning peer-supplied and OpenSSL text into something safe and readable in a log line.
 */

const MAX_PEER_TEXT = 200

const ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" }

/**
 * A string a peer sent (Goodbye or Refused text, a node id), for a log line: control, line-breaking
 * and bidi characters escaped (no forged lines, no terminal escapes), cut at 200 characters.
 */
export const peerText = (value: unknown): string => {
  const text = typeof value === "string" ? value : value === undefined ? "" : String(value)
  const cut = text.length > MAX_PEER_TEXT
  const escaped = (cut ? text.slice(0, MAX_PEER_TEXT) : text).replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
    /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069]/g,
    (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  )
  return cut ? `${escaped}… (${text.length} characters)` : escaped
}

// OpenSSL reason codes (as Node's `ERR_SSL_*` error codes) in plain words.
const SSL_REASONS: Record<string, string> = {
  ERR_SSL_WRONG_VERSION_NUMBER: "the client does not speak TLS (plain bytes on a TLS port)",
  ERR_SSL_HTTP_REQUEST: "the client sent an HTTP request to the TLS cluster port",
  ERR_SSL_UNSUPPORTED_PROTOCOL: "the client's TLS version is too old (TLS 1.2 or newer is required)",
  ERR_SSL_NO_PROTOCOLS_AVAILABLE: "no TLS version in common with the peer",
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: "the client sent no certificate (mutual TLS requires one)",
  ERR_SSL_CERTIFICATE_VERIFY_FAILED: "the peer's certificate is not issued by a trusted CA",
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: "the peer does not trust this node's CA",
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: "the peer rejected this node's certificate",
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: "the peer says this node's certificate has expired",
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: "no TLS version in common with the peer",
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: "the peer aborted the TLS handshake (no common cipher or certificate refused)",
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: "the peer requires a client certificate",
  ERR_TLS_HANDSHAKE_TIMEOUT: "the TLS handshake did not finish within conn_timeout",
  ECONNRESET: "the peer closed the connection during the TLS handshake (it may not trust this node's certificate)",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the peer's certificate is not issued by a trusted CA",
  UNABLE_TO_GET_ISSUER_CERT: "the peer's certificate is not issued by a trusted CA",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "the peer's certificate is not issued by a trusted CA",
  CERT_SIGNATURE_FAILURE: "the peer's certificate signature does not verify",
  CERT_REVOKED: "the peer's certificate is revoked",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the peer's certificate is self-signed and not trusted",
  SELF_SIGNED_CERT_IN_CHAIN: "the peer's certificate chain ends in an untrusted CA",
  CERT_HAS_EXPIRED: "the peer's certificate has expired",
  CERT_NOT_YET_VALID: "the peer's certificate is not valid yet",
}

/**
 * A TLS error in plain words: known codes mapped, otherwise OpenSSL's reason text without the
 * `error:0A000418:SSL routines:func:` prefix and the `../deps/openssl/….c:123:` source path.
 */
export const tlsReason = (error: unknown): string => {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined
  if (typeof code === "string" && SSL_REASONS[code] !== undefined) return SSL_REASONS[code]
  const message = error instanceof Error ? error.message : typeof code === "string" ? code : String(error)
  const openssl = /error:[0-9A-Fa-f]+:[^:]*:[^:]*:([^:]+)/.exec(message)
  return (openssl ? openssl[1]! : message).replace(/:?\.\.?\/[^\s:]+\.c:\d+:?/g, "").trim()
}
