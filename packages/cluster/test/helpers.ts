import * as fs from "node:fs/promises"
import * as https from "node:https"
import { tempDir } from "@novacron/testing"
import { Effect, Logger } from "effect"
import * as ClusterCa from "../src/ClusterCa.js"
import * as JoinServer from "../src/JoinServer.js"
import * as JoinToken from "../src/JoinToken.js"

export const modeOf = async (file: string) => (await fs.stat(file)).mode & 0o777

export type Log = { readonly level: string; readonly message: string }

/** A logger that records into `logs` (the join server logs on fibers of its own, so no Ref scoping). */
export const recording = (logs: Array<Log>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
      logs.push({ level: logLevel.label, message: text })
    }),
  )

/**
 * A seed on loopback: CA, node certificate and a running join server on a free port, with the
 * join address recorded so tokens point at it.
 */
export const seed = (options: Partial<JoinServer.JoinServerOptions> = {}) =>
  Effect.gen(function* () {
    const dir = yield* tempDir
    yield* ClusterCa.init({ dataDir: dir, nodeId: "seed", joinAddress: "127.0.0.1:1" })
    const server = yield* JoinServer.make({ dataDir: dir, port: 0, peerAddress: "127.0.0.1:7700", ...options })
    yield* ClusterCa.init({ dataDir: dir, nodeId: "seed", joinAddress: `127.0.0.1:${server.port}` })
    const token = (ttl: string | number = "1 hour", uses = 1) =>
      Effect.map(ClusterCa.createToken(dir, { ttl: ttl as never, uses }), (t) => JoinToken.encode(t.token))
    return { dir, server, token }
  })

/** A raw HTTPS POST to the join server (for requests `join` would never send). */
export const post = (
  port: number,
  body: string | Buffer,
  headers: Record<string, string | number> = {},
  chunked = false,
): Promise<{ status: number; text: string }> =>
  new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/v1/join",
        rejectUnauthorized: false,
        agent: false,
        headers: {
          "content-type": "application/json",
          ...(chunked ? {} : { "content-length": Buffer.byteLength(body) }),
          ...headers,
        },
      },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }))
        res.on("error", reject)
      },
    )
    req.on("error", reject)
    if (chunked) {
      const b = Buffer.from(body)
      for (let i = 0; i < b.length; i += 512) req.write(b.subarray(i, i + 512))
      req.end()
    } else req.end(body)
  })
