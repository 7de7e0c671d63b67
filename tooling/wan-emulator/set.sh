#!/usr/bin/env bash
# Changes a running link's parameters (same flags as setup.sh; unspecified ones keep their value).
# usage: set.sh --name wan0 [--rate 50mbit] [--delay 10ms] [--loss 0.01] ...
source "$(dirname "$0")/lib.sh"
for ((i = 1; i <= $#; i++)); do [ "${!i}" = --name ] && { j=$((i + 1)); NAME=${!j}; }; done
[ -f "$WAN_ROOT/${NAME:-}/params" ] || die "no link named ${NAME:-?} (run setup.sh first)"
# shellcheck disable=SC1090
source "$WAN_ROOT/$NAME/params"
parse_flags "$@"
write_config
kill -HUP "$(cat "$STATE/pid")"
