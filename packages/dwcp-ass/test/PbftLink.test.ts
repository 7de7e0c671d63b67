// PBFT's peer links: who may connect, what a connection may send, and nothing left open after.
import * as fs from "node:fs"
import * as path from "node:path"
import * as tls from "node:tls"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Wire } from "@novacron/wire"
import { Duration, Effect, Exit, Scope } from "effect"
import * as PbftWire from "../src/internal/pbftWire.js"
import { makeCa } from "./support/certs.js"
import { IDS, makePki, startCluster } from "./support/pbftCluster.js"

const pki = makePki([...IDS, "node-x"])
const strangers = makeCa(path.join(pki.dir, "other-ca"), "other-ca")
const stranger = strangers.issue(path.join(pki.dir, "stranger"), "node-b")
afterAll(() => fs.rmSync(pki.dir, { recursive: true, force: true }))

/** Connects to a member with these files; resolves how the connection ended. */
const dial = (port: number, files: { cert: string; key: string }, send?: Buffer) =>
  Effect.async<string>((resume) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      ca: fs.readFileSync(pki.ca),
      cert: fs.readFileSync(files.cert),
      key: fs.readFileSync(files.key),
      checkServerIdentity: () => undefined,
    })
    let outcome = "open"
    socket.on("secureConnect", () => {
      if (send) socket.write(send)
    })
    socket.on("error", (e) => {
      outcome = `error: ${e.message}`
    })
    socket.on("close", () => resume(Effect.succeed(outcome === "open" ? "closed by the member" : outcome)))
    const t = setTimeout(() => {
      outcome = "still open after 3 s"
      socket.destroy()
    }, 3000)
    socket.on("close", () => clearTimeout(t))
  })

describe("pbft peer links", () => {
  it.live("refused: another CA's certificate, a cluster certificate not in the member list, an oversized frame", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const members = yield* startCluster(pki).pipe(Scope.extend(scope))
      expect(members[0]!.replica.id).toBe("node-a")
      const port = members[0]!.replica.port
      const refusedBefore = members[0]!.replica.status().refused

      // another CA: the handshake fails
      expect(yield* dial(port, stranger)).toMatch(/error|closed/)
      // the cluster CA, but CN=node-x is no member: closed after the handshake, counted
      expect(yield* dial(port, pki.nodes.get("node-x")!)).toBe("closed by the member")
      // a member announcing a frame above the cap: closed
      const huge = Wire.encodeHeader(PbftWire.format, 1, Buffer.alloc(0))
      huge.writeUInt32BE(64 * 1024 * 1024, 4)
      expect(yield* dial(port, pki.nodes.get("node-b")!, huge)).toBe("closed by the member")
      expect(members[0]!.replica.status().refused).toBeGreaterThanOrEqual(refusedBefore + 2)

      // the cluster still works, then its scope closes every listener and connection
      yield* members[1]!.store.put("k", "v")
      yield* Scope.close(scope, Exit.void)
      expect(yield* dial(port, pki.nodes.get("node-b")!)).toMatch(/ECONNREFUSED/)
      yield* Effect.sleep(Duration.millis(10))
    }),
  )
})
