/**
 * DWCP v1: what every node can always do, and what a part falls back to when its v3 is off or
 * down. Transport: one TLS stream (the host supplies it; see {@link Engine.Transport}).
 * Compression: zstd level 3 in independent chunks. Prediction: none. Placement: first fit.
 * State sync: the node's own memory, journalled so the writes reach the v3 store when it returns.
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import * as Engine from "./Engine.js"
import * as internal from "./internal/zstd.js"

/**
 * zstd level 3 framing: the payload in 1 MiB chunks, each one zstd frame behind its 4-byte length,
 * so a receiver bounds memory per chunk and rejects a chunk that claims more.
 *
 * @since 0.1.0
 * @category engines
 */
export const compression: Engine.Compression = {
  encoding: "zstd3",
  encode: (data) => Effect.sync(() => internal.encode(data, 3)),
  decode: (data, maxSize) =>
    Effect.suspend(() => {
      const r = internal.decode(data, maxSize)
      return "ok" in r
        ? Effect.succeed(r.ok)
        : Effect.fail(new Engine.BadPayload({ reason: r.error, offset: r.offset }))
    }),
}

/**
 * No prediction: transfers run at what the transport finds.
 *
 * @since 0.1.0
 * @category engines
 */
export const prediction: Engine.Prediction = {
  predict: () => Effect.succeed(undefined),
  observe: () => Effect.void,
}

const fits = (w: Engine.WorkloadRequest, h: Engine.HostSpec): boolean =>
  h.schedulable !== false &&
  h.cpuMilli >= w.cpuMilli &&
  h.memoryMib >= w.memoryMib &&
  ((w.gpuMilli ?? 0) === 0 || (h.gpu?.count ?? 0) * 1000 >= (w.gpuMilli ?? 0)) &&
  Object.entries(w.nodeSelector ?? {}).every(([k, v]) => h.labels?.[k] === v)

/**
 * First fit: the first host, in the order given, with the free CPU, memory and GPUs, schedulable
 * and carrying the node selector's labels. No scoring, no affinity.
 *
 * @since 0.1.0
 * @category engines
 */
export const placement: Engine.Placement = {
  place: (w, hosts) => {
    const h = hosts.find((x) => fits(w, x))
    return h
      ? Effect.succeed(h.id)
      : Effect.fail(
          new Engine.NoHostFits({
            workload: w.id,
            reason: `first fit: none of ${hosts.length} hosts has ${w.cpuMilli} mCPU and ${w.memoryMib} MiB free${
              w.nodeSelector ? ` with labels ${JSON.stringify(w.nodeSelector)}` : ""
            }`,
          }),
        )
  },
}

/**
 * The node-local state of v1, with the keys written while on v1 (to write through to v3).
 *
 * @since 0.1.0
 * @category engines
 */
export interface LocalState extends Engine.StateSync {
  /** Keys written on v1 since the last {@link LocalState.drain}, with their latest values. */
  readonly drain: Effect.Effect<ReadonlyArray<readonly [string, string]>>
}

/**
 * @since 0.1.0
 * @category engines
 */
export const localState = (): LocalState => {
  const values = new Map<string, string>()
  const journal = new Map<string, string>()
  return {
    kind: "local (v1)",
    put: (key, value) =>
      Effect.sync(() => {
        values.set(key, value)
        journal.set(key, value)
      }),
    get: (key) => Effect.sync(() => Option.fromNullable(values.get(key))),
    drain: Effect.sync(() => {
      const out = [...journal]
      journal.clear()
      return out
    }),
  }
}
