// The gossip datagram: signed by a node certificate of the cluster CA, Schema-decoded, bounded.
import { createPrivateKey, sign, X509Certificate } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Wire from "../src/internal/wire.js"
import { makeCa } from "./support/certs.js"

let root: string
let me: Wire.Identity
let stranger: Wire.Identity
let opener: Wire.Opener

const identity = (cert: string, key: string): Wire.Identity => {
  const c = new X509Certificate(fs.readFileSync(cert))
  return { id: Wire.commonName(c)!, cert: c.raw, key: createPrivateKey(fs.readFileSync(key)) }
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "novacron-gossip-wire-"))
  const ca = makeCa(path.join(root, "ca"), "cluster-ca")
  const a = ca.issue(path.join(root, "a"), "node-a")
  me = identity(a.cert, a.key)
  const other = makeCa(path.join(root, "other"), "other-ca")
  const s = other.issue(path.join(root, "s"), "node-a")
  stranger = identity(s.cert, s.key)
  opener = new Wire.Opener({ ca: new X509Certificate(fs.readFileSync(ca.cert)), maxSkewMs: 60_000 })
}, 30_000)

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true })
})

// The certificates are valid for two days from their creation: test "now" is the real now.
const t = () => Date.now()

describe("gossip wire", () => {
  it("round trip: sender known by its certificate's common name, bytes intact", () => {
    const msg = { k: "delta", d: [{ o: "node-a", u: new Uint8Array([1, 2, 3, 250]) }] } as const
    const r = opener.open(Wire.seal(me, msg, t()), t())
    expect(r._tag).toBe("Ok")
    if (r._tag === "Ok") {
      expect(r.from).toBe("node-a")
      expect(r.message).toEqual({ k: "delta", d: [{ o: "node-a", u: new Uint8Array([1, 2, 3, 250]) }] })
    }
  })

  it("refuses: another CA, a flipped byte, a replay, a malformed payload, truncation, oversize", () => {
    const ping = { k: "ping", seq: 1, target: "node-b", g: [] } as const
    const why = (b: Buffer, at = t()) => {
      const r = opener.open(b, at)
      return r._tag === "Refused" ? r.reason : "accepted"
    }
    expect(why(Wire.seal(stranger, ping, t()))).toMatch(/CN=node-a.* is not issued by the cluster CA/)
    const good = Wire.seal(me, ping, t())
    const flipped = Buffer.from(good)
    flipped[flipped.length - 90]! ^= 1
    expect(why(flipped)).toMatch(/bad signature|payload|does not parse/)
    expect(why(good, t() + 120_000)).toMatch(/replay window/)
    expect(why(good.subarray(0, good.length - 3))).toMatch(/signature length/)
    expect(why(Buffer.alloc(Wire.MAX_DATAGRAM + 1))).toMatch(/datagram of/)
    expect(why(Buffer.from("hello world, not gossip"))).toMatch(/not a NovaCron gossip datagram/)
    // Correctly signed, but the payload is not a valid message (a member with a bug): refused, named.
    const forge = (payload: unknown) => {
      const body = Buffer.from(JSON.stringify(payload))
      const head = Buffer.from(good.subarray(0, 11))
      const plen = Buffer.alloc(2)
      plen.writeUInt16BE(body.length)
      const signed = Buffer.concat([head, me.cert, plen, body])
      const sig = sign("sha256", signed, me.key)
      return Buffer.concat([signed, Buffer.from([sig.length]), sig])
    }
    expect(why(forge({ k: "ping", seq: 1, target: "node-b", g: [] }))).toBe("accepted")
    expect(why(forge({ k: "ping", seq: -5, target: "node-b", g: [] }))).toMatch(/^from node-a: .*seq/s)
    expect(why(forge({ k: "teleport" }))).toMatch(/^from node-a: /)
    // Bounded lists: 65 rumors in one message is more than any sender makes.
    const many = Array.from({ length: 65 }, (_, i) => ({ t: "suspect", id: `n${i}`, inc: 1, from: "x" }))
    expect(why(forge({ k: "gossip", g: many }))).toMatch(/^from node-a: .*64/s)
    expect(() => Wire.seal(me, { k: "gossip", g: many as never }, t())).toThrow(RangeError)
    expect(() => Wire.seal(me, { k: "push", d: [{ o: "node-a", u: new Uint8Array(70_000) }] }, t())).toThrow(RangeError)
  })
})
