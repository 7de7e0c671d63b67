import { execFile } from "node:child_process"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const run = promisify(execFile)
const pkg = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")
// buf (its compiler is in the npm package) and protoc-gen-es, from this package's devDependencies.
const buf = path.join(pkg, "node_modules", ".bin", "buf")
const env = { ...process.env, PATH: `${path.join(pkg, "node_modules", ".bin")}${path.delimiter}${process.env.PATH}` }

const files = async (root: string): Promise<Map<string, string>> => {
  const out = new Map<string, string>()
  const walk = async (dir: string) => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) await walk(full)
      else out.set(path.relative(root, full), await fs.readFile(full, "utf8"))
    }
  }
  await walk(root)
  return out
}

describe("generated code", () => {
  it("src/gen is what `buf generate` makes of proto/ now (run `pnpm run generate` after editing a .proto)", async () => {
    const out = await fs.mkdtemp(path.join(os.tmpdir(), "novacron-buf-"))
    try {
      await run(buf, ["generate", "--output", out], { cwd: pkg, env })
      const fresh = await files(path.join(out, "src", "gen"))
      const committed = await files(path.join(pkg, "src", "gen"))
      expect([...committed.keys()].sort()).toEqual([...fresh.keys()].sort())
      for (const [name, text] of fresh) expect(committed.get(name), name).toBe(text)
      expect(fresh.size).toBe(4)
    } finally {
      await fs.rm(out, { recursive: true, force: true })
    }
  }, 60_000)

  it("the .proto files pass `buf lint` (STANDARD) and buf builds them", async () => {
    await expect(run(buf, ["lint"], { cwd: pkg, env })).resolves.toBeDefined()
  }, 60_000)
})
