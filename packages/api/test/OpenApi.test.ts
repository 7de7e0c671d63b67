import { describe, expect, it } from "@effect/vitest"
import { Validator } from "@seriousme/openapi-schema-validator"
import { Effect } from "effect"
import * as Api from "../src/Api.js"
import * as ApiServer from "../src/ApiServer.js"
import { call, start } from "./helpers.js"

describe("OpenAPI", () => {
  it.scopedLive("the served document is valid OpenAPI 3.1 and lists every route with its method", () =>
    Effect.gen(function* () {
      const fx = yield* start("token")
      const r = yield* Effect.promise(() => call(fx, "GET", "/v1/openapi.json"))
      expect(r.status).toBe(200)
      const doc = r.json
      expect(doc.openapi).toBe("3.1.0")
      const result = yield* Effect.promise(() => new Validator().validate(structuredClone(doc)))
      expect(result.errors ?? []).toEqual([])
      expect(result.valid).toBe(true)
      const listed = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
        .flatMap(([path, ops]) =>
          Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`),
        )
        .sort()
      expect(listed).toEqual([...ApiServer.routePermissions.keys()].sort())
      expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["bearer", "mtls", "token"])
      // Typed errors are documented beside each route.
      expect(doc.paths["/v1/vms"].post.responses["400"]).toBeDefined()
      expect(doc.paths["/v1/vms"].post.responses["403"]).toBeDefined()
      expect(doc.paths["/v1/nodes/{id}/drain"].post.responses["503"]).toBeDefined()
    }),
  )

  it("a document with a broken route fails the validator (the check can fail)", async () => {
    const doc = structuredClone(ApiServer.openApi()) as unknown as { paths: Record<string, any> }
    doc.paths["/v1/vms"].get.responses = "nothing"
    const result = await new Validator().validate(doc as never)
    expect(result.valid).toBe(false)
  })

  it.scopedLive("the Scalar page and its bundle come from the package, not a CDN", () =>
    Effect.gen(function* () {
      const fx = yield* start("mtls")
      const page = yield* Effect.promise(() => call(fx, "GET", "/v1/docs", { cert: fx.certs.reader }))
      expect(page.status).toBe(200)
      expect(page.headers["content-type"]).toMatch(/text\/html/)
      expect(page.text).toContain('src="/v1/docs/scalar.js"')
      expect(page.text).not.toMatch(/https?:\/\//)
      const js = yield* Effect.promise(() => call(fx, "GET", "/v1/docs/scalar.js", { cert: fx.certs.reader }))
      expect(js.status).toBe(200)
      expect(js.text.length).toBeGreaterThan(1_000_000)
      expect(js.text).toContain("createApiReference")
      expect(Api.extraRoutes.map((r) => r.path)).toContain("/v1/docs")
    }),
  )
})
