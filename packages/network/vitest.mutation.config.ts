import { novacronProject } from "@novacron/vitest-config"

// Mutation testing of the frame codec runs its own tests only: the socket tests also cover
// Frame.ts but would multiply the run time by their network round trips on a shared 2-core box.
export default novacronProject("network-frame", { include: ["test/Frame.test.ts"] })
