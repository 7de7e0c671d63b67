#!/usr/bin/env bash
# Prints per-direction counters of a running link: "ab in=.. lost=.. qdrop=.. delivered=.. bytes=.. queued=.."
# usage: stats.sh --name wan0
source "$(dirname "$0")/lib.sh"
parse_flags "$@"
[ -f "$STATE/pid" ] || die "no link named $NAME"
# wanemu rewrites the file (atomically) on SIGUSR1; wait for the fresh one.
rm -f "$STATE/stats"
kill -USR1 "$(cat "$STATE/pid")"
for _ in $(seq 80); do [ -f "$STATE/stats" ] && break; sleep 0.025; done
cat "$STATE/stats"
