import { defineProject } from "vitest/config"

// The shared settings (novacronProject) list "import" among the conditions, and vitest hands them
// to Node as --conditions: then pg's CommonJS require("pg-pool") gets pg-pool's ES module and
// fails. Vite adds import/require per importer by itself, so this project names only the others.
const conditions = ["@novacron/source", "node", "default"]
export default defineProject({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: { name: "orchestration", include: ["test/**/*.test.ts"], testTimeout: 60_000 },
})
