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
})
