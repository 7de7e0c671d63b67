/**
 * The API under load, beside a bare `node:https` hello-world in the same run (issue 24's goal:
 * >= 0.5x its requests/s, p99 < 10 ms at 64 connections).
 *
 * - token: `wrk` (Debian) with `Authorization: Bearer`, against `/v1/agent/self` and `/v1/vms`
 *   (10 VMs in the fixture's in-memory manager) and the bare server.
 * - mtls: wrk cannot present a client certificate, so a Node keep-alive client (bench/mtls-client.mjs,
 *   its own process) drives both the API (auth_method mtls) and a bare server that requires the
 *   same client certificate; the client's cost is the same on both sides of the ratio.
 *
 * Rounds alternate the targets; each figure is the median over rounds. Run:
 *   pnpm --filter @novacron/api bench          (BENCH_ROUNDS=3 BENCH_SECONDS=8 by default)
 */
import { execFile, spawn } from "node:child_process"
import * as https from "node:https"
import { loadavg } from "node:os"
import { join } from "node:path"
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import { type Fixture, memoryVms, start, tokens } from "../test/helpers.js"

const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const seconds = Number(process.env.BENCH_SECONDS ?? 8)
const connections = 64

interface Figure {
  readonly rps: number
  readonly p99ms: number
  readonly errors: number
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

const unit = (v: string, u: string) => (u === "us" ? Number(v) / 1000 : u === "s" ? Number(v) * 1000 : Number(v))

const wrk = (url: string, headers: ReadonlyArray<string>) =>
  new Promise<Figure>((resolve, reject) => {
    const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", ...headers.flatMap((h) => ["-H", h]), url]
    execFile("wrk", args, { timeout: (seconds + 30) * 1000 }, (error, stdout) => {
      if (error) return reject(new Error(`wrk: ${error.message}`))
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout)
      const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(stdout)
      const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)
      const socketErrors = /Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)/.exec(stdout)
      if (rps === null || p99 === null) return reject(new Error(`wrk printed no figures:\n${stdout}`))
      resolve({
        rps: Number(rps[1]),
        p99ms: unit(p99[1]!, p99[2]!),
        errors:
          Number(non2xx?.[1] ?? 0) +
          (socketErrors === null ? 0 : socketErrors.slice(1).reduce((a, b) => a + Number(b), 0)),
      })
    })
  })

const mtlsClient = (url: string, cert: { cert: string; key: string }, ca: string) =>
  new Promise<Figure>((resolve, reject) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, "mtls-client.mjs")], {
      stdio: ["pipe", "pipe", "inherit"],
    })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.on("error", reject)
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`mtls client exited ${code}`))
      resolve(JSON.parse(out) as Figure)
    })
    child.stdin.end(JSON.stringify({ url, connections, seconds, ca, ...cert }))
  })

/** A bare node:https server answering a small JSON body, on the same certificate as the API. */
const bare = (fx: Fixture, requireCert: boolean) =>
  Effect.acquireRelease(
    Effect.async<https.Server & { url: string }>((resume) => {
      const pem = fx.certs.node
      const server = https.createServer(
        { cert: pem.cert, key: pem.key, ca: fx.ca, requestCert: requireCert, rejectUnauthorized: requireCert },
        (_req, res) => {
          res.writeHead(200, { "content-type": "application/json" })
          res.end('{"hello":"world"}')
        },
      )
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as { port: number }
        resume(Effect.succeed(Object.assign(server, { url: `https://127.0.0.1:${port}` })))
      })
    }),
    (s) => Effect.async<void>((resume) => void s.close(() => resume(Effect.void))),
  )

type Row = { readonly name: string; readonly run: () => Promise<Figure> }

