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
  it("pbft: refuses fewer than 4 members (and 5, 6: not 3f+1) with a clear error; accepts 4 and 7", () => {
    const members = (n: number) => Array.from({ length: n }, (_, i) => `n${i}@10.0.0.${i + 1}:7947`)
    expect(() => ConsensusSettings.decode({ algorithm: "pbft" })).toThrow(
      /pbft needs 3f\+1 members, 4 \(f = 1\) or 7 \(f = 2\), got 0/,
    )
    expect(() => ConsensusSettings.decode({ algorithm: "pbft", pbft_members: members(3) })).toThrow(
      /got 3: fewer than 4 cannot tolerate a Byzantine member/,
    )
    expect(() => ConsensusSettings.decode({ algorithm: "pbft", pbft_members: members(5) })).toThrow(/got 5/)
    expect(() =>
      ConsensusSettings.decode({ algorithm: "pbft", pbft_members: [...members(3), "n0@10.0.0.9:7947"] }),
    ).toThrow(/a node id is listed twice/)
    expect(() => ConsensusSettings.decode({ algorithm: "pbft", pbft_members: [...members(3), "n3@nowhere"] })).toThrow(
      /expected <node id>@<host:port>/,
    )
    expect(ConsensusSettings.decode({ algorithm: "pbft", pbft_members: members(4) }).pbft_members).toHaveLength(4)
    expect(ConsensusSettings.decode({ algorithm: "pbft", pbft_members: members(7) }).pbft_members).toHaveLength(7)
  })
})
