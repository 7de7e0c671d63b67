// Mutation testing runs the decoder's own synchronous tests: the whole suite starts worker
// threads and takes a minute, once per mutant. The score is therefore a lower bound.
import { novacronProject } from "@novacron/vitest-config"

export default novacronProject("dwcp-hde-mutation", { include: ["test/decoder.test.ts"] })
