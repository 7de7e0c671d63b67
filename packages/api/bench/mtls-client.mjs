// A keep-alive HTTPS load client that presents a client certificate (wrk cannot): `connections`
// requests in flight for `seconds`, one per socket. Reads {url, connections, seconds, ca, cert, key}
// as JSON on stdin; prints {rps, p99ms, errors}. Runs in its own process, beside the server's.
import * as https from "node:https"

const input = JSON.parse(
  await new Promise((ok) => {
    let s = ""
    process.stdin.on("data", (d) => (s += d))
    process.stdin.on("end", () => ok(s))
  }),
)
const agent = new https.Agent({
  keepAlive: true,
  maxSockets: input.connections,
  ca: input.ca,
  cert: input.cert,
  key: input.key,
})
const latencies = []
let errors = 0
let done = 0
const until = performance.now() + input.seconds * 1000
const one = () =>
  new Promise((resolve) => {
    const t = performance.now()
    const req = https.get(input.url, { agent }, (res) => {
      res.resume()
      res.on("end", () => {
        if (res.statusCode !== 200) errors++
        latencies.push(performance.now() - t)
        done++
        resolve()
      })
    })
    req.on("error", () => {
      errors++
      resolve()
    })
  })
const loop = async () => {
  while (performance.now() < until) await one()
}
const started = performance.now()
await Promise.all(Array.from({ length: input.connections }, loop))
const elapsed = (performance.now() - started) / 1000
latencies.sort((a, b) => a - b)
process.stdout.write(
  JSON.stringify({ rps: done / elapsed, p99ms: latencies[Math.floor(latencies.length * 0.99)] ?? 0, errors }),
)
agent.destroy()
