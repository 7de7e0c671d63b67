// The migration service: the source's driver (plan, control, relay, QEMU polling, switchover,
// rollback) and the destination's handler (prepare, ready, switchover, discard).
import { randomUUID } from "node:crypto"
import * as fs from "node:fs/promises"
import { Qmp, Vm, VmManager, VmOwnership } from "@novacron/vm"
import { TraceContext } from "@novacron/wire"
import { Deferred, Duration, Effect, Either, Exit, Mailbox, Option, Queue, Schema, type Scope, Stream } from "effect"
import type { Handle, Options, Phase, Progress, Result, Service } from "../Migration.js"
import {
  MigrationCancelled,
  type MigrationError,
  MigrationFailed,
  MigrationInvalid,
  MigrationPeerUnreachable,
  MigrationRejected,
  MigrationTimeout,
} from "../MigrationError.js"
import * as Policy from "../MigrationPolicy.js"
import type * as Wire from "../Wire.js"
import * as T from "./tunnel.js"

const phases: ReadonlyArray<Phase> = ["preparing", "setup", "precopy", "postcopy", "switchover", "completed"]
const MiB = 1024 * 1024
const encodeSpec = Schema.encodeSync(Vm.VmSpec)

const defaultRow: Policy.LinkRow = { transport: "tcp-multistream", compression: { algorithm: "none", level: 0 } }

