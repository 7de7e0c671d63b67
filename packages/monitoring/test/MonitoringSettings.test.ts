import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { MonitoringSettings } from "../src/index.js"

describe("MonitoringSettings", () => {
  it("decodes an empty section to the defaults: loopback, metrics on 7781", () => {
    expect(MonitoringSettings.defaults).toMatchObject({
      enabled: true,
      listen_address: "127.0.0.1",
      metrics_port: 7781,
    })
  })

  it("refuses an out-of-range port and an empty address, naming the key", () => {
    const decode = Schema.decodeUnknownEither(MonitoringSettings.MonitoringSettings)
    const port = decode({ metrics_port: 70000 })
    expect(Either.isLeft(port) && String(port.left)).toMatch(/metrics_port/)
    const address = decode({ listen_address: "" })
    expect(Either.isLeft(address) && String(address.left)).toMatch(/listen_address[\s\S]*expected an address/)
  })

  it("takes an http(s) collector URL or nothing as tracing_endpoint, and refuses anything else", () => {
    const decode = Schema.decodeUnknownEither(MonitoringSettings.MonitoringSettings)
    for (const ok of ["", "http://127.0.0.1:4318", "https://otel.example:4318/", "http://otel:4318/v1/traces"])
      expect(Either.isRight(decode({ tracing_endpoint: ok })), ok).toBe(true)
    for (const bad of ["otel:4318", "grpc://otel:4317", "http://", "http:// otel", 4318]) {
      const r = decode({ tracing_endpoint: bad })
      expect(Either.isLeft(r) && String(r.left), String(bad)).toMatch(
        /tracing_endpoint[\s\S]*expected an http\(s\) URL/,
      )
    }
  })
})
