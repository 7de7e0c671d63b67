// The admin socket against the stand-in manager (no QEMU needed): the protocol, its bounds, errors.
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Database } from "@novacron/database"
import { tempDir } from "@novacron/testing"
import { Effect, Layer } from "effect"
import * as VmAdmin from "../src/VmAdmin.js"
import { VmQemuUnavailable } from "../src/VmError.js"
import * as VmManager from "../src/VmManager.js"
import * as VmStore from "../src/VmStore.js"

const serve = (dir: string) =>
  Layer.build(
    VmAdmin.layer(VmAdmin.socketPath(dir), { maxLineLength: 1024 }).pipe(
      Layer.provideMerge(VmManager.layerUnavailable(new VmQemuUnavailable({ detail: "no emulator in this test" }))),
      Layer.provide(VmStore.layerDatabase),
      Layer.provide(Database.layerSqlite({ path: ":memory:" })),
    ),
  )

const raw = (file: string, payload: string) =>
  Effect.promise(
    () =>
      new Promise<string>((resolve) => {
        const s = net.createConnection({ path: file }, () => s.write(payload))
        let out = ""
        s.setEncoding("utf8")
        s.on("data", (d) => {
          out += d
        })
        s.on("close", () => resolve(out))
        s.on("error", () => resolve(out))
        setTimeout(() => s.destroy(), 1000)
      }),
  )

describe("VmAdmin", () => {
  it.scopedLive("answers list, and returns the manager's typed error by tag", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* serve(dir)
      const file = VmAdmin.socketPath(dir)
      expect(fs.statSync(file).mode & 0o777).toBe(0o600)
      expect(yield* VmAdmin.call(file, { op: "list" })).toEqual([])
      const err = yield* Effect.flip(VmAdmin.call(file, { op: "start", id: "web-1" }))
      expect(err.tag).toBe("VmQemuUnavailable")
      expect(err.message).toBe("qemu unavailable: no emulator in this test")
      const missing = yield* Effect.flip(VmAdmin.call(file, { op: "show", id: "nope" }))
      expect(missing).toMatchObject({ tag: "VmNotFound", message: "vm nope: not defined on this node" })
    }),
  )

  it.scopedLive("a request that does not decode gets BadRequest naming the problem; the server stays up", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* serve(dir)
      const file = VmAdmin.socketPath(dir)
      const out = yield* raw(file, '{"op":"explode"}\nnot json\n')
      const [a, b] = out
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
      expect(a).toMatchObject({ ok: false, error: { tag: "BadRequest" } })
      expect(a.error.message).toContain("explode")
      expect(b).toMatchObject({ ok: false, error: { tag: "BadRequest" } })
      expect(yield* VmAdmin.call(file, { op: "list" })).toEqual([])
    }),
  )

  it.scopedLive("a line over the bound is refused and the connection closed", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* serve(dir)
      const out = yield* raw(VmAdmin.socketPath(dir), "x".repeat(4096))
      expect(JSON.parse(out.trim())).toMatchObject({
        ok: false,
        error: { tag: "BadRequest", message: "request line exceeds 1024 characters" },
      })
    }),
  )

  it.live("no agent: a Transport error naming the socket", () =>
    Effect.gen(function* () {
      const err = yield* Effect.flip(VmAdmin.call(path.join("/nonexistent", "vm-admin.sock"), { op: "list" }))
      expect(err.tag).toBe("Transport")
      expect(err.message).toBe("/nonexistent/vm-admin.sock: no agent listening (ENOENT)")
    }),
  )

  it.scopedLive("the socket file is removed when the scope closes", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* Effect.scoped(serve(dir))
      expect(fs.existsSync(VmAdmin.socketPath(dir))).toBe(false)
    }),
  )
})
