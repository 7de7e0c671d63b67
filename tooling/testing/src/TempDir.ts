/**
 * Temporary directories that live as long as a test's Scope.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, type Scope } from "effect"

/**
 * A fresh directory under the OS temp dir named `<prefix>XXXXXX`, removed with everything in it
 * when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tempDirNamed = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), prefix))),
    // Retries: a process the test killed may still be closing files under it (ENOTEMPTY, EBUSY).
    (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 })),
  )

/**
 * A fresh directory (`novacron-test-XXXXXX`), removed when the scope closes.
 *
 * @example
 * ```ts
 * import { tempDir } from "@novacron/testing"
 * import { Effect } from "effect"
 *
 * const program = Effect.scoped(Effect.map(tempDir, (dir) => `${dir}/state.db`))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const tempDir: Effect.Effect<string, never, Scope.Scope> = tempDirNamed("novacron-test-")
