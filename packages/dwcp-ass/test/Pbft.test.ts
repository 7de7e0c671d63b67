// The PBFT engine on a simulated network of 4 replicas (f = 1): normal case, a silent primary, an
// equivocating primary, forged, replayed and badly signed messages, an isolated primary. Each
// checks safety (correct replicas execute the same request at each sequence number, in the same
// order) and that requests commit again after the view change.
import { describe, expect, it } from "vitest"
import { Pbft } from "../src/index.js"
import { bytesOf, digestOf } from "../src/internal/pbftMessages.js"
import { Net } from "./support/pbftNet.js"

const correctOnes = [1, 2, 3]

const allExecuted = (net: Net, replicas: ReadonlyArray<number>, ops: number) => () =>
  replicas.every((r) => net.applied[r]!.length >= ops)

describe("PBFT engine, n = 4", () => {
  it("normal case: requests commit in one order, f+1 matching replies, checkpoints collect the log", () => {
    const net = new Net({ seed: 7, checkpointInterval: 4 })
    // 20 clients at once, then each a second request (a client has one request outstanding)
    for (let c = 0; c < 20; c++) net.submit(net.request(`c${c}`, 1, `c${c}.1`), [0])
    net.run(allExecuted(net, [0, 1, 2, 3], 20))
    for (let c = 0; c < 20; c++) expect(net.result(`c${c}`, 1)).toBe(`ok:c${c}.1`)
    for (let c = 0; c < 20; c++) net.submit(net.request(`c${c}`, 2, `c${c}.2`), [0])
    net.run(allExecuted(net, [0, 1, 2, 3], 40))
    net.assertAgreement([0, 1, 2, 3])
    expect(net.replicas.map((r) => r.view)).toEqual([0, 0, 0, 0])
    for (let c = 0; c < 20; c++) expect(net.result(`c${c}`, 2)).toBe(`ok:c${c}.2`)
    net.run(() => net.queue.length === 0)
    for (const r of net.replicas) {
      expect(r.stable).toBe(40)
      expect(r.logSize).toBe(0)
    }
  })

  it("suppresses duplicate requests: a retransmission gets the cached reply, not a second execution", () => {
    const net = new Net({ seed: 3 })
    const req = net.request("alice", 1, "inc")
    net.submit(req)
    net.run(allExecuted(net, [0, 1, 2, 3], 1))
    net.run(() => net.queue.length === 0)
    const replies = net.replies.length
    net.submit(req)
    net.submit(net.request("alice", 0, "older"))
    net.run(() => net.queue.length === 0)
    expect(net.applied.map((a) => a.length)).toEqual([1, 1, 1, 1])
    expect(net.replies.length).toBe(replies + 4)
  })

  it("a silent primary is replaced and requests commit in view 1", () => {
    const net = new Net({
      seed: 11,
      byzantine: (from) => (from === 0 ? [] : undefined),
      drop: (m) => m.to === 0,
    })
    for (let t = 1; t <= 3; t++) net.submit(net.request(`c${t}`, 1, `op${t}`))
    net.run(allExecuted(net, correctOnes, 3))
    net.assertAgreement(correctOnes)
    for (const r of correctOnes) expect(net.replicas[r]!.view).toBe(1)
    expect(net.result("c3", 1)).toBe("ok:op3")
  })

  it("an equivocating primary cannot make correct replicas diverge; the next view commits both requests", () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      let a: Pbft.Signed<Pbft.Request> | undefined
      let b: Pbft.Signed<Pbft.Request> | undefined
      const net: Net = new Net({
        seed,
        byzantine: (from, out, n) => {
          if (from !== 0) return undefined
          if (out.kind !== "broadcast" || out.message.message.type !== "pre-prepare") return undefined
          const pp = out.message.message as Pbft.PrePrepare
          if (pp.view !== 0) return undefined
          // replica 1 gets request a at this sequence number, replicas 2 and 3 get b
          const forge = (request: Pbft.Signed<Pbft.Request>): Pbft.Signed => {
            const message: Pbft.PrePrepare = { ...pp, digest: Pbft.digestOf(request.message), request }
            return { from: "0", message, signature: signBytes(n, 0, message) }
          }
          return [
            { from: 0, to: 1, message: forge(a!) },
            { from: 0, to: 2, message: forge(b!) },
            { from: 0, to: 3, message: forge(b!) },
          ]
        },
      })
      a = net.request("alice", 1, "a")
      b = net.request("bob", 1, "b")
      net.submit(a, [0])
      net.submit(b, [0])
      net.run(
        () => net.queue.length === 0 && net.now > 10,
        200_000,
        () => net.assertAgreement(correctOnes),
      )
      // clients retransmit to every replica
      net.submit(a)
      net.submit(b)
      net.run(allExecuted(net, correctOnes, 2), 200_000, () => net.assertAgreement(correctOnes))
      for (const r of correctOnes) expect([...net.applied[r]!].sort()).toEqual(["a", "b"])
      expect(net.result("alice", 1)).toBe("ok:a")
      expect(net.result("bob", 1)).toBe("ok:b")
    }
  })

  it("forged, replayed and badly signed messages are refused and change nothing", () => {
    const net = new Net({ seed: 5 })
    for (let t = 1; t <= 4; t++) net.submit(net.request(`c${t}`, 1, `op${t}`), [0])
    net.run(allExecuted(net, [0, 1, 2, 3], 4))
    net.run(() => net.queue.length === 0)
    const target = net.replicas[2]!
    const before = { ...Object.fromEntries(target.rejected) }
    // replica 3 forges a commit in replica 1's name, signed with its own key
    const commit: Pbft.Commit = { type: "commit", view: 0, seq: 5, digest: "x".repeat(64), replica: 1 }
    target.receive({ from: "1", message: commit, signature: signBytes(net, 3, commit) }, net.now)
    // a message whose bytes changed after signing
    const good = net.sent.find((m) => m.from === 1 && m.message.message.type === "prepare")!.message
    const tampered = { ...good, message: { ...(good.message as Pbft.Prepare), seq: 6 } }
    target.receive(tampered, net.now)
    // a request pretending to come from another client
    const req = net.request("mallory", 1, "steal")
    target.receive({ ...req, from: "alice" }, net.now)
    expect((target.rejected.get("signature") ?? 0) - (before.signature ?? 0)).toBe(2)
    expect((target.rejected.get("sender") ?? 0) - (before.sender ?? 0)).toBe(1)
    // replay everything ever sent, twice: no re-execution, no divergence
    const executed = net.applied.map((a) => a.length)
    for (const m of [...net.sent, ...net.sent]) net.enqueue(m)
    net.run(() => net.queue.length === 0)
    expect(net.applied.map((a) => a.length)).toEqual(executed)
    net.assertAgreement([0, 1, 2, 3])
  })

  it("a replica flooding view-changes for ever higher views costs one entry and moves nobody", () => {
    const net = new Net({ seed: 8 })
    const r1 = net.replicas[1]!
    for (let view = 1; view <= 1000; view++) {
      const vc: Pbft.ViewChange = {
        type: "view-change",
        view,
        stable: 0,
        checkpointProof: [],
        prepared: [],
        replica: 3,
      }
      r1.receive({ from: "3", message: vc, signature: signBytes(net, 3, vc) }, 0)
    }
    expect(r1.viewChangesHeld).toBe(1)
    // f+1 = 2 replicas are needed to pull a correct replica into a view change
    expect(r1.view).toBe(0)
    expect(r1.active).toBe(true)
  })

  it("a partition that isolates the primary: a view change, and progress among the others", () => {
    let healed = false
    const net = new Net({ seed: 9, drop: (m) => !healed && (m.from === 0 || m.to === 0) })
    for (let t = 1; t <= 3; t++) net.submit(net.request(`c${t}`, 1, `op${t}`))
    net.run(allExecuted(net, correctOnes, 3))
    expect(net.replicas[1]!.view).toBeGreaterThanOrEqual(1)
    healed = true
    for (let t = 4; t <= 6; t++) net.submit(net.request(`c${t}`, 1, `op${t}`))
    net.run(allExecuted(net, correctOnes, 6))
    net.assertAgreement([0, 1, 2, 3])
  })

  it("view-change timers double while no view works, and reset once requests execute", () => {
    const net = new Net({ seed: 1, viewChangeTimeout: 100 })
    const r2 = net.replicas[2]!
    r2.receive(net.request("alice", 1, "x"), 0)
    expect(r2.timerDeadline).toBe(100)
    r2.tick(100)
    expect(r2.view).toBe(1)
    expect(r2.active).toBe(false)
    expect(r2.timerDeadline).toBe(200)
    r2.tick(200)
    expect(r2.view).toBe(2)
    expect(r2.timerDeadline).toBe(400)
    r2.tick(400)
    expect(r2.view).toBe(3)
    expect(r2.timerDeadline).toBe(800)
  })

  it("a replica commits only on 2f+1 commits: 2f (its own and a Byzantine primary's) is not enough", () => {
    // The schedule that breaks a 2f commit quorum: replica 2 prepares request a and gets the
    // Byzantine primary's commit; then 2 is cut off, the primary hides its prepared proof in its
    // view-change, and the new primary (1, which never saw a prepared) orders b first at seq 1.
    let phase = 1
    const allowed = (m: { from: number; to: number; message: Pbft.Signed }): boolean => {
      const t = m.message.message.type
      if (phase === 2) return m.from !== 2 && m.to !== 2
      if (t === "request") return true
      if (t === "pre-prepare") return m.from === 0 && (m.to === 1 || m.to === 2)
      if (t === "prepare") return (m.from === 1 && (m.to === 2 || m.to === 0)) || (m.from === 2 && m.to === 0)
      if (t === "commit") return m.from === 0 && m.to === 2
      return false
    }
    const net: Net = new Net({
      seed: 2,
      drop: (m) => !allowed(m) || (phase === 1 && m.message.message.type === "request" && m.from !== -1),
      byzantine: (from, out, n) => {
        if (from !== 0 || out.kind !== "broadcast" || out.message.message.type !== "view-change") return undefined
        const vc: Pbft.ViewChange = { ...(out.message.message as Pbft.ViewChange), prepared: [] }
        const message = { from: "0", message: vc, signature: signBytes(n, 0, vc) }
        return [1, 2, 3].map((to) => ({ from, to, message }))
      },
    })
    net.submit(net.request("cb", 1, "b"), [1])
    net.run(() => net.queue.length === 0)
    net.submit(net.request("ca", 1, "a"), [0, 3])
    net.run(() => net.queue.length === 0)
    phase = 2
    net.run(
      () => net.applied[1]!.length >= 1 && net.applied[3]!.length >= 1,
      200_000,
      () => net.assertAgreement([1, 2, 3]),
    )
    expect(net.applied[1]![0]).toBe("b")
    expect(net.applied[2]).toEqual([])
  })

  it("a new-view must re-propose what was prepared: a lying new primary is refused, an honest one installs", () => {
    // commits are lost: every backup prepares request a at seq 1, nobody commits it
    const net = new Net({ seed: 4, viewChangeTimeout: 200, drop: (m) => m.message.message.type === "commit" })
    net.submit(net.request("alice", 1, "a"), [0])
    net.run(() => net.queue.length === 0)
    const later = net.now + 10_000
    const viewChanges = [1, 2, 3].flatMap((r) =>
      net.replicas[r]!.tick(later).flatMap((o) =>
        o.kind === "broadcast" && o.message.message.type === "view-change"
          ? [o.message as Pbft.Signed<Pbft.ViewChange>]
          : [],
      ),
    )
    expect(viewChanges.length).toBe(3)
    expect(viewChanges.every((v) => v.message.prepared.length === 1)).toBe(true)
    // replica 1 (primary of view 1) lies: a null request where the prepared one must be re-proposed
    const nullPp: Pbft.PrePrepare = { type: "pre-prepare", view: 1, seq: 1, digest: Pbft.NULL_DIGEST, request: null }
    const lie: Pbft.NewView = {
      type: "new-view",
      view: 1,
      viewChanges,
      prePrepares: [{ from: "1", message: nullPp, signature: signBytes(net, 1, nullPp) }],
    }
    const r3 = net.replicas[3]!
    r3.receive({ from: "1", message: lie, signature: signBytes(net, 1, lie) }, later)
    expect(r3.rejected.get("proof") ?? 0).toBe(1)
    expect(r3.active).toBe(false)
    // the honest new-view, as replica 1 builds it from the same view-changes
    const r1 = net.replicas[1]!
    const outs = [viewChanges[1]!, viewChanges[2]!].flatMap((v) => r1.receive(v, later))
    const nv = outs.find((o) => o.kind === "broadcast" && o.message.message.type === "new-view")
    expect(nv).toBeDefined()
    const reproposed = (nv!.kind === "broadcast" ? nv!.message.message : undefined) as Pbft.NewView
    expect(reproposed.prePrepares.map((p) => p.message.digest)).toEqual([
      viewChanges[0]!.message.prepared[0]!.prePrepare.message.digest,
    ])
    r3.receive(nv!.kind === "broadcast" ? nv!.message : (undefined as never), later)
    expect(r3.active).toBe(true)
    expect(r3.view).toBe(1)
  })
})

