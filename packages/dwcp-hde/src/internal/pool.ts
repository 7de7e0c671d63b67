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
  readonly execArgv?: ReadonlyArray<string> | undefined
}

/** The sibling worker module, bootstrapped through tsx when this file is TypeScript. */
export const defaultWorkerSpec = (): WorkerSpec => {
  const here = import.meta.url
  if (/\.[mc]?ts$/.test(here)) {
    const tsxDir = dirname(createRequire(here).resolve("tsx/package.json"))
    const api = pathToFileURL(join(tsxDir, "dist/esm/api/index.mjs")).href
    const entry = new URL("./worker.ts", here).href
    const code = `import(${JSON.stringify(api)}).then((m) => m.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(here)}))`
    // From source, workspace packages (@novacron/wire) resolve to their sources too, as in vitest:
    // no build of theirs is needed to run this one's tests.
    return { entry: code, eval: true, execArgv: ["--conditions=@novacron/source"] }
  }
  return { entry: new URL("./worker.js", here), eval: false }
}

type Reply =
  | {
      readonly id: number
      readonly ok: true
      readonly value: unknown
      /** Input buffers the worker is done with, handed back for reuse. */
      readonly spares?: ReadonlyArray<ArrayBuffer>
    }
  | { readonly id: number; readonly ok: false; readonly error: string }

interface Slot {
  readonly worker: Worker
  readonly pending: Map<number, (r: Reply) => void>
  load: number
  dead: string | undefined
}

/** What a worker job hands back: a value, or the reason it failed. */
export type Outcome<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly error: EncodeError }

/** A chunk held by one worker between its analysis and its encoding. */
export interface Job {
  readonly slot: number
  readonly id: number
}

/**
 * The worker pool, in callback form: the encoder runs two round trips per chunk and orders them
 * itself, and a fiber and a few Deferreds per step cost more main-thread time than the step.
 * Callbacks always run asynchronously, never inside the call that registered them.
 */
export interface Pool {
  readonly size: number
  /**
   * A copy of `bytes` in a buffer that owns its memory (so it can move to a worker), reusing one
   * a worker handed back when there is one of that size: a fresh buffer's page faults cost more
   * than the copy.
   */
  readonly copyIn: (bytes: Uint8Array) => Buffer
  /** Moves `chunk` (not a copy: it must own its buffer) to the least loaded worker for analysis. */
  readonly analyse: (chunk: Uint8Array, pageSize: number, k: (r: Outcome<Analysis>) => void) => Job
  /** Encodes an analysed chunk on the worker that holds it; ends the job. */
  readonly encode: (job: Job, req: Omit<EncodeRequest, "chunk">, k: (r: Outcome<EncodeResult>) => void) => void
  /** Ends a job early (an interrupted transfer): its callback never runs, the worker frees the chunk. */
  readonly drop: (job: Job) => void
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
    const execArgv: Array<string> = [...(spec.execArgv ?? [])]
    const slots = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          Array.from({ length: size }, (): Slot => {
            const worker = new Worker(spec.entry, { eval: spec.eval, execArgv })
            const slot: Slot = { worker, pending: new Map(), load: 0, dead: undefined }
            worker.on("message", (r: Reply) => {
              if (r.ok && r.spares !== undefined) for (const ab of r.spares) keepSpare(ab)
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
    // Enough for every chunk in flight plus its base; more would only hold memory.
    const maxSpares = 8 * size
    const spares: Array<ArrayBuffer> = []
    const keepSpare = (ab: ArrayBuffer) => {
      if (spares.length < maxSpares) spares.push(ab)
    }

    // Buffers that own their whole ArrayBuffer move to the worker instead of being copied.
    const transferable = (u: Uint8Array | undefined): Array<ArrayBuffer> =>
      u !== undefined && u.byteOffset === 0 && u.byteLength === u.buffer.byteLength && u.buffer instanceof ArrayBuffer
        ? [u.buffer]
        : []
    const call = <A>(slot: Slot, msg: WorkerRequest, k: (r: Outcome<A>) => void): void => {
      if (slot.dead !== undefined) {
        const error = new EncodeError({ reason: slot.dead })
        queueMicrotask(() => k({ ok: false, error }))
        return
      }
      slot.pending.set(msg.id, (r) =>
        k(r.ok ? { ok: true, value: r.value as A } : { ok: false, error: new EncodeError({ reason: r.error }) }),
      )
      slot.worker.postMessage(
        msg,
        transferable(msg.op === "analyse" ? msg.chunk : msg.op === "encode" ? msg.req.base : undefined),
      )
    }

    const at = (i: number): Slot => {
      const s = slots[i]
      if (s === undefined) throw new Error(`no worker ${i}`)
      return s
    }
    // Jobs that still count in their worker's load.
    const live = new Set<number>()
    /** Ends a job's hold on its worker, once. */
    const release = (job: Job) => {
      if (live.delete(job.id)) at(job.slot).load--
    }

    return {
      size,
      copyIn: (bytes) => {
        let b: Buffer | undefined
        for (let i = spares.length - 1; i >= 0; i--)
          if (spares[i]?.byteLength === bytes.length) {
            b = Buffer.from(spares.splice(i, 1)[0] as ArrayBuffer)
            break
          }
        b ??= Buffer.allocUnsafeSlow(bytes.length)
        b.set(bytes)
        return b
      },
      analyse: (chunk, pageSize, k) => {
        let slot = 0
        for (let i = 1; i < slots.length; i++) if ((slots[i]?.load ?? 0) < at(slot).load) slot = i
        const job: Job = { slot, id: nextId++ }
        live.add(job.id)
        at(slot).load++
        call<Analysis>(at(slot), { op: "analyse", id: job.id, chunk, pageSize }, (r) => {
          if (!r.ok) release(job)
          k(r)
        })
        return job
      },
      encode: (job, req, k) =>
        call<EncodeResult>(at(job.slot), { op: "encode", id: job.id, req }, (r) => {
          release(job)
          k(
            r.ok
              ? {
                  ok: true,
                  value: {
                    ...r.value,
                    frame: Buffer.from(r.value.frame.buffer, r.value.frame.byteOffset, r.value.frame.length),
                  },
                }
              : r,
          )
        }),
      drop: (job) => {
        if (!live.has(job.id)) return
        const s = at(job.slot)
        s.pending.delete(job.id)
        release(job)
        // Whatever the worker holds for this id goes (a no-op if it holds nothing).
        if (s.dead === undefined) s.worker.postMessage({ op: "drop", id: job.id })
      },
    } satisfies Pool
  })
