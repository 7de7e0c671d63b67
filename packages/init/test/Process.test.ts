import { spawnSync } from "node:child_process"
import { describe, expect, it } from "@effect/vitest"
import { Process } from "../src/index.js"

describe("Process.alive", () => {
  it("is true for this process and false for one that has exited", () => {
    expect(Process.alive(process.pid)).toBe(true)
    const child = spawnSync(process.execPath, ["-e", "0"])
    expect(child.pid).toBeGreaterThan(0)
    expect(Process.alive(child.pid!)).toBe(false)
  })

  it("is false for pids that are not one process (0 and -1 would signal groups)", () => {
    for (const pid of [0, -1, -process.pid, 1.5, Number.NaN]) expect([pid, Process.alive(pid)]).toEqual([pid, false])
  })
})
