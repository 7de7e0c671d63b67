import { describe, expect, it } from "@effect/vitest"
import { Component } from "@novacron/init"
import { Security, SecuritySettings } from "@novacron/security"
import { tempDir } from "@novacron/testing"
import { Context, Effect, Layer } from "effect"
import { Profiling } from "../src/index.js"

const adminToken = Security.generateToken()
const readerToken = Security.generateToken()

// The endpoint on an ephemeral loopback port, with a Security holding an admin and a reader token.
const endpoint = Effect.gen(function* () {
  const dir = yield* tempDir
  const settings = SecuritySettings.decode({
    auth_method: "token",
    tokens: [
      { name: "ops", role: "admin", sha256: Security.hashToken(adminToken) },
      { name: "dash", role: "reader", sha256: Security.hashToken(readerToken) },
    ],
  })
  const security = Security.layer(settings, { data_dir: dir, node_id: "n1", listen_address: "127.0.0.1", env: {} })
  const placed = Component.place(Profiling.component("127.0.0.1", 0), { phase: "post-init", criticality: "WARNING" })
  const ctx = yield* Layer.build(Layer.provide(placed.layer, security))
  return Context.get(ctx as Context.Context<Profiling.ProfilingEndpoint>, Profiling.ProfilingEndpoint).url
})

const get = (url: string, token?: string) =>
  Effect.promise(async () => {
    const r = await fetch(url, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } })
    return { status: r.status, type: r.headers.get("content-type"), body: await r.text() }
  })

describe("Profiling", () => {
  it.scopedLive("refuses without a token (401), with an unknown one (401) and a non-admin one (403)", () =>
    Effect.gen(function* () {
      const base = yield* endpoint
      expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/debug\/pprof\/$/)
      const none = yield* get(`${base}heap`)
      expect(none.status).toBe(401)
      expect(none.body).toContain("admin token")
      expect((yield* get(`${base}heap`, "not-a-token")).status).toBe(401)
      const reader = yield* get(`${base}heap`, readerToken)
      expect(reader.status).toBe(403)
      expect(reader.body).toContain("admin role")
      expect((yield* get(`${base}nope`, adminToken)).status).toBe(404)
    }),
  )

  it.scopedLive("gives an admin a CPU profile of the seconds asked, and refuses a bad duration", () =>
    Effect.gen(function* () {
      const base = yield* endpoint
      for (const bad of ["0", "61", "1.5", "ten", "-1"]) {
        const r = yield* get(`${base}profile?seconds=${bad}`, adminToken)
        expect(r.status, bad).toBe(400)
        expect(r.body).toContain("seconds must be a whole number from 1 to 60")
      }
      const started = Date.now()
      const r = yield* get(`${base}profile?seconds=1`, adminToken)
      expect(r.status).toBe(200)
      expect(r.type).toBe("application/json")
      expect(Date.now() - started).toBeGreaterThanOrEqual(950)
      const profile = JSON.parse(r.body)
      expect(profile.nodes.length).toBeGreaterThan(0)
      expect(profile.endTime - profile.startTime).toBeGreaterThanOrEqual(900_000) // microseconds
    }),
  )

  it.scopedLive("gives an admin a heap snapshot, one capture at a time (409 while one runs)", () =>
    Effect.gen(function* () {
      const base = yield* endpoint
      const [profile, heap] = yield* Effect.all(
        [get(`${base}profile?seconds=2`, adminToken), Effect.delay(get(`${base}heap`, adminToken), "300 millis")],
        { concurrency: 2 },
      )
      expect(profile.status).toBe(200)
      expect(heap.status).toBe(409)
      const snapshot = yield* get(`${base}heap`, adminToken)
      expect(snapshot.status).toBe(200)
      const parsed = JSON.parse(snapshot.body)
      expect(parsed.snapshot.node_count).toBeGreaterThan(1000)
      expect(parsed.strings).toContain("ProfilingEndpoint")
    }),
  )
})
