import type * as net from "node:net"
import { Effect } from "effect"
import { AddonUnavailable, NoSocketFd, SocketOptionError } from "../AcpError.js"
import { type Addon, errnoName, load, type NativeResult } from "./native.js"

/** A connected socket, or its file descriptor. */
export type SocketLike = net.Socket | number

interface HandleCarrier {
  readonly _handle?: { readonly fd?: number } | null
  readonly _parent?: HandleCarrier | null
}

/** The fd behind a net.Socket; for a TLS socket, the one of the TCP socket it wraps. */
export const fdOf = (socket: SocketLike): Effect.Effect<number, NoSocketFd> =>
  Effect.suspend(() => {
    if (typeof socket === "number") {
      return socket >= 0 ? Effect.succeed(socket) : Effect.fail(new NoSocketFd({ message: `invalid fd ${socket}` }))
    }
    const s = socket as unknown as HandleCarrier
    const fd = s._handle?.fd ?? s._parent?._handle?.fd
    return typeof fd === "number" && fd >= 0
      ? Effect.succeed(fd)
      : Effect.fail(new NoSocketFd({ message: "socket has no file descriptor (not connected, or destroyed)" }))
  })

export const addon: Effect.Effect<Addon, AddonUnavailable> = Effect.suspend(() => {
  const a = load()
  return a instanceof Error ? Effect.fail(new AddonUnavailable({ message: a.message })) : Effect.succeed(a)
})

/** Runs an addon call on the socket's fd, mapping an errno result to `SocketOptionError`. */
export const call = <A>(
  socket: SocketLike,
  operation: string,
  f: (addon: Addon, fd: number) => NativeResult<A>,
): Effect.Effect<A, AddonUnavailable | NoSocketFd | SocketOptionError> =>
  Effect.flatMap(Effect.all([addon, fdOf(socket)]), ([a, fd]) => {
    const r = f(a, fd)
    if (r.ok) return Effect.succeed(r as A)
    const code = errnoName(r.errno)
    return Effect.fail(
      new SocketOptionError({ operation, errno: r.errno, code, message: `${operation}: ${code} (${r.code})` }),
    )
  })
