// An authenticated but Byzantine member (node-d: a cluster certificate, in the member list, driven
// by this test over its own TLS connections) sends arbitrary frames to the three correct members:
// frames of every kind with a wrong shape, payloads that are not JSON, random bytes, frames cut
// off, flipped bytes, huge declared lengths. fast-check (fixed seed, FUZZ_SEED for others) picks
// them. Each one is refused with one log line naming node-d (the Schema issue, or the FrameError
// and the connection closed), nothing it sent changes what the members executed or their view,
// and they keep serving writes.
import * as fs from "node:fs"
import * as tls from "node:tls"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { fuzzSeed } from "@novacron/testing"
import { Wire } from "@novacron/wire"
import { Duration, Effect, Either, Logger, Option, Schedule } from "effect"
import fc from "fast-check"
import type { Pbft } from "../src/index.js"
import * as PbftWire from "../src/internal/pbftWire.js"
import { IDS, makePki, startCluster } from "./support/pbftCluster.js"

const pki = makePki(IDS)
afterAll(() => fs.rmSync(pki.dir, { recursive: true, force: true }))
const HOSTILE = "node-d"
/** the members' default maxFrame */
const MAX_FRAME = 16 * 1024 * 1024

// --- well-formed frames of every kind, as templates to break ---------------------------------
const signature = new Uint8Array(71).fill(7)
const digest = "a".repeat(64)
const request: Pbft.Signed<Pbft.Request> = {
  from: "node-a#0",
  message: { type: "request", client: "node-a#0", timestamp: 1, op: '{"o":"get","k":"x"}' },
  signature,
}
const prePrepare: Pbft.Signed<Pbft.PrePrepare> = {
  from: "0",
  message: { type: "pre-prepare", view: 0, seq: 1, digest, request },
  signature,
}
const prepare: Pbft.Signed<Pbft.Prepare> = {
  from: "1",
  message: { type: "prepare", view: 0, seq: 1, digest, replica: 1 },
  signature,
}
const commit: Pbft.Signed<Pbft.Commit> = {
  from: "1",
  message: { type: "commit", view: 0, seq: 1, digest, replica: 1 },
  signature,
}
const checkpoint: Pbft.Signed<Pbft.Checkpoint> = {
  from: "1",
  message: { type: "checkpoint", seq: 4, state: "b".repeat(64), replica: 1 },
  signature,
}
const viewChange: Pbft.Signed<Pbft.ViewChange> = {
  from: "1",
  message: {
    type: "view-change",
    view: 1,
    stable: 4,
    checkpointProof: [checkpoint],
    prepared: [{ prePrepare, prepares: [prepare] }],
    replica: 1,
  },
  signature,
}
const newView: Pbft.Signed<Pbft.NewView> = {
  from: "1",
  message: { type: "new-view", view: 1, viewChanges: [viewChange], prePrepares: [prePrepare] },
  signature,
}
const reply: Pbft.Signed<Pbft.Reply> = {
  from: "3",
  message: { type: "reply", view: 0, timestamp: 1, client: "node-a#0", replica: 3, result: "{}" },
  signature,
}
const frames: ReadonlyArray<PbftWire.Frame> = [
  ...[request, prePrepare, prepare, commit, checkpoint, viewChange, newView].map((m) => ({ t: "m" as const, m })),
  { t: "r", m: reply },
  { t: "sq", seq: 4 },
  { t: "nv?" },
  { t: "cq", seq: 1 },
  { t: "c", certs: [{ prePrepare, commits: [commit] }] },
  { t: "s", state: { seq: 4, proof: [checkpoint], snapshot: "{}" } },
]
const HEADER = Wire.headerSize(PbftWire.format)
const templates = frames.map((f) => {
  const bytes = PbftWire.encode(f)
  return { kind: f.t, type: bytes[3]!, bytes, json: JSON.parse(bytes.subarray(HEADER).toString("utf8")) as Json }
})

