import * as fs from "node:fs/promises"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { tempDir } from "@novacron/testing"
import { Effect } from "effect"
import { DurableFile } from "../src/index.js"

const modeOf = (file: string) => Effect.promise(async () => (await fs.stat(file)).mode & 0o777)
const list = (dir: string) => Effect.promise(() => fs.readdir(dir))

/** Runs `f` with the process umask set to `mask`. */
const withUmask = <A, E>(mask: number, self: Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => process.umask(mask)),
    () => self,
    (old) => Effect.sync(() => process.umask(old)),
  )

describe("DurableFile.write", () => {
  it.scoped("replaces the content and leaves no temporary file beside it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = join(dir, "record.json")
      yield* DurableFile.write(file, "one\n")
      yield* DurableFile.write(file, new TextEncoder().encode("two\n"))
      expect(yield* Effect.promise(() => fs.readFile(file, "utf8"))).toBe("two\n")
      expect(yield* list(dir)).toEqual(["record.json"])
    }),
  )

  it.scoped("sets the mode bits exactly, whatever the umask (0600 for secrets, 0644 by default)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* withUmask(0o077, DurableFile.write(join(dir, "public"), "x"))
      expect(yield* modeOf(join(dir, "public"))).toBe(0o644)
      yield* withUmask(0, DurableFile.write(join(dir, "secret"), "x", { mode: 0o600 }))
      expect(yield* modeOf(join(dir, "secret"))).toBe(0o600)
      // Replacing a file takes the new mode, not the old file's.
      yield* withUmask(0, DurableFile.write(join(dir, "public"), "y", { mode: 0o600 }))
      expect(yield* modeOf(join(dir, "public"))).toBe(0o600)
    }),
  )

  it.scoped("creates missing parents only when given their mode", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = join(dir, "a", "b", "key")
      const missing = yield* Effect.flip(DurableFile.write(file, "k"))
      expect(missing).toMatchObject({ _tag: "DurableFileError", path: file, operation: "write" })
      expect(missing.reason).toMatch(/^ENOENT: no such file or directory/)
      yield* withUmask(0, DurableFile.write(file, "k", { directoryMode: 0o700 }))
      expect(yield* modeOf(join(dir, "a", "b"))).toBe(0o700)
      expect(yield* Effect.promise(() => fs.readFile(file, "utf8"))).toBe("k")
    }),
  )

  it.scoped("a failed rename is a typed error naming the file, and the temporary file is removed", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const target = join(dir, "occupied")
      yield* Effect.promise(() => fs.mkdir(join(target, "inside"), { recursive: true }))
      const e = yield* Effect.flip(DurableFile.write(target, "x"))
      expect(e).toMatchObject({ _tag: "DurableFileError", path: target, operation: "write" })
      expect(e.message).toMatch(/EISDIR|ENOTEMPTY|EEXIST/)
      expect(yield* list(dir)).toEqual(["occupied"])
    }),
  )
})

describe("DurableFile.rename", () => {
  it.scoped("moves a file over another; a missing source is a typed error naming the target", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* DurableFile.write(join(dir, "next"), "new")
      yield* DurableFile.write(join(dir, "current"), "old")
      yield* DurableFile.rename(join(dir, "next"), join(dir, "current"))
      expect(yield* list(dir)).toEqual(["current"])
      expect(yield* Effect.promise(() => fs.readFile(join(dir, "current"), "utf8"))).toBe("new")
      const e = yield* Effect.flip(DurableFile.rename(join(dir, "gone"), join(dir, "current")))
      expect(e).toMatchObject({ _tag: "DurableFileError", operation: "rename", path: join(dir, "current") })
    }),
  )
})