function signBytes(net: Net, replica: number, message: Pbft.Message): Uint8Array {
  return net.signerOf(replica).sign(bytesOf(message))
}

describe("PBFT engine: commit certificates for a replica that missed requests", () => {
  it("executes on a certificate with 2f+1 matching signed commits; refuses a short or altered one", () => {
    let cut = true
    const net = new Net({ seed: 5, drop: (m) => cut && m.to === 3 })
    net.submit(net.request("alice", 1, "a1"), [0, 1, 2])
    net.run(allExecuted(net, [0, 1, 2], 1))
    cut = false
    const r3 = net.replicas[3]!
    const cert = net.replicas[1]!.certificate(1)!
    expect(cert.commits.length).toBe(3)
    const short = { ...cert, commits: cert.commits.slice(0, 2) }
    r3.installCertificate(short, net.now)
    expect(r3.lastExecuted).toBe(0)
    // a commit for another digest, properly signed by its replica: not a matching vote
    const c = cert.commits[0]!
    const other = { ...c.message, digest: "f".repeat(64) }
    const altered = {
      ...cert,
      commits: [
        { from: c.from, message: other, signature: net.signerOf(Number(c.from)).sign(bytesOf(other)) },
        ...cert.commits.slice(1),
      ],
    }
    r3.installCertificate(altered, net.now)
    expect(r3.lastExecuted).toBe(0)
    const outs = r3.installCertificate(cert, net.now)
    expect(r3.lastExecuted).toBe(1)
    expect(outs.some((o) => o.kind === "executed" && o.seq === 1)).toBe(true)
    expect(r3.state).toBe(net.replicas[1]!.state)
  })
})

