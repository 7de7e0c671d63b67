#!/usr/bin/env bash
# Removes a link made by setup.sh: stops wanemu, deletes both namespaces (and their TUNs). Idempotent.
# usage: teardown.sh --name NAME
source "$(dirname "$0")/lib.sh"
parse_flags "$@"
if [ -f "$STATE/pid" ]; then
  pid=$(cat "$STATE/pid")
  if kill -0 "$pid" 2>/dev/null && grep -q wanemu "/proc/$pid/cmdline" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
fi
for ns in "$NSA" "$NSB"; do
  if ip netns list | grep -qw "^$ns"; then
    # Anything still running inside (iperf3 servers...) would keep the namespace alive.
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns delete "$ns" 2>/dev/null || true
  fi
done
rm -rf "$STATE"
