export { reachable, service } from "@novacron/testing"
