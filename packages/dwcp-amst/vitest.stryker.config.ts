// Mutation testing of the frame codec runs its unit tests only: a mutant in Frame.ts that makes a
// whole transfer hang would otherwise count as "killed" by timeout without any test saying why.
import { novacronProject } from "@novacron/vitest-config"

export default novacronProject("dwcp-amst", { include: ["test/Frame.test.ts"] })