// --- breaking them ---------------------------------------------------------------------------
type Json = null | boolean | number | string | Array<Json> | { [k: string]: Json }
type Path = ReadonlyArray<string | number>
const jsonType = (v: Json) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v)
const paths = (v: Json, at: Path = []): Array<Path> => {
  const inner =
    v !== null && typeof v === "object"
      ? Object.entries(v).flatMap(([k, x]) => paths(x as Json, [...at, Array.isArray(v) ? Number(k) : k]))
      : []
  return at.length === 0 ? inner : [at, ...inner]
}
const at = (v: Json, path: Path): Json => path.reduce<Json>((x, k) => (x as Record<string, Json>)[k]!, v)
/** values of every JSON type; a value of another type than the field's is never valid there */
const WRONG: ReadonlyArray<Json> = [7, -1, 0.5, "x", "", null, true, [], [1], { z: 1 }]

type Case =
  | { readonly how: "replace"; readonly template: number; readonly pick: number; readonly value: number }
  | { readonly how: "delete" | "extra"; readonly template: number; readonly pick: number }
  | { readonly how: "not-an-object"; readonly template: number; readonly value: number }
  | { readonly how: "not-json"; readonly template: number; readonly text: string }
  | { readonly how: "bytes"; readonly bytes: Uint8Array }
  | { readonly how: "cut"; readonly template: number; readonly pick: number }
  | { readonly how: "flip"; readonly template: number; readonly pick: number; readonly mask: number }
  | { readonly how: "huge"; readonly template: number; readonly length: number }

const template = fc.nat({ max: templates.length - 1 })
const cases: fc.Arbitrary<Case> = fc.oneof(
  fc.record({ how: fc.constant("replace" as const), template, pick: fc.nat(), value: fc.nat() }),
  fc.record({ how: fc.constantFrom("delete" as const, "extra" as const), template, pick: fc.nat() }),
  fc.record({ how: fc.constant("not-an-object" as const), template, value: fc.nat() }),
  fc.record({ how: fc.constant("not-json" as const), template, text: fc.string({ maxLength: 40 }) }),
  fc.record({ how: fc.constant("bytes" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 300 }) }),
  fc.record({ how: fc.constant("cut" as const), template, pick: fc.nat() }),
  fc.record({ how: fc.constant("flip" as const), template, pick: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({
    how: fc.constant("huge" as const),
    template,
    length: fc.integer({ min: MAX_FRAME + 1, max: 2 ** 32 - 1 }),
  }),
)

const framed = (type: number, payload: string) => Wire.encode(PbftWire.format, type, Buffer.from(payload, "utf8"))

/** The bytes a case sends, and whether they break the framing (the connection is closed). */
const bytesOf = (c: Case): { readonly bytes: Buffer; readonly framing: boolean } => {
  if (c.how === "bytes") return { bytes: Buffer.from(c.bytes), framing: true }
  const t = templates[c.template]!
  switch (c.how) {
    case "replace": {
      const all = paths(t.json)
      if (all.length === 0) return bytesOf({ how: "extra", template: c.template, pick: 0 })
      const path = all[c.pick % all.length]!
      const old = at(t.json, path)
      // a pre-prepare's request may be null (the null request): not a wrong value there
      const wrong = WRONG.filter((w) => jsonType(w) !== jsonType(old) && !(path.at(-1) === "request" && w === null))
      const json = structuredClone(t.json)
      ;(at(json, path.slice(0, -1)) as Record<string, Json>)[path.at(-1)!] = wrong[c.value % wrong.length]!
      return { bytes: framed(t.type, JSON.stringify(json)), framing: false }
    }
    case "delete": {
      const keys = paths(t.json).filter((p) => typeof p.at(-1) === "string")
      if (keys.length === 0) return bytesOf({ how: "extra", template: c.template, pick: 0 })
      const path = keys[c.pick % keys.length]!
      const json = structuredClone(t.json)
      delete (at(json, path.slice(0, -1)) as Record<string, Json>)[path.at(-1)!]
      return { bytes: framed(t.type, JSON.stringify(json)), framing: false }
    }
    case "extra": {
      const objects = [[], ...paths(t.json)].filter((p) => jsonType(at(t.json, p)) === "object")
      const json = structuredClone(t.json)
      ;(at(json, objects[c.pick % objects.length]!) as Record<string, Json>).zz = 1
      return { bytes: framed(t.type, JSON.stringify(json)), framing: false }
    }
    case "not-an-object": {
      const wrong = WRONG.filter((w) => jsonType(w) !== "object")
      return { bytes: framed(t.type, JSON.stringify(wrong[c.value % wrong.length])), framing: false }
    }
    case "not-json":
      return { bytes: framed(t.type, `{,${c.text}`), framing: false }
    case "cut":
      return { bytes: t.bytes.subarray(0, 1 + (c.pick % (t.bytes.length - 1))), framing: true }
    case "flip": {
      const bytes = Buffer.from(t.bytes)
      bytes[c.pick % bytes.length]! ^= c.mask
      return { bytes, framing: true }
    }
    case "huge": {
      const bytes = Buffer.from(t.bytes)
      bytes.writeUInt32BE(c.length, 4)
      return { bytes, framing: true }
    }
  }
}

/** Connects to a member as node-d, sends the bytes, ends; resolves once the connection closed. */
const sendAsHostile = (port: number, bytes: Buffer) =>
  Effect.async<void>((resume) => {
    const files = pki.nodes.get(HOSTILE)!
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      ca: fs.readFileSync(pki.ca),
      cert: fs.readFileSync(files.cert),
      key: fs.readFileSync(files.key),
      checkServerIdentity: () => undefined,
    })
    socket.on("secureConnect", () => socket.end(bytes))
    socket.on("error", () => {})
    socket.on("close", () => resume(Effect.void))
  })