describe("PBFT engine, n = 5 (f = 1)", () => {
  it("a primary that equivocates and votes on both sides cannot commit two requests at one number: quorums of 4, not 2f+1 = 3", () => {
    // Replica 0 leads view 0: request A to replicas 1 and 2, request B to 3 and 4, with its own
    // signed commits for each side. With quorums of 2f+1 = 3, {1, 2, 0} would commit A and
    // {3, 4, 0} B at sequence number 1; with 4, neither does, and the view change moves on.
    const sides: Record<number, "A" | "B"> = { 1: "A", 2: "A", 3: "B", 4: "B" }
    const reqs = new Map<"A" | "B", Pbft.Signed<Pbft.Request>>()
    const net: Net = new Net({
      n: 5,
      seed: 11,
      byzantine: (from, out, n) => {
        if (from !== 0 || (out.kind !== "broadcast" && out.kind !== "send")) return undefined
        const m = out.message.message
        const sign = (message: Pbft.Message): Pbft.Signed => ({
          from: "0",
          message,
          signature: n.signerOf(0).sign(bytesOf(message)),
        })
        if (m.type === "pre-prepare" && m.view === 0) {
          return [1, 2, 3, 4].map((to) => {
            const request = reqs.get(sides[to]!)!
            return { from, to, message: sign({ ...m, request, digest: digestOf(request.message) }) }
          })
        }
        if ((m.type === "commit" || m.type === "prepare") && m.view === 0) {
          return [1, 2, 3, 4].map((to) => ({
            from,
            to,
            message: sign({ ...m, digest: digestOf(reqs.get(sides[to]!)!.message) }),
          }))
        }
        return undefined
      },
    })
    reqs.set("A", net.request("alice", 1, "A"))
    reqs.set("B", net.request("bob", 1, "B"))
    net.submit(reqs.get("A")!, [0])
    net.submit(reqs.get("B")!, [0])
    const correct = [1, 2, 3, 4]
    // Clients retransmit to every replica after a while: both requests commit in the end.
    net.run(
      () => net.queue.length === 0,
      200_000,
      () => net.assertAgreement(correct),
    )
    net.submit(reqs.get("A")!)
    net.submit(reqs.get("B")!)
    net.run(allExecuted(net, correct, 2), 200_000, () => net.assertAgreement(correct))
    net.assertAgreement(correct)
    expect(net.result("alice", 1, correct)).toBe("ok:A")
    expect(net.result("bob", 1, correct)).toBe("ok:B")
    expect(net.replicas[1]!.q).toBe(4)
  })
})