export const make = (
  options: Options,
): Effect.Effect<Service, Error, Scope.Scope | VmManager.VmManager | VmOwnership.VmOwnership> =>
  Effect.gen(function* () {
    const vms = yield* VmManager.VmManager
    const ownership = yield* VmOwnership.VmOwnership
    const settings = options.settings
    const controlTimeout = Duration.toMillis(settings.control_timeout)
    const registrations = new Map<string, T.Registration>()
    const outgoing = new Set<string>()

    // ---- destination -------------------------------------------------------------------------
    const waitIncoming = (id: string, want: "completed" | "postcopy-active") =>
      Effect.gen(function* () {
        const qmp = yield* vms.qmp(id)
        const deadline = Date.now() + controlTimeout
        for (;;) {
          // Bounded by the control timeout, not QMP's 10 s per command: while QEMU loads the last of
          // the incoming state its main loop may not answer (seen on a loaded CI machine under TCG).
          const info = yield* Qmp.queryMigrate(qmp, { timeout: Duration.millis(Math.max(1000, deadline - Date.now())) })
          if (info.status === want || (want === "postcopy-active" && info.status === "completed")) return
          if (info.status === "failed" || info.status === "cancelled") {
            return yield* Effect.fail(`incoming migration ${info.status}: ${info["error-desc"] ?? "no detail"}`)
          }
          if (Date.now() > deadline) return yield* Effect.fail(`incoming migration still ${info.status}`)
          yield* Effect.sleep("20 millis")
        }
      })

    const onPrepare = (hello: Extract<Wire.Hello, { _tag: "prepare" }>, control: T.ControlChannel) =>
      receive(hello, control).pipe(
        Effect.withSpan("migration.receive", {
          kind: "consumer",
          attributes: { "vm.id": hello.spec.id, "peer.node_id": control.peer, "migration.id": hello.migration },
        }),
        TraceContext.continueFrom(hello.traceparent),
      )

    const receive = (hello: Extract<Wire.Hello, { _tag: "prepare" }>, control: T.ControlChannel) =>
      Effect.gen(function* () {
        const id = hello.spec.id
        const failed = (detail: string) =>
          Effect.zipRight(control.send({ _tag: "failed", detail: detail.slice(0, 4000) }), control.close)
        const multifd = hello.capabilities.some((c) => c.capability === "multifd" && c.state)
        const started = yield* Effect.either(
          vms
            .startIncoming(hello.spec as unknown as Vm.VmSpecInput, {
              capabilities: hello.capabilities,
              parameters: multifd ? { "multifd-channels": hello.channels } : undefined,
            })
            .pipe(
              Effect.timeoutFail({ duration: controlTimeout, onTimeout: () => new Error("QEMU not ready in time") }),
            ),
        )
        if (Either.isLeft(started)) return yield* failed(started.left.message)
        registrations.set(hello.migration, { peer: control.peer, socket: vms.paths(id).incoming })
        yield* Effect.logInfo(`migration ${hello.migration}: receiving ${id} from ${control.peer}`)
        yield* control.send({ _tag: "ready" })
        let resumed = false
        while (!resumed) {
          const msg = yield* Effect.either(control.receive)
          if (Either.isLeft(msg) || msg.right._tag === "cancel") break
          if (msg.right._tag !== "switchover") continue
          const outcome = yield* Effect.either(
            Effect.zipRight(
              waitIncoming(id, msg.right.mode === "precopy" ? "completed" : "postcopy-active"),
              Effect.mapError(vms.resumeIncoming(id, hello.term), (e) => e.message),
            ),
          )
          if (Either.isLeft(outcome)) {
            yield* failed(typeof outcome.left === "string" ? outcome.left : String(outcome.left))
            break
          }
          resumed = true
          yield* control.send({ _tag: "resumed", term: outcome.right.term ?? 0 })
        }
        if (!resumed) {
          // Cancelled, failed or the source went away before switchover: this copy never ran.
          yield* Effect.logInfo(`migration ${hello.migration}: discarding ${id}`)
          yield* Effect.ignore(vms.discardIncoming(id))
          registrations.delete(hello.migration)
          listener.forget(hello.migration)
          return
        }
        // Postcopy channels stay up until the source has sent every page.
        yield* control.closed
        registrations.delete(hello.migration)
        listener.forget(hello.migration)
      }).pipe(Effect.catchAllCause((c) => Effect.logError(`migration ${hello.migration}: destination failed`, c)))

    const listener = yield* T.listen({
      // Empty: loopback when used alone (the agent passes its network.listen_address).
      host: settings.listen_address === "" ? "127.0.0.1" : settings.listen_address,
      port: settings.port,
      tls: options.tls,
      onPrepare,
      lookup: (m) => registrations.get(m),
      controlKeepAliveMs: Duration.toMillis(settings.progress_timeout),
      onRefused: (who, why) => Effect.runFork(Effect.logWarning(`migration tunnel: refused ${who}: ${why}`)),
    })

    // ---- source ------------------------------------------------------------------------------
    const migrate = (vmId: string, to: string, opts: Parameters<Service["migrate"]>[2] = {}) =>
      Effect.gen(function* () {
        const status = yield* Effect.mapError(
          vms.status(vmId),
          (e) => new MigrationInvalid({ vm: vmId, detail: e.message }),
        )
        const rec = status.record
        if (rec.state !== "running" || !status.attached || rec.term === null || status.qmp_status !== "running") {
          return yield* new MigrationInvalid({
            vm: vmId,
            detail: `must be running and attached here (state ${rec.state}, qmp ${status.qmp_status})`,
          })
        }
        if (outgoing.has(vmId)) return yield* new MigrationInvalid({ vm: vmId, detail: "already migrating" })
        if (to === options.nodeId) return yield* new MigrationInvalid({ vm: vmId, detail: "cannot migrate to itself" })
        const term = rec.term
        const plan = Policy.plan(opts.settings ?? settings, {
          row: opts.row ?? defaultRow,
          predictedBandwidth: opts.predictedBandwidth,
          memoryBytes: rec.spec.memory_mb * MiB,
        })
        const id = randomUUID()
        const mailbox = yield* Mailbox.make<Progress>({ capacity: 1024, strategy: "sliding" })
        const result = yield* Deferred.make<Result, MigrationError>()
        const cancel = yield* Deferred.make<void>()
        const driver = drive(vmId, to, id, term, plan, rec.spec, mailbox, cancel).pipe(
          // One migration, one trace: the prepare frame carries this span to the destination.
          Effect.tap((r) =>
            Effect.annotateCurrentSpan({
              "migration.mode": r.mode,
              "migration.total_ms": r.totalMs,
              "migration.downtime_ms": r.downtimeMs ?? -1,
              "migration.transferred_bytes": r.transferred,
              "migration.wire_bytes": r.wireBytes,
            }),
          ),
          Effect.withSpan("migration.send", {
            kind: "producer",
            attributes: { "vm.id": vmId, "peer.node_id": to, "migration.id": id },
          }),
          Effect.ensuring(Effect.sync(() => outgoing.delete(vmId))),
          Effect.exit,
          Effect.flatMap((exit) => Effect.zipRight(mailbox.end, Deferred.complete(result, exit))),
        )
        outgoing.add(vmId)
        yield* Effect.forkScoped(driver)
        return {
          id,
          plan,
          progress: Mailbox.toStream(mailbox),
          result: Deferred.await(result),
          cancel: Deferred.succeed(cancel, undefined).pipe(Effect.asVoid),
        } satisfies Handle
      })

    const drive = (
      vmId: string,
      to: string,
      id: string,
      term: number,
      plan: Policy.Plan,
      spec: Vm.VmSpec,
      mailbox: Mailbox.Mailbox<Progress>,
      cancel: Deferred.Deferred<void>,
    ) =>
      Effect.scoped(
        Effect.gen(function* () {
          const started = Date.now()
          const counter = new T.WireCounter()
          const qmp = yield* Effect.mapError(
            vms.qmp(vmId),
            (e) => new MigrationInvalid({ vm: vmId, detail: e.message }),
          )
          const q = <A, R>(phase: string, e: Effect.Effect<A, { readonly message: string }, R>) =>
            Effect.mapError(e, (err) => new MigrationFailed({ vm: vmId, phase, detail: err.message }))

          let last: Progress = {
            migration: id,
            phase: "preparing",
            transferred: 0,
            remaining: spec.memory_mb * MiB,
            total: spec.memory_mb * MiB,
            dirtyRate: 0,
            expectedDowntimeMs: null,
            passes: 0,
            throttle: 0,
            wireBytes: 0,
            elapsedMs: 0,
          }
          // Progress never runs backwards: the phase and transferred bytes only grow.
          const report = (p: Partial<Progress>) =>
            Effect.suspend(() => {
              const phase =
                p.phase !== undefined && phases.indexOf(p.phase) > phases.indexOf(last.phase) ? p.phase : last.phase
              last = {
                ...last,
                ...p,
                phase,
                transferred: Math.max(last.transferred, p.transferred ?? 0),
                wireBytes: Math.max(last.wireBytes, counter.total),
                elapsedMs: Date.now() - started,
              }
              return mailbox.offer(last)
            })
          yield* report({})

          const address = yield* Effect.mapError(
            options.resolve(to),
            (detail) => new MigrationPeerUnreachable({ vm: vmId, peer: to, detail }),
          )
          const control = yield* Effect.mapError(
            T.openControl(address, options.tls, to, counter, {
              _tag: "prepare",
              migration: id,
              spec: encodeSpec(spec) as unknown as { id: string },
              term,
              capabilities: plan.capabilities,
              channels: plan.channels,
              traceparent: Option.getOrUndefined(yield* TraceContext.current),
              progress_timeout_ms: Math.min(86_400_000, Math.max(1000, Math.round(plan.progressTimeoutMs))),
            }),
            (detail) => new MigrationPeerUnreachable({ vm: vmId, peer: to, detail }),
          )
          const reply = (what: string) =>
            control.receive.pipe(
              Effect.timeoutFail({
                duration: controlTimeout,
                onTimeout: () => `no ${what} within ${controlTimeout} ms`,
              }),
            )
          const ready = yield* Effect.mapError(
            reply("ready"),
            (detail) => new MigrationRejected({ vm: vmId, peer: to, detail }),
          )
          if (ready._tag !== "ready") {
            return yield* new MigrationRejected({
              vm: vmId,
              peer: to,
              detail: ready._tag === "failed" ? ready.detail : `unexpected ${ready._tag}`,
            })
          }

          const sock = `${vms.paths(vmId).dir}/migrate-${id.slice(0, 8)}.sock`
          yield* Effect.promise(() => fs.rm(sock, { force: true }))
          let relayError: string | undefined
          yield* q(
            "relay",
            T.relay(
              sock,
              address,
              options.tls,
              to,
              id,
              counter,
              (why) => {
                relayError ??= why
              },
              plan.tunnelZstd,
            ),
          )
          yield* Effect.addFinalizer(() => Effect.promise(() => fs.rm(sock, { force: true })))

          let switched = "no" as "no" | "sent" | "resumed"
          // Whatever fails before the destination runs the guest: stop the stream, tell the
          // destination to discard, and make sure the source runs (only while it holds the term).
          const rollback = Effect.gen(function* () {
            yield* Effect.ignore(Qmp.migrateCancel(qmp))
            yield* control.send({ _tag: "cancel" })
            yield* control.close
            for (let i = 0; i < 100; i++) {
              const info = yield* Effect.option(Qmp.queryMigrate(qmp))
              const s = Option.getOrUndefined(info)?.status
              if (s === undefined || !["active", "setup", "cancelling", "device", "pre-switchover"].includes(s)) break
              yield* Effect.sleep("50 millis")
            }
            const st = yield* Effect.option(Qmp.queryStatus(qmp))
            if (Option.isSome(st) && !st.value.running) {
              const held = yield* Effect.either(ownership.assert(vmId, term))
              if (Either.isRight(held)) {
                yield* Effect.logWarning(`migration ${id}: resuming ${vmId} on the source`)
                yield* Effect.ignore(Qmp.cont(qmp))
              } else {
                // The destination took the term: it is the VM now; never resume here.
                yield* Effect.logWarning(`migration ${id}: ${vmId} is fenced here (${held.left.message})`)
                yield* Effect.ignore(vms.handOff(vmId))
              }
            }
          })

          const run = Effect.gen(function* () {
            yield* q("setup", Qmp.migrateSetCapabilities(qmp, plan.capabilities))
            yield* q("setup", Qmp.migrateSetParameters(qmp, plan.parameters))
            yield* report({ phase: "setup" })
            // QEMU's MIGRATION events (capability `events`) wake the loop at once on a status change,
            // so completion is not noticed a poll interval late.
            const changed = yield* Queue.sliding<string>(8)
            yield* qmp.events.pipe(
              Stream.filter((e) => e.event === "MIGRATION"),
              Stream.runForEach((e) => Queue.offer(changed, String(e.data.status ?? ""))),
              Effect.forkScoped,
            )
            yield* q("setup", Qmp.migrate(qmp, `unix:${sock}`))
            const deadline = Date.now() + plan.completionTimeoutMs
            let lowest = Number.POSITIVE_INFINITY
            let lowAt = Date.now()
            let postcopy = false
            const switchover = (mode: "precopy" | "postcopy") =>
              Effect.gen(function* () {
                yield* report({ phase: "switchover" })
                switched = "sent"
                yield* control.send({ _tag: "switchover", mode })
                const answer = yield* Effect.mapError(
                  reply("resumed"),
                  (detail) => new MigrationFailed({ vm: vmId, phase: "switchover", detail }),
                )
                if (answer._tag !== "resumed") {
                  return yield* new MigrationFailed({
                    vm: vmId,
                    phase: "switchover",
                    detail: answer._tag === "failed" ? answer.detail : `unexpected ${answer._tag}`,
                  })
                }
                switched = "resumed"
                return answer.term
              })
            let newTerm = term
            for (;;) {
              const info = yield* q("poll", Qmp.queryMigrate(qmp))
              const ram = info.ram
              const page = ram?.["page-size"] ?? 4096
              const s = info.status ?? "none"
              yield* report({
                phase: s === "postcopy-active" ? "postcopy" : s === "active" || s === "device" ? "precopy" : undefined,
                transferred: ram?.transferred ?? 0,
                remaining: ram?.remaining ?? last.remaining,
                total: ram?.total ?? last.total,
                dirtyRate: (ram?.["dirty-pages-rate"] ?? 0) * page,
                expectedDowntimeMs: info["expected-downtime"] ?? last.expectedDowntimeMs,
                passes: ram?.["dirty-sync-count"] ?? 0,
                throttle: info["cpu-throttle-percentage"] ?? 0,
              })
              if (s === "failed" || s === "cancelled") {
                return yield* new MigrationFailed({
                  vm: vmId,
                  phase: last.phase,
                  detail: `qemu: ${s}: ${info["error-desc"] ?? relayError ?? "no detail"}`,
                })
              }
              if (s === "postcopy-active" && switched === "no") newTerm = yield* switchover("postcopy")
              if (s === "completed") {
                if (switched === "no") newTerm = yield* switchover("precopy")
                return { info, term: newTerm, postcopy }
              }
              if (switched === "no") {
                const now = Date.now()
                const remaining = ram?.remaining ?? Number.POSITIVE_INFINITY
                if (remaining < lowest) {
                  lowest = remaining
                  lowAt = now
                }
                if (now > deadline) {
                  return yield* new MigrationTimeout({
                    vm: vmId,
                    kind: "completion",
                    afterMs: plan.completionTimeoutMs,
                  })
                }
                if (now - lowAt > plan.progressTimeoutMs) {
                  return yield* new MigrationTimeout({ vm: vmId, kind: "progress", afterMs: plan.progressTimeoutMs })
                }
                if (
                  plan.postcopy &&
                  !postcopy &&
                  s === "active" &&
                  (ram?.["dirty-sync-count"] ?? 0) >= plan.postcopyAfterPasses
                ) {
                  yield* Effect.logInfo(`migration ${id}: precopy does not converge; switching to postcopy`)
                  yield* q("postcopy", Qmp.migrateStartPostcopy(qmp))
                  postcopy = true
                }
              }
              yield* Effect.raceFirst(Effect.sleep(settings.poll_interval), Queue.take(changed))
            }
          })

          const destinationGone = Effect.flatMap(control.closed, (why) =>
            switched !== "resumed"
              ? Effect.fail(new MigrationFailed({ vm: vmId, phase: last.phase, detail: `destination: ${why}` }))
              : Effect.never,
          )
          // A cancel after the switchover was asked for is too late: the destination may run the guest.
          const cancelled = Effect.zipRight(
            Deferred.await(cancel),
            Effect.suspend(() =>
              switched === "no" ? Effect.fail(new MigrationCancelled({ vm: vmId })) : Effect.never,
            ),
          )
          const outcome = yield* Effect.exit(Effect.raceFirst(run, Effect.raceFirst(destinationGone, cancelled))).pipe(
            // The caller's scope closed mid-way: the same rollback as a failure.
            Effect.onInterrupt(() => (switched === "resumed" ? Effect.void : rollback)),
          )
          if (Exit.isFailure(outcome)) {
            if (switched !== "resumed") yield* rollback
            return yield* Effect.failCause(outcome.cause)
          }
          const { info, term: newTerm, postcopy } = outcome.value
          const wire = counter.total
          yield* Effect.ignore(control.close)
          yield* Effect.mapError(
            vms.handOff(vmId),
            (e) => new MigrationFailed({ vm: vmId, phase: "completed", detail: `source cleanup: ${e.message}` }),
          )
          yield* report({ phase: "completed", remaining: 0 })
          return {
            migration: id,
            vm: vmId,
            to,
            term: newTerm,
            mode: postcopy ? "postcopy" : "precopy",
            totalMs: Date.now() - started,
            qemuTotalMs: info["total-time"] ?? null,
            downtimeMs: info.downtime ?? null,
            transferred: info.ram?.transferred ?? last.transferred,
            wireBytes: wire,
          } satisfies Result
        }),
      )

    return { address: listener.address, migrate } satisfies Service
  })
