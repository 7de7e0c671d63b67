#!/usr/bin/env bash
# An unshaped veth pair between namespaces NAMEa (10.78.0.1) and NAMEb (10.78.0.2): the baseline link.
# Idempotent; `--down` removes it.  usage: veth.sh --name NAME [--down]
source "$(dirname "$0")/lib.sh"
down=0 args=()
for a in "$@"; do [ "$a" = --down ] && down=1 || args+=("$a"); done
parse_flags "${args[@]}"
for ns in "$NSA" "$NSB"; do ip netns delete "$ns" 2>/dev/null || true; done
[ "$down" = 1 ] && exit 0
[ "$(id -u)" = 0 ] || die "needs root"
trap 'for ns in "$NSA" "$NSB"; do ip netns delete "$ns" 2>/dev/null || true; done; echo "wan-emulator: veth $NAME failed" >&2' ERR
ip netns add "$NSA"
ip netns add "$NSB"
ip link add "${NAME}va" netns "$NSA" type veth peer name "${NAME}vb" netns "$NSB"
ip -n "$NSA" addr add 10.78.0.1/30 dev "${NAME}va"
ip -n "$NSB" addr add 10.78.0.2/30 dev "${NAME}vb"
for ns in "$NSA" "$NSB"; do ip -n "$ns" link set lo up; done
ip -n "$NSA" link set "${NAME}va" up
ip -n "$NSB" link set "${NAME}vb" up
trap - ERR
