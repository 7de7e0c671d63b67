/**
 * A fake OTLP/HTTP collector for tests: a node http server on loopback that keeps the spans it
 * is sent (JSON bodies, `POST /v1/traces`).
 *
 * @since 0.1.0
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, type Scope } from "effect"

/**
 * One received span, flattened with its resource's attributes.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly name: string
  readonly attributes: Readonly<Record<string, unknown>>
  readonly resource: Readonly<Record<string, unknown>>
}

/**
 * The running receiver.
 *
 * @since 0.1.0
 * @category models
 */
export interface OtlpReceiver {
  /** The endpoint to configure (`http://127.0.0.1:<port>`); spans go to `<endpoint>/v1/traces`. */
  readonly endpoint: string
  readonly spans: Array<ReceivedSpan>
  /** Requests that were not `POST /v1/traces` with a JSON body, as `METHOD path`. */
  readonly rejected: Array<string>
}

type AnyValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number }
const value = (v: AnyValue | undefined): unknown =>
  v === undefined ? undefined : (v.stringValue ?? v.intValue ?? v.boolValue ?? v.doubleValue)
const attributes = (list: ReadonlyArray<{ key: string; value: AnyValue }> | undefined) =>
  Object.fromEntries((list ?? []).map((a) => [a.key, value(a.value)]))

/**
 * Starts a receiver for the scope (closed with it).
 *
 * @since 0.1.0
 * @category servers
 */
export const otlpReceiver: Effect.Effect<OtlpReceiver, never, Scope.Scope> = Effect.acquireRelease(
  Effect.async<{ receiver: OtlpReceiver; close: () => Promise<void> }>((resume) => {
    const spans: Array<ReceivedSpan> = []
    const rejected: Array<string> = []
    const server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        if (req.method !== "POST" || req.url !== "/v1/traces" || !/json/.test(req.headers["content-type"] ?? "")) {
          rejected.push(`${req.method} ${req.url}`)
          res.writeHead(404).end()
          return
        }
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8"))
        for (const rs of body.resourceSpans ?? []) {
          const resource = attributes(rs.resource?.attributes)
          for (const ss of rs.scopeSpans ?? [])
            for (const s of ss.spans ?? [])
              spans.push({
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId || undefined,
                name: s.name,
                attributes: attributes(s.attributes),
                resource,
              })
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(
        Effect.succeed({
          receiver: { endpoint: `http://127.0.0.1:${port}`, spans, rejected },
          close: () =>
            new Promise<void>((r) => {
              server.closeAllConnections()
              server.close(() => r())
            }),
        }),
      )
    })
  }),
  ({ close }) => Effect.promise(close),
).pipe(Effect.map(({ receiver }) => receiver))