const measure = (group: string, rows: ReadonlyArray<Row>, baseline: string) =>
  Effect.promise(async () => {
    const got = new Map<string, Array<Figure>>(rows.map((r) => [r.name, []]))
    for (let i = 0; i < rounds; i++) {
      for (const r of rows) got.get(r.name)!.push(await r.run())
    }
    const base = median(got.get(baseline)!.map((f) => f.rps))
    console.log(`\n${group}: ${connections} connections, ${seconds} s x ${rounds} rounds (medians)`)
    console.log("target                      req/s     p99 ms   errors   vs bare")
    for (const r of rows) {
      const fs = got.get(r.name)!
      const rps = median(fs.map((f) => f.rps))
      console.log(
        `${r.name.padEnd(26)}${rps.toFixed(0).padStart(7)}${median(fs.map((f) => f.p99ms))
          .toFixed(2)
          .padStart(11)}${fs
          .reduce((a, f) => a + f.errors, 0)
          .toString()
          .padStart(9)}${`x${(rps / base).toFixed(2)}`.padStart(10)}`,
      )
    }
  })

/**
 * The floor of the framework: @effect/platform's router on NodeHttpServer, one route answering the
 * same body as the bare server, no auth, no middleware. Separates the platform's cost from ours.
 */
const minimalEffect = (fx: Fixture) =>
  Effect.gen(function* () {
    const pem = fx.certs.node
    const app = HttpRouter.empty.pipe(HttpRouter.get("/", HttpServerResponse.unsafeJson({ hello: "world" })))
    const scope = yield* Effect.scope
    const ctx = yield* Layer.buildWithScope(
      HttpServer.serve(app).pipe(
        Layer.provideMerge(
          NodeHttpServer.layer(() => https.createServer({ cert: pem.cert, key: pem.key }), {
            port: 0,
            host: "127.0.0.1",
          }),
        ),
      ),
      scope,
    )
    const address = Context.get(ctx, HttpServer.HttpServer).address
    return `https://127.0.0.1:${address._tag === "TcpAddress" ? address.port : 0}`
  })

const program = Effect.gen(function* () {
  console.log(
    `load average before: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  )
  // Rate limits off: the server's own cost is measured, not its limiter (which answers 429 fast).
  const limits = { rate_limit: 0 }
  const token = yield* start("token", limits)
  yield* defineVms(token)
  const bareToken = yield* bare(token, false)
  const minimal = yield* minimalEffect(token)
  const bearer = [`Authorization: Bearer ${tokens.reader}`]
  yield* measure(
    "token (wrk)",
    [
      { name: "bare node:https", run: () => wrk(`${bareToken.url}/`, bearer) },
      { name: "effect HttpRouter, 1 route", run: () => wrk(`${minimal}/`, bearer) },
      { name: "GET /v1/agent/self", run: () => wrk(`${token.url}/v1/agent/self`, bearer) },
      { name: "GET /v1/vms", run: () => wrk(`${token.url}/v1/vms`, bearer) },
    ],
    "bare node:https",
  )

  const mtls = yield* start("mtls", limits)
  yield* defineVms(mtls)
  const bareMtls = yield* bare(mtls, true)
  const reader = mtls.certs.reader
  yield* measure(
    "mtls (node keep-alive client)",
    [
      { name: "bare node:https (mTLS)", run: () => mtlsClient(`${bareMtls.url}/`, reader, mtls.ca) },
      { name: "GET /v1/agent/self", run: () => mtlsClient(`${mtls.url}/v1/agent/self`, reader, mtls.ca) },
      { name: "GET /v1/vms", run: () => mtlsClient(`${mtls.url}/v1/vms`, reader, mtls.ca) },
    ],
    "bare node:https (mTLS)",
  )
  console.log(
    `\nload average after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  )
})

// Ten VMs in the fixture's in-memory manager (its own define), so /v1/vms lists something.
const defineVms = (fx: Fixture) =>
  Effect.forEach(
    Array.from({ length: 10 }, (_, i) => `vm-${i}`),
    (id) => memoryVms(fx.vms).define({ id, vcpus: 1, memory_mb: 128 }),
    { discard: true },
  ).pipe(Effect.orDie)

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Layer.empty))).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
