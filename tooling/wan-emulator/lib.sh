# Shared by setup.sh / set.sh / stats.sh / teardown.sh: flag parsing, unit conversion, paths.
# shellcheck shell=bash
set -Eeuo pipefail
WAN_ROOT=${WAN_ROOT:-/run/wan-emulator}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "wan-emulator: $*" >&2; exit 1; }

# "200mbit" -> bits per second
to_bps() {
  local v=${1,,}
  case $v in
    *gbit) awk -v n="${v%gbit}" 'BEGIN{printf "%.0f", n*1e9}' ;;
    *mbit) awk -v n="${v%mbit}" 'BEGIN{printf "%.0f", n*1e6}' ;;
    *kbit) awk -v n="${v%kbit}" 'BEGIN{printf "%.0f", n*1e3}' ;;
    *bit) awk -v n="${v%bit}" 'BEGIN{printf "%.0f", n}' ;;
    *[0-9]) awk -v n="$v" 'BEGIN{printf "%.0f", n}' ;;
    *) die "bad rate: $1" ;;
  esac
}
# "25ms" / "300us" / "0" -> microseconds
to_us() {
  local v=${1,,}
  case $v in
    *us) awk -v n="${v%us}" 'BEGIN{printf "%.0f", n}' ;;
    *ms) awk -v n="${v%ms}" 'BEGIN{printf "%.0f", n*1000}' ;;
    *s) awk -v n="${v%s}" 'BEGIN{printf "%.0f", n*1e6}' ;;
    *[0-9]) awk -v n="$v" 'BEGIN{printf "%.0f", n*1000}' ;;
    *) die "bad duration: $1" ;;
  esac
}

# Parses flags into NAME IDX RATE DELAY JITTER LOSS QUEUE REORDER SEED (unset flags keep values).
parse_flags() {
  while [ $# -gt 0 ]; do
    case $1 in
      --name) NAME=$2; shift 2 ;;
      --idx) IDX=$2; shift 2 ;;
      --rate) RATE=$(to_bps "$2"); shift 2 ;;
      --delay) DELAY=$(to_us "$2"); shift 2 ;;
      --jitter) JITTER=$(to_us "$2"); shift 2 ;;
      --loss) LOSS=$2; shift 2 ;;
      --queue) QUEUE=$2; shift 2 ;;
      --reorder) REORDER=1; shift ;;
      --no-reorder) REORDER=0; shift ;;
      --seed) SEED=$2; shift 2 ;;
      *) die "unknown flag: $1" ;;
    esac
  done
  [[ ${NAME:-} =~ ^[a-z][a-z0-9]{0,7}$ ]] || die "--name must be 1-8 of [a-z0-9], starting with a letter"
  STATE=$WAN_ROOT/$NAME
  NSA=${NAME}a NSB=${NAME}b DEVA=${NAME}ta DEVB=${NAME}tb
}

# Writes the wanemu config file from the current values (queue 0 = one BDP, at least 64 KiB).
write_config() {
  local q=$QUEUE
  if [ "$q" = 0 ] || [ "$q" = auto ]; then
    q=$(awk -v r="$RATE" -v d="$DELAY" 'BEGIN{b=r/8*2*d/1e6; if(b<65536)b=65536; printf "%.0f", b}')
  fi
  mkdir -p "$STATE"
  printf 'rate_bps %s\ndelay_us %s\njitter_us %s\nloss %s\nqueue_bytes %s\nreorder %s\nseed %s\n' \
    "$RATE" "$DELAY" "$JITTER" "$LOSS" "$q" "$REORDER" "$SEED" >"$STATE/config.tmp"
  mv "$STATE/config.tmp" "$STATE/config"
  printf 'NAME=%s IDX=%s RATE=%s DELAY=%s JITTER=%s LOSS=%s QUEUE=%s REORDER=%s SEED=%s\n' \
    "$NAME" "$IDX" "$RATE" "$DELAY" "$JITTER" "$LOSS" "$QUEUE" "$REORDER" "$SEED" >"$STATE/params"
}

# Compiles wanemu once per source version (flock: parallel set-ups share the binary).
build_wanemu() {
  local bin=$WAN_ROOT/bin/wanemu sum
  sum=$(sha256sum "$HERE/wanemu.c" | cut -c1-16)
  mkdir -p "$WAN_ROOT/bin"
  (
    flock 9
    if [ ! -x "$bin-$sum" ]; then
      cc -O2 -Wall -o "$bin-$sum.tmp" "$HERE/wanemu.c" && mv "$bin-$sum.tmp" "$bin-$sum"
    fi
  ) 9>"$WAN_ROOT/bin/.lock"
  WANEMU=$bin-$sum
}
