import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { XMLParser, XMLValidator } from "fast-xml-parser"
import { Boot, BootChart } from "../src/index.js"
import { fixture, makeJournal } from "./fixtures.js"

describe("BootChart.svg", () => {
  it.live("draws one bar per component, grouped by phase, coloured by status, as valid SVG", () =>
    Effect.gen(function* () {
      const j = makeJournal()
      const node = yield* Boot.boot([
        fixture(j, "config", { phase: "pre-init", takes: "3 millis" }),
        fixture(j, "db <primary>", { takes: "6 millis" }),
        fixture(j, "telemetry", { criticality: "WARNING", failTimes: Infinity }),
      ])
      const svg = BootChart.svg(node.report)
      expect(XMLValidator.validate(svg)).toBe(true)
      const doc = new XMLParser({ ignoreAttributes: false }).parse(svg)
      const groups = doc.svg.g as Array<Record<string, string>>
      expect(groups.map((g) => [g["@_data-name"], g["@_data-status"]])).toEqual([
        ["config", "running"],
        ["db <primary>", "running"],
        ["telemetry", "failed"],
      ])
      const phaseLabels = (doc.svg.text as Array<Record<string, string> | string>)
        .map((t) => (typeof t === "string" ? t : t["#text"]))
        .filter((t) => typeof t === "string" && /^(pre-init|core|services|post-init)/.test(t))
      expect(phaseLabels.map((t) => String(t).split(" ")[0])).toEqual(["pre-init", "core"])
    }).pipe(Effect.scoped),
  )
})
