/**
 * An established, authenticated connection (either side).
 *
 * @since 0.1.0
 */
import type { Authorization } from "@novacron/security"
import type { Effect, Mailbox } from "effect"
import type { Frame } from "./Frame.js"
import type { ConnectionClosed } from "./NetworkError.js"

/**
 * @since 0.1.0
 */
export interface Connection {
  /** Unique within this node's network service. */
  readonly id: number
  /** `inbound`: accepted by our listener; `outbound`: dialed by us. */
  readonly side: "inbound" | "outbound"
  /** `host:port` of the other end. */
  readonly remoteAddress: string
  /** Who the other end is: from its certificate (mtls), its token, or anonymous (`none`). */
  readonly peer: Authorization.Principal
  /**
   * The node id the other end announced in its Hello or Welcome. With TLS certificates it is the
   * id the certificate names (CN or DNS SAN): a mismatch is refused. See `peerNodeIdSource`.
   */
  readonly peerNodeId: string
  /**
   * `certificate`: `peerNodeId` is one the peer's certificate names (mtls inbound; any TLS outbound).
   * `claimed`: only announced (token or `none` auth inbound, plain TCP outbound): a token proves who
   * holds it (`peer`), not which node it runs on, so treat the id as a label, not an identity.
   *
   * @since 0.2.0
   */
  readonly peerNodeIdSource: "certificate" | "claimed"
  /**
   * Sends an application frame (type 16..255). Resolves once the bytes are handed to the kernel,
   * which gives the caller backpressure. A control type or a payload over `max_frame_size` is a defect.
   */
  readonly send: (type: number, payload: Uint8Array, flags?: number) => Effect.Effect<void, ConnectionClosed>
  /** Incoming application frames; ends when the connection closes. Bounded: a slow reader pauses the socket. */
  readonly receive: Mailbox.ReadonlyMailbox<Frame>
  /** Says Goodbye and closes. */
  readonly close: (reason?: string) => Effect.Effect<void>
  /** Waits for the connection to close; yields the logged reason. */
  readonly awaitClose: Effect.Effect<string>
}
