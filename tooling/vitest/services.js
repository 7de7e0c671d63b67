// The CI rule for shared services now lives in @novacron/testing; kept for the importers of this
// path (apps/node tests) until they import @novacron/testing themselves.
export { reachable, service } from "@novacron/testing"
