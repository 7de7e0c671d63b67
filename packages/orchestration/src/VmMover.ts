/**
 * How a drain moves a VM from one node to another: the seam where live migration
 * (`@novacron/migration`, issue 27) plugs in. Until it exists, {@link stopStart} moves a VM by
 * stopping it on its node and starting it on the target (the issue allows it when migration does
 * not exist): the VM's disks must be where both nodes see them (shared storage), since its spec
 * (disk paths included) is defined again on the target.
 *
 * A mover's `move` must be idempotent: the drain runs it again after a crash (at-least-once), so a
 * move finding the VM already on the target, or already stopped, goes on from there.
 *
 * @since 0.1.0
 */
import { Vm, type VmManager } from "@novacron/vm"
import { Context, Effect, Option, Schema } from "effect"
import { MoveFailed } from "./OrchestrationError.js"

/**
 * A VM as the drain lists it on its node.
 *
 * @since 0.1.0
 * @category models
 */
export interface VmOnNode {
  readonly id: string
  readonly vcpus: number
  readonly memory_mb: number
  /** Whether it was running (or starting) when listed: it is started again on the target. */
  readonly running: boolean
}

/**
 * One move.
 *
 * @since 0.1.0
 * @category models
 */
export interface MoveRequest {
  readonly vm: string
  readonly from: string
  readonly to: string
  /** Start it on the target (it was running when the drain listed it). */
  readonly start: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface VmMoverApi {
  /** How it moves VMs (`stop-start`, `live-migration`): shown in each move's history. */
  readonly method: string
  /** The VMs on a node. */
  readonly vmsOn: (node: string) => Effect.Effect<ReadonlyArray<VmOnNode>, MoveFailed>
  /** Moves a VM (idempotent); succeeds with what it did. */
  readonly move: (request: MoveRequest) => Effect.Effect<string, MoveFailed>
}

/**
 * The VM mover service.
 *
 * @since 0.1.0
 * @category services
 */
export class VmMover extends Context.Tag("@novacron/orchestration/VmMover")<VmMover, VmMoverApi>() {}

/**
 * What {@link stopStart} needs of a node's VM manager.
 *
 * @since 0.1.0
 * @category models
 */
export type NodeVms = Pick<VmManager.Manager, "list" | "status" | "define" | "start" | "stop" | "remove">

/**
 * Access to the VM manager of a node (this node's, or another's through its API).
 *
 * @since 0.1.0
 * @category models
 */
export type NodeAccess = (node: string) => Effect.Effect<NodeVms, MoveFailed>

const describe = (e: unknown): string =>
  typeof e === "object" && e !== null && "message" in e ? String(e.message) : String(e)

/**
 * Moves a VM by stopping it on its node and starting it on the target, in an order that a replay
 * can resume at any point: define on the target (unless defined there), stop on the source
 * (unless stopped), start on the target (when it was running and is not), remove from the source
 * (unless gone).
 *
 * @since 0.1.0
 * @category constructors
 */
export const stopStart = (access: NodeAccess): VmMoverApi => {
  const find = (m: NodeVms, vm: string) =>
    m.status(vm).pipe(
      Effect.map((s) => Option.some(s.record)),
      Effect.catchTag("VmNotFound", () => Effect.succeed(Option.none<Vm.VmRecord>())),
    )
  const move = ({ vm, from, to, start }: MoveRequest) =>
    Effect.gen(function* () {
      if (from === to) return yield* new MoveFailed({ vm, node: from, reason: "the target is the VM's own node" })
      const src = yield* access(from)
      const dst = yield* access(to)
      const done: Array<string> = []
      const here = yield* find(src, vm)
      const there = yield* find(dst, vm)
      if (Option.isNone(there)) {
        if (Option.isNone(here)) return yield* new MoveFailed({ vm, node: from, reason: `not on ${from} nor on ${to}` })
        yield* dst.define(Schema.encodeSync(Vm.VmSpec)(here.value.spec))
        done.push(`defined on ${to}`)
      }
      if (Option.isSome(here) && here.value.state !== "stopped" && here.value.state !== "defined") {
        const r = yield* src.stop(vm)
        done.push(`stopped on ${from} (${r.method})`)
      }
      if (start) {
        const s = yield* find(dst, vm)
        if (Option.isNone(s) || (s.value.state !== "running" && s.value.state !== "starting")) {
          yield* dst.start(vm)
          done.push(`started on ${to}`)
        }
      }
      if (Option.isSome(here)) {
        yield* src.remove(vm)
        done.push(`removed from ${from}`)
      }
      return done.length === 0 ? `already on ${to}` : done.join(", ")
    }).pipe(
      Effect.mapError((e) => (e instanceof MoveFailed ? e : new MoveFailed({ vm, node: from, reason: describe(e) }))),
    )
  return {
    method: "stop-start",
    vmsOn: (node) =>
      Effect.flatMap(access(node), (m) => m.list).pipe(
        Effect.map((records) =>
          records.map((r) => ({
            id: r.spec.id,
            vcpus: r.spec.vcpus,
            memory_mb: r.spec.memory_mb,
            running: r.state === "running" || r.state === "starting",
          })),
        ),
        Effect.mapError((e) => (e instanceof MoveFailed ? e : new MoveFailed({ vm: null, node, reason: describe(e) }))),
      ),
    move,
  }
}

/**
 * Access to this node's VM manager only: what the node has until VM steps on other nodes are
 * built (a move to another node fails saying so, and the drain reports the VM as left).
 *
 * @since 0.1.0
 * @category constructors
 */
export const localAccess =
  (node: string, manager: NodeVms): NodeAccess =>
  (target) =>
    target === node
      ? Effect.succeed(manager)
      : Effect.fail(
          new MoveFailed({
            vm: null,
            node: target,
            reason: `no access to the VMs of node ${target} from ${node} (VM steps on other nodes are not built)`,
          }),
        )
