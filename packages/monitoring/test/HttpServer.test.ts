import { createServer } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import { WireError } from "@novacron/wire"
import { Effect, Exit, Scope } from "effect"
import { HttpServer } from "../src/index.js"

const fetchText = (url: string, init?: RequestInit) =>
  Effect.promise(async () => {
    const r = await fetch(url, init)
    return { status: r.status, type: r.headers.get("content-type"), body: await r.text() }
  })

describe("HttpServer.serve", () => {
  it.live("answers GET with the handler's response, HEAD without a body, other methods 405", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const bound = yield* Scope.extend(
        HttpServer.serve("127.0.0.1", 0, (url) =>
          Effect.succeed({ status: 201, type: "text/plain", body: `at ${url.pathname}?${url.searchParams}` }),
        ),
        scope,
      )
      const base = `http://127.0.0.1:${bound.port}`
      expect(yield* fetchText(`${base}/x?verbose`)).toEqual({ status: 201, type: "text/plain", body: "at /x?verbose=" })
      expect(yield* fetchText(`${base}/x`, { method: "HEAD" })).toMatchObject({ status: 201, body: "" })
      expect(yield* fetchText(`${base}/x`, { method: "POST" })).toMatchObject({ status: 405 })
      yield* Scope.close(scope, Exit.void)
      // Closed with its scope: nothing listens any more.
      const after = yield* Effect.either(Effect.tryPromise(() => fetch(`${base}/x`)))
      expect(after._tag).toBe("Left")
    }),
  )

  it.live("a defect in the handler is a 500 naming it, and the server keeps serving", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const bound = yield* HttpServer.serve("127.0.0.1", 0, (url) =>
          url.pathname === "/boom"
            ? Effect.die(new Error("kaput"))
            : Effect.succeed({ status: 200, type: "text/plain", body: "ok" }),
        )
        const base = `http://127.0.0.1:${bound.port}`
        const boom = yield* fetchText(`${base}/boom`)
        expect(boom.status).toBe(500)
        expect(boom.body).toContain("kaput")
        expect((yield* fetchText(`${base}/`)).status).toBe(200)
      }),
    ),
  )

  it.live("a taken port is a ListenError naming host and port", () =>
    Effect.gen(function* () {
      const taken = createServer()
      yield* Effect.promise(() => new Promise<void>((r) => taken.listen(0, "127.0.0.1", r)))
      const port = (taken.address() as { port: number }).port
      const error = yield* Effect.flip(Effect.scoped(HttpServer.serve("127.0.0.1", port, () => Effect.die("unused"))))
      taken.close()
      expect(error).toBeInstanceOf(WireError.ListenError)
      expect(error).toMatchObject({ address: "127.0.0.1", port, reason: "port already in use" })
      expect(error.message).toBe(`cannot listen on 127.0.0.1:${port}: port already in use`)
    }),
  )
})