describe("pbft frames", () => {
  it("every kind decodes to what was encoded (the encoder writes what the Schemas read)", () => {
    for (const frame of frames) {
      const decoded = Either.getOrThrow(
        Wire.decodeAll(PbftWire.format, PbftWire.encode(frame), { maxPayload: 1 << 20 }),
      )
      expect(decoded).toHaveLength(1)
      expect(Either.getOrThrow(PbftWire.decode(decoded[0]!))).toEqual(frame)
    }
  })
})

describe("pbft members and a Byzantine member's arbitrary frames", () => {
  it.live(
    "every frame refused and logged naming the member, nothing executed because of it, writes still served",
    () => {
      const lines: Array<string> = []
      const capture = Logger.make(({ message }) => {
        lines.push(Array.isArray(message) ? message.join(" ") : String(message))
      })
      const fromHostile = () => lines.filter((l) => l.includes(`refused from ${HOSTILE}:`))
      return Effect.gen(function* () {
        const members = yield* startCluster(pki, {
          absent: [HOSTILE],
          callTimeout: Duration.seconds(3),
          viewChangeTimeout: Duration.seconds(1),
        })
        expect(members.map((m) => m.id)).toEqual(["node-a", "node-b", "node-c"])
        let sent = 0
        let writes = 0

        // round robin, so each member logs every refusal (the first 20 per sender are logged)
        const check = (c: Case) =>
          Effect.gen(function* () {
            const i = sent
            const target = members[i % members.length]!
            const before = members.map((m) => m.replica.status())
            const { bytes, framing } = bytesOf(c)
            const logged = fromHostile().length
            yield* sendAsHostile(target.replica.port, bytes)
            sent++
            // its refusal is logged (once: counted at the end)
            yield* Effect.sync(() => fromHostile().length).pipe(
              Effect.repeat({ until: (n) => n > logged, schedule: Schedule.spaced("5 millis") }),
              Effect.timeoutFail({
                duration: "3 seconds",
                onTimeout: () => new Error(`no refusal logged for ${c.how}`),
              }),
            )
            const line = fromHostile()[logged]!
            if (framing) expect(line).toMatch(/pbft frame: \w+ at byte \d+: .*connection closed/)
            else expect(line).toMatch(/: (m|r|sq|nv\?|cq|c|s) frame: \S+: \S/)
            // nothing executed, no view change
            members.forEach((m, k) => {
              const now = m.replica.status()
              expect(now.lastExecuted).toBe(before[k]!.lastExecuted)
              expect(now.view).toBe(before[k]!.view)
            })
            // and writes are still served, through every member in turn
            if (i % 8 === 7) {
              const by = members[writes % members.length]!
              yield* by.store.put(`w${writes}`, String(i))
              writes++
            }
          })

        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(cases, (c) => Effect.runPromise(check(c))),
            { numRuns: 45, seed: fuzzSeed(2028), endOnFailure: true },
          ),
        )
        expect(fromHostile().length).toBe(sent)
        expect(writes).toBeGreaterThan(0)
        // the correct members agree on everything written
        for (const m of members)
          for (let w = 0; w < writes; w++) expect(Option.isSome(yield* m.store.get(`w${w}`))).toBe(true)
      }).pipe(Effect.scoped, Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
    },
    60_000,
  )
})
