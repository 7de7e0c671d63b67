// Worker-thread pool. The worker entry is a sibling file: `worker.js` next to the built bundle,
// or `worker.ts` next to this source file when running from TypeScript (vitest, tsx). Node 20
// does not apply `--import tsx` given in a worker's execArgv, so a TS worker starts from a small
// eval'd bootstrap that loads the entry through tsx's `tsImport`.
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { pathToFileURL } from "node:url"
import { Worker } from "node:worker_threads"
import { Effect, type Scope } from "effect"
import { EncodeError } from "../HdeError.js"
import type { Analysis, EncodeRequest, EncodeResult } from "./chunk.js"
import type { WorkerRequest } from "./worker.js"

/** How to start a worker: a module URL, or (`eval`) JavaScript source that loads one. */
export interface WorkerSpec {
  readonly entry: URL | string
  readonly eval: boolean
}

/** The sibling worker module, bootstrapped through tsx when this file is TypeScript. */
export const defaultWorkerSpec = (): WorkerSpec => {
  const here = import.meta.url
  if (/\.[mc]?ts$/.test(here)) {
    const tsxDir = dirname(createRequire(here).resolve("tsx/package.json"))
    const api = pathToFileURL(join(tsxDir, "dist/esm/api/index.mjs")).href
    const entry = new URL("./worker.ts", here).href
    const code = `import(${JSON.stringify(api)}).then((m) => m.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(here)}))`
    return { entry: code, eval: true }
  }
  return { entry: new URL("./worker.js", here), eval: false }
}

type Reply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string }

interface Slot {
  readonly worker: Worker
  readonly pending: Map<number, (r: Reply) => void>
  load: number
  dead: string | undefined
}

export interface Pool {
  readonly size: number
  readonly analyse: (
    chunk: Uint8Array,
    pageSize: number,
    dedup: boolean,
  ) => Effect.Effect<{ readonly slot: number; readonly id: number; readonly analysis: Analysis }, EncodeError>
  readonly encode: (
    slot: number,
    id: number,
    req: Omit<EncodeRequest, "chunk">,
  ) => Effect.Effect<EncodeResult, EncodeError>
  readonly drop: (slot: number, id: number) => Effect.Effect<void>
}

const fail = (slot: Slot, reason: string) => {
  slot.dead ??= reason
  for (const [id, k] of slot.pending) k({ id, ok: false, error: reason })
  slot.pending.clear()
}

/** Starts `size` workers in the current scope; closing the scope terminates them. */
export const make = (
  size: number,
  spec: WorkerSpec = defaultWorkerSpec(),
): Effect.Effect<Pool, EncodeError, Scope.Scope> =>
  Effect.gen(function* () {
    // No inherited flags: the worker needs none, and some break it (`--input-type` from `node -e`,
    // `--expose-gc` and other per-process flags are refused in workers).
    const execArgv: Array<string> = []
    const slots = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          Array.from({ length: size }, (): Slot => {
            const worker = new Worker(spec.entry, { eval: spec.eval, execArgv })
            const slot: Slot = { worker, pending: new Map(), load: 0, dead: undefined }
            worker.on("message", (r: Reply) => {
              const k = slot.pending.get(r.id)
              slot.pending.delete(r.id)
              k?.(r)
            })
            worker.on("error", (e) => fail(slot, `worker error: ${e.message}`))
            worker.on("exit", (code) => fail(slot, `worker exited with code ${code}`))
            return slot
          }),
        catch: (cause) => new EncodeError({ reason: "cannot start worker threads", cause }),
      }),
      (slots) =>
        Effect.promise(() =>
          Promise.all(
            slots.map((s) => {
              s.dead = "pool closed"
              return s.worker.terminate()
            }),
          ),
        ),
    )
    let nextId = 0

    // Buffers that own their whole ArrayBuffer move to the worker instead of being copied.
    const transferable = (u: Uint8Array | undefined): Array<ArrayBuffer> =>
      u !== undefined && u.byteOffset === 0 && u.byteLength === u.buffer.byteLength && u.buffer instanceof ArrayBuffer
        ? [u.buffer]
        : []
    const call = <A>(slot: Slot, msg: WorkerRequest): Effect.Effect<A, EncodeError> =>
      Effect.async<A, EncodeError>((resume) => {
        if (slot.dead !== undefined) {
          resume(Effect.fail(new EncodeError({ reason: slot.dead })))
          return
        }
        slot.pending.set(msg.id, (r) =>
          resume(r.ok ? Effect.succeed(r.value as A) : Effect.fail(new EncodeError({ reason: r.error }))),
        )
        slot.worker.postMessage(
          msg,
          transferable(msg.op === "analyse" ? msg.chunk : msg.op === "encode" ? msg.req.base : undefined),
        )
        return Effect.sync(() => {
          // Interrupted: forget the reply and let the worker free what it holds.
          if (slot.pending.delete(msg.id) && slot.dead === undefined)
            slot.worker.postMessage({ op: "drop", id: msg.id })
        })
      })

    const at = (i: number): Slot => {
      const s = slots[i]
      if (s === undefined) throw new Error(`no worker ${i}`)
      return s
    }

    return {
      size,
      analyse: (chunk, pageSize, dedup) =>
        Effect.suspend(() => {
          let slot = 0
          for (let i = 1; i < slots.length; i++) if ((slots[i]?.load ?? 0) < at(slot).load) slot = i
          const id = nextId++
          const s = at(slot)
          s.load++
          return call<Analysis>(s, { op: "analyse", id, chunk, pageSize, dedup }).pipe(
            Effect.map((analysis) => ({ slot, id, analysis })),
            Effect.tapErrorCause(() => Effect.sync(() => s.load--)),
          )
        }),
      encode: (slot, id, req) =>
        call<EncodeResult>(at(slot), { op: "encode", id, req }).pipe(
          Effect.map((r) => ({ ...r, frame: Buffer.from(r.frame.buffer, r.frame.byteOffset, r.frame.length) })),
          Effect.ensuring(Effect.sync(() => at(slot).load--)),
        ),
      drop: (slot, id) =>
        Effect.sync(() => {
          const s = at(slot)
          s.load--
          if (s.dead === undefined) s.worker.postMessage({ op: "drop", id })
        }),
    } satisfies Pool
  })
