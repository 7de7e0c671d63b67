#!/usr/bin/env bash
# Creates a WAN link: namespaces NAMEa/NAMEb, TUNs NAMEta/NAMEtb, wanemu forwarding between them.
# Idempotent (tears down a previous link of that name first); on any failure it cleans up.
# usage: setup.sh --name wan0 --idx 77 --rate 200mbit --delay 25ms --loss 0.005 [--jitter 0ms]
#                 [--queue BYTES|auto] [--reorder] [--seed N]
source "$(dirname "$0")/lib.sh"
IDX=77 RATE=0 DELAY=0 JITTER=0 LOSS=0 QUEUE=auto REORDER=0 SEED=0
parse_flags "$@"
[[ $IDX =~ ^[0-9]+$ ]] && [ "$IDX" -ge 1 ] && [ "$IDX" -le 254 ] || die "--idx must be 1..254"
[ "$(id -u)" = 0 ] || die "needs root"
"$HERE/teardown.sh" --name "$NAME"
trap '"$HERE/teardown.sh" --name "$NAME"; echo "wan-emulator: setup of $NAME failed" >&2' ERR
build_wanemu
write_config
A=10.$IDX.0.1 B=10.$IDX.0.2
ip netns add "$NSA"
ip netns add "$NSB"
for ns in "$NSA" "$NSB"; do
  ip -n "$ns" link set lo up
  # IPv6 autoconfiguration chatter would show up in the link's counters.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip -n "$NSA" tuntap add dev "$DEVA" mode tun
ip -n "$NSB" tuntap add dev "$DEVB" mode tun
setsid "$WANEMU" "/run/netns/$NSA" "$DEVA" "/run/netns/$NSB" "$DEVB" "$STATE/config" "$STATE/stats" \
  </dev/null >"$STATE/log" 2>&1 &
echo $! >"$STATE/pid"
ip -n "$NSA" addr add "$A" peer "$B/32" dev "$DEVA"
ip -n "$NSB" addr add "$B" peer "$A/32" dev "$DEVB"
ip -n "$NSA" link set "$DEVA" mtu 1500 up
ip -n "$NSB" link set "$DEVB" mtu 1500 up
# Ready when wanemu has attached both TUNs (carrier up) and reports running.
for _ in $(seq 100); do
  if grep -q running "$STATE/log" && ip -n "$NSB" link show "$DEVB" | grep -q LOWER_UP; then break; fi
  kill -0 "$(cat "$STATE/pid")" 2>/dev/null || { cat "$STATE/log" >&2; false; }
  sleep 0.05
done
grep -q running "$STATE/log" || { cat "$STATE/log" >&2; false; }
trap - ERR
echo "wan-emulator: $NAME up: $NSA($A) <-> $NSB($B) rate=${RATE}bit/s delay=${DELAY}us jitter=${JITTER}us loss=$LOSS queue=$QUEUE"
