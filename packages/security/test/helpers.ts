import * as fs from "node:fs/promises"
import { Effect, Logger, Ref } from "effect"
import type { NodeInfo, SecuritySettings } from "../src/SecuritySettings.js"
import * as Settings from "../src/SecuritySettings.js"

export const nodeInfo = (data_dir: string, extra: Partial<NodeInfo> = {}): NodeInfo => ({
  data_dir,
  node_id: "node-a",
  listen_address: "127.0.0.1",
  env: {},
  ...extra,
})

export const settings = (raw: Partial<Record<keyof SecuritySettings, unknown>> = {}): SecuritySettings =>
  Settings.decode(raw)

export const modeOf = async (file: string) => (await fs.stat(file)).mode & 0o777

/** Runs `self` with a logger that records messages, returning both. */
export const withLogs = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const logs = yield* Ref.make<ReadonlyArray<{ level: string; message: string }>>([])
    const logger = Logger.make(({ logLevel, message }) => {
      const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
      Effect.runSync(Ref.update(logs, (l) => [...l, { level: logLevel.label, message: text }]))
    })
    const result = yield* Effect.provide(self, Logger.replace(Logger.defaultLogger, logger))
    return [result, yield* Ref.get(logs)] as const
  })
