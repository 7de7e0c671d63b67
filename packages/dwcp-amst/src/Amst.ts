/**
 * The AMST service, configured from `dwcp.transport`, and its `@novacron/init` component.
 *
 * @since 0.1.0
 */
import { Component } from "@novacron/init"
import { Context, Effect, Layer, type Scope } from "effect"
import * as Rdma from "./Rdma.js"
import * as Receiver from "./Receiver.js"
import * as Sender from "./Sender.js"
import type { ListenError, TransferError } from "./TransferError.js"
import type { TransportSettings } from "./TransportSettings.js"

/**
 * Multi-stream transfer with the node's transport settings applied.
 *
 * @since 0.1.0
 */
export interface Service {
  readonly settings: TransportSettings
  /** The RDMA probe made when the service started. */
  readonly rdma: Rdma.Probe
  readonly send: (
    options: Omit<Sender.Options, "settings" | "rdmaProbe">,
  ) => Effect.Effect<Sender.Result, TransferError>
  readonly listen: (options: Receiver.Options) => Effect.Effect<Receiver.Receiver, ListenError, Scope.Scope>
}

/**
 * @since 0.1.0
 */
export class Amst extends Context.Tag("@novacron/dwcp-amst/Amst")<Amst, Service>() {}

/**
 * Builds the service: probes RDMA once (logging why it is absent) and binds the settings.
 *
 * @since 0.1.0
 */
export const make = (settings: TransportSettings): Effect.Effect<Service> =>
  Effect.gen(function* () {
    const rdma = settings.enable_rdma
      ? Rdma.probe()
      : ({ loaded: false, compiled: false, devices: [], error: "disabled" } as const)
    if (settings.enable_rdma && rdma.devices.length === 0) {
      yield* Effect.logInfo(`AMST: no RDMA device (${rdma.error ?? "none listed"}); transfers use TCP`)
    }
    return {
      settings,
      rdma,
      send: (options) => Sender.send({ ...options, settings, rdmaProbe: rdma }),
      listen: Receiver.listen,
    }
  })

/**
 * The service as a Layer.
 *
 * @since 0.1.0
 */
export const layer = (settings: TransportSettings): Layer.Layer<Amst> => Layer.effect(Amst, make(settings))

/**
 * The `@novacron/init` component spec `dwcp-amst`; the host's boot table places it (the node's:
 * services, DEGRADED, since without it migrations only lose the striped transport).
 *
 * @since 0.1.0
 */
export const component = (settings: TransportSettings) =>
  Component.spec({
    name: "dwcp-amst",
    layer: layer(settings),
    description: "multi-stream transfer (TCP/TLS; RDMA detection)",
    healthCheck: Effect.map(Amst, (s) => ({
      status: "healthy" as const,
      details: { rdmaDevices: s.rdma.devices.length, rdma: s.rdma.error ?? "ok" },
    })),
  })
