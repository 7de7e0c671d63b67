// What the Schema-decoded PBFT frames cost beside the JSON codec they replaced, same run: the
// frames one request makes at n = 4 (3 requests broadcast by the client, 3 pre-prepares carrying
// it, 9 prepares, 12 commits, 3 replies), each encoded and decoded once; per request, medians of
// RUNS runs, the old codec (4-byte length + JSON with `{ "$b": base64 }` byte arrays, no shape
// checks) as the baseline. One ECDSA P-256 verification for scale (a request costs about 40).
import { createSign, createVerify, generateKeyPairSync } from "node:crypto"
import { Wire } from "@novacron/wire"
import { Either } from "effect"
import type { Pbft } from "../src/index.js"
import * as PbftWire from "../src/internal/pbftWire.js"

const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2000)

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

// the codec before (pbftLink.ts up to 538487b)
const oldEncode = (frame: unknown): Buffer => {
  const body = Buffer.from(
    JSON.stringify(frame, (_k, v) => (v instanceof Uint8Array ? { $b: Buffer.from(v).toString("base64") } : v)),
    "utf8",
  )
  const head = Buffer.alloc(4)
  head.writeUInt32BE(body.length, 0)
  return Buffer.concat([head, body])
}
const oldDecode = (bytes: Buffer): unknown =>
  JSON.parse(bytes.subarray(4).toString("utf8"), (_k, v) =>
    v !== null && typeof v === "object" && typeof v.$b === "string" && Object.keys(v).length === 1
      ? new Uint8Array(Buffer.from(v.$b, "base64"))
      : v,
  )

const signature = new Uint8Array(71).fill(7)
const digest = "a".repeat(64)
const request: Pbft.Signed<Pbft.Request> = {
  from: "node-b#3",
  message: {
    type: "request",
    client: "node-b#3",
    timestamp: 1765158000000000,
    op: JSON.stringify({ o: "put", k: "bench/k117", v: "x".repeat(100), at: 1765158000000 }),
  },
  signature,
}
const vote = (type: "prepare" | "commit", replica: number) => ({
  from: String(replica),
  message: { type, view: 0, seq: 1234, digest, replica },
  signature,
})
const mix: ReadonlyArray<readonly [number, PbftWire.Frame]> = [
  [3, { t: "m", m: request }],
  [3, { t: "m", m: { from: "0", message: { type: "pre-prepare", view: 0, seq: 1234, digest, request }, signature } }],
  [9, { t: "m", m: vote("prepare", 2) as Pbft.Signed<Pbft.Prepare> }],
  [12, { t: "m", m: vote("commit", 1) as Pbft.Signed<Pbft.Commit> }],
  [
    3,
    {
      t: "r",
      m: {
        from: "2",
        message: {
          type: "reply",
          view: 0,
          timestamp: 1765158000000000,
          client: "node-b#3",
          replica: 2,
          result: '{"txn":{"ok":true,"revision":4321}}',
        },
        signature,
      },
    },
  ],
]

const decoder = () => Wire.decoder(PbftWire.format, { maxPayload: 16 * 1024 * 1024 })

/** µs per request's frames */
const timeNew = () => {
  const d = decoder()
  const t0 = performance.now()
  for (let r = 0; r < ROUNDS; r++)
    for (const [count, frame] of mix)
      for (let i = 0; i < count; i++) {
        const { frames } = d.push(PbftWire.encode(frame))
        if (Either.isLeft(PbftWire.decode(frames[0]!))) throw new Error("refused")
      }
  return ((performance.now() - t0) * 1000) / ROUNDS
}
const timeOld = () => {
  const t0 = performance.now()
  for (let r = 0; r < ROUNDS; r++)
    for (const [count, frame] of mix)
      for (let i = 0; i < count; i++) if (oldDecode(oldEncode(frame)) === undefined) throw new Error("refused")
  return ((performance.now() - t0) * 1000) / ROUNDS
}
const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
const payload = Buffer.from(JSON.stringify(vote("commit", 1).message))
const sig = createSign("sha256").update(payload).sign(privateKey)
/** µs per ECDSA P-256 verification */
const timeVerify = () => {
  const n = 500
  const t0 = performance.now()
  for (let i = 0; i < n; i++) if (!createVerify("sha256").update(payload).verify(publicKey, sig)) throw new Error("bad")
  return ((performance.now() - t0) * 1000) / n
}

timeNew()
timeOld()
timeVerify()
const news: Array<number> = []
const olds: Array<number> = []
const ratios: Array<number> = []
const verifies: Array<number> = []
for (let run = 0; run < RUNS; run++) {
  const o = timeOld()
  const n = timeNew()
  olds.push(o)
  news.push(n)
  ratios.push(n / o)
  verifies.push(timeVerify())
}
const f = (xs: ReadonlyArray<number>) => xs.map((x) => x.toFixed(1)).join(", ")
console.log(`frames of one request (30), encode + decode, ${RUNS} runs of ${ROUNDS} requests`)
console.log(`  Schema + wire format: ${median(news).toFixed(1)} µs (${f(news)})`)
console.log(`  JSON codec before:    ${median(olds).toFixed(1)} µs (${f(olds)})`)
console.log(`  ratio (median of the runs' ratios): ${median(ratios).toFixed(2)}x`)
console.log(`  one ECDSA P-256 verification: ${median(verifies).toFixed(1)} µs (${f(verifies)})`)
