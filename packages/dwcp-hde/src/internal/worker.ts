// Worker thread entry: holds analysed chunks until their encode request arrives, so the chunk
// crosses the thread boundary once.
import { parentPort } from "node:worker_threads"
import { analyse, type EncodeRequest, encodeChunk } from "./chunk.js"

export type WorkerRequest =
  | {
      readonly op: "analyse"
      readonly id: number
      readonly chunk: Uint8Array
      readonly pageSize: number
    }
  | { readonly op: "encode"; readonly id: number; readonly req: Omit<EncodeRequest, "chunk"> }
  | { readonly op: "drop"; readonly id: number }

const held = new Map<number, Uint8Array>()

const owning = (u: Uint8Array | undefined): u is Uint8Array =>
  u !== undefined && u.byteOffset === 0 && u.byteLength === u.buffer.byteLength && u.buffer instanceof ArrayBuffer
const port = parentPort
if (port === null) throw new Error("dwcp-hde worker started outside a worker thread")

port.on("message", (m: WorkerRequest) => {
  try {
    if (m.op === "analyse") {
      held.set(m.id, m.chunk)
      port.postMessage({ id: m.id, ok: true, value: analyse(m.chunk, m.pageSize) })
    } else if (m.op === "encode") {
      const chunk = held.get(m.id)
      if (chunk === undefined) throw new Error(`no analysed chunk ${m.id}`)
      held.delete(m.id)
      const value = encodeChunk({ ...m.req, chunk })
      // Transfer the frame when it owns its memory (small pooled buffers are copied), and hand
      // the input buffers back to the pool for reuse.
      const spares = [chunk, m.req.base].filter(owning).map((u) => u.buffer as ArrayBuffer)
      const moved = owning(value.frame) ? [value.frame.buffer as ArrayBuffer, ...spares] : spares
      port.postMessage({ id: m.id, ok: true, value, spares }, moved)
    } else {
      held.delete(m.id)
    }
  } catch (e) {
    if (m.op !== "drop") held.delete(m.id)
    port.postMessage({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) })
  }
})
