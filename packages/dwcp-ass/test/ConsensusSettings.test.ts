import { Duration } from "effect"
import { describe, expect, it } from "vitest"
import * as ConsensusSettings from "../src/ConsensusSettings.js"

describe("ConsensusSettings", () => {
  it("defaults: raft, etcd's LAN timings, no endpoints (local mode)", () => {
    const d = ConsensusSettings.defaults
    expect(d.algorithm).toBe("raft")
    expect(Duration.toMillis(d.election_timeout)).toBe(1000)
    expect(Duration.toMillis(d.heartbeat_interval)).toBe(100)
    expect(d.etcd_endpoints).toEqual([])
  })

  it("decodes the design's WAN values and endpoints", () => {
    const s = ConsensusSettings.decode({
      election_timeout: "5s",
      heartbeat_interval: "500ms",
      etcd_endpoints: ["https://10.0.0.5:2379", "https://etcd-2:2379"],
    })
    expect(Duration.toMillis(s.election_timeout)).toBe(5000)
    expect(s.etcd_endpoints).toHaveLength(2)
  })

  it("refuses a bad endpoint or protocol with what is allowed", () => {
    expect(() => ConsensusSettings.decode({ etcd_endpoints: ["10.0.0.5:2379"] })).toThrow(/etcd client URL/)
    expect(() => ConsensusSettings.decode({ algorithm: "paxos" })).toThrow(/"raft", "pbft", "gossip"/)
  })
  it("pbft: refuses fewer than 4 members and more than 7 with a clear error; accepts 4 to 7", () => {
    const members = (n: number) => Array.from({ length: n }, (_, i) => `n${i}@10.0.0.${i + 1}:7947`)
    expect(() => ConsensusSettings.decode({ algorithm: "pbft" })).toThrow(
      /pbft needs 4 to 7 members \(4-6 tolerate one Byzantine member, 7 two\), got 0/,
    )
    expect(() => ConsensusSettings.decode({ algorithm: "pbft", pbft_members: members(3) })).toThrow(
      /got 3: fewer than 4 cannot tolerate a Byzantine member/,
    )
    expect(() => ConsensusSettings.decode({ algorithm: "pbft", pbft_members: members(8) })).toThrow(/got 8/)
    expect(() =>
      ConsensusSettings.decode({ algorithm: "pbft", pbft_members: [...members(3), "n0@10.0.0.9:7947"] }),
    ).toThrow(/a node id is listed twice/)
    expect(() => ConsensusSettings.decode({ algorithm: "pbft", pbft_members: [...members(3), "n3@nowhere"] })).toThrow(
      /expected <node id>@<host:port>/,
    )
    for (const n of [4, 5, 6, 7])
      expect(ConsensusSettings.decode({ algorithm: "pbft", pbft_members: members(n) }).pbft_members).toHaveLength(n)
  })
})
