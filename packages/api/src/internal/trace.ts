// One span per API request. The platform's own HTTP tracer is turned off for the API: it records
// the raw path and query and every request header but a few (X-Novacron-Token included) as span
// attributes. This span names the route template, not the path, so its cardinality is the
// number of routes, and it continues a client's W3C `traceparent` with @novacron/wire's parser.
import { HttpServerError, type HttpServerRequest, type HttpServerResponse } from "@effect/platform"
import { Tracing } from "@novacron/monitoring"
import { Effect, Exit, Option } from "effect"
import * as Api from "../Api.js"

const templates: ReadonlyArray<{ readonly method: string; readonly route: string; readonly regex: RegExp }> = [
  ...Object.values(Api.api.groups).flatMap((group) =>
    Object.values(group.endpoints).map((e) => ({ method: e.method as string, route: e.path as string })),
  ),
  ...Api.extraRoutes.map((r) => ({ method: r.method as string, route: r.path as string })),
  { method: "GET", route: "/v1/event/ws" },
].map(({ method, route }) => ({
  method,
  route,
  regex: new RegExp(`^${route.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:[A-Za-z_]+/g, "[^/]+")}$`),
}))

/** The route template a request matched (`/v1/vms/:id`), undefined when it matched none. */
export const routeOf = (method: string, pathname: string): string | undefined =>
  templates.find((t) => t.method === method && t.regex.test(pathname))?.route

const knownMethods = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"])

/**
 * Runs `handle` (which answers the request) inside the span `<METHOD> <route>`, a child of the
 * request's `traceparent` when it names one. `role` is read after the answer: the principal is
 * known only once the request was authenticated.
 */
export const requestSpan =
  (request: HttpServerRequest.HttpServerRequest, role: () => string) =>
  <E, R>(handle: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) => {
    const method = knownMethods.has(request.method) ? request.method : "_OTHER"
    const route = routeOf(request.method, new URL(request.url, "http://x").pathname)
    const parent = Tracing.parse(request.headers.traceparent)
    return Effect.useSpan(
      route === undefined ? method : `${method} ${route}`,
      {
        kind: "server",
        captureStackTrace: false,
        parent: Option.getOrUndefined(parent),
        attributes: { "http.request.method": method, ...(route === undefined ? {} : { "http.route": route }) },
      },
      (span) =>
        Effect.flatMap(Effect.exit(Effect.withParentSpan(handle, span)), (exit) => {
          const status = HttpServerError.exitResponse(exit).status
          span.attribute("http.response.status_code", status)
          span.attribute("novacron.principal.role", role())
          if (status >= 500 || Exit.isFailure(exit)) span.attribute("error.type", String(status))
          return exit
        }),
    )
  }
