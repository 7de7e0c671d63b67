/**
 * The `monitoring:` section of `novacron.yaml`, owned here and composed by `@novacron/config`
 * (imported on this subpath, so the config does not load the HTTP servers).
 *
 * @since 0.1.0
 */
import * as Common from "@novacron/init/CommonSettings"
import { Schema } from "effect"

const allowed = (message: string) => ({ message: () => ({ message, override: true }) })
const bool = Schema.Boolean.annotations(allowed("expected true or false"))
const opt = <S extends Schema.Schema.AnyNoContext>(schema: S, value: () => Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: value, exact: true })

/**
 * @since 0.1.0
 * @category schemas
 */
export const MonitoringSettings = Schema.Struct({
  /** `/metrics` on `metrics_port`; health and `/status` are always served. */
  enabled: opt(bool, () => true),
  /** Where health and metrics listen (they are unauthenticated, hence loopback by default). */
  listen_address: opt(Schema.NonEmptyString.annotations(allowed("expected an address")), () => "127.0.0.1"),
  metrics_port: opt(Common.Port, () => 7781),
  /** Export spans over OTLP/HTTP (JSON) to `tracing_endpoint` (the design's `enable_tracing`). */
  tracing: opt(bool, () => false),
  /** An OTLP/HTTP collector, `http(s)://host:port` (spans go to `<it>/v1/traces`); `""`: none. */
  tracing_endpoint: opt(
    Schema.String.pipe(Schema.pattern(/^(|https?:\/\/[^\s/]+(\/\S*)?)$/)).annotations(
      allowed('expected an http(s) URL of an OTLP/HTTP collector (e.g. "http://127.0.0.1:4318") or ""'),
    ),
    () => "",
  ),
  /** CPU profiles and heap snapshots on `profiling_port` (`Profiling`), for admin tokens only. */
  enable_profiling: opt(bool, () => false),
  profiling_port: opt(Common.Port, () => 6060),
})

/**
 * @since 0.1.0
 * @category models
 */
export type MonitoringSettings = typeof MonitoringSettings.Type

/**
 * The defaults (the decoding of an empty section).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: MonitoringSettings = Schema.decodeUnknownSync(MonitoringSettings)({})
