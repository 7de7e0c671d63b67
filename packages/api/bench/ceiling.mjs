// The ceiling of a hand-written fast path for GET /v1/vms, outside @effect/platform: a bare
// node:https handler that authenticates a bearer token (SHA-256, map lookup, through Effect.runSync
// as the API's checks are Effects), builds the 10-VM list and sends it, encoded with a Schema like
// the API's (`schema`) or with JSON.stringify alone (`noschema`), beside a hello-world (`bare`).
// Measures whether serving the hot GETs beside the platform could meet the goal.
//   node bench/ceiling.mjs bare 18443 & node bench/ceiling.mjs schema 18444 & node bench/ceiling.mjs noschema 18445 &
//   wrk -t1 -c64 -d5s --latency -H "Authorization: Bearer secret-token" https://127.0.0.1:<port>/v1/vms
// Certificate: openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
//   -keyout /tmp/proto/key.pem -out /tmp/proto/cert.pem -days 2 -subj /CN=localhost
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import * as https from "node:https"
import { Effect, Schema } from "effect"

const opts = {
  key: readFileSync("/tmp/proto/key.pem"),
  cert: readFileSync("/tmp/proto/cert.pem"),
  requestCert: true,
  rejectUnauthorized: false,
}
const tokens = new Map([
  [createHash("sha256").update("secret-token").digest("hex"), { name: "reader", role: "reader" }],
])
const Vm = Schema.Struct({
  id: Schema.String,
  state: Schema.String,
  vcpus: Schema.Number,
  memory_mb: Schema.Number,
  pid: Schema.NullOr(Schema.Number),
  accel: Schema.NullOr(Schema.String),
  term: Schema.NullOr(Schema.Number),
  exit_reason: Schema.NullOr(Schema.String),
  created_at: Schema.Number,
  updated_at: Schema.Number,
})
const encode = Schema.encodeSync(Schema.Struct({ vms: Schema.Array(Vm), index: Schema.Number }))
const vms = Array.from({ length: 10 }, (_, i) => ({
  id: `vm-${i}`,
  state: "running",
  vcpus: 2,
  memory_mb: 1024,
  pid: 1000 + i,
  accel: "tcg",
  term: 3,
  exit_reason: null,
  created_at: 1,
  updated_at: 2,
}))
const auth = (req) =>
  Effect.suspend(() => {
    const token = req.headers.authorization?.slice(7) ?? ""
    const p = tokens.get(createHash("sha256").update(token).digest("hex"))
    return p ? Effect.succeed(p) : Effect.fail("no credentials")
  })
const mode = process.argv[2]
https
  .createServer(opts, (req, res) => {
    if (mode === "bare") {
      res.writeHead(200, { "content-type": "application/json" })
      res.end('{"hello":"world"}')
      return
    }
    const p = Effect.runSync(Effect.either(auth(req)))
    if (p._tag === "Left") {
      res.writeHead(401)
      res.end()
      return
    }
    Effect.runSync(Effect.succeed(p.right.role === "reader"))
    const list = Effect.runSync(Effect.map(Effect.succeed(vms), (v) => ({ vms: v, index: 5 })))
    const body = mode === "noschema" ? JSON.stringify(list) : JSON.stringify(encode(list))
    res.writeHead(200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "x-novacron-index": "5",
    })
    res.end(body)
  })
  .listen(Number(process.argv[3]), "127.0.0.1")
