#!/usr/bin/env bash
# Makes the benchmark's VM memory images: boots a small Debian kernel + busybox initramfs under QEMU
# (TCG, no KVM), lets it start processes and write files, and saves guest RAM twice with the monitor's
# `pmemsave`, some seconds apart. Output goes to a cache outside git and is reused when present.
# usage: make-vm-snapshots.sh [cache-dir]   (default <repo>/.cache/hde-bench)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${1:-$repo/.cache/hde-bench}"
ram_mib="${HDE_VM_RAM_MIB:-256}"
gap_s="${HDE_VM_GAP_S:-8}"
mkdir -p "$cache"

if [[ -s "$cache/vm-ram-1.raw" && -s "$cache/vm-ram-2.raw" ]]; then
  echo "reusing $cache/vm-ram-{1,2}.raw"
  exit 0
fi

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v socat >/dev/null || need+=(socat)
command -v cpio >/dev/null || need+=(cpio)
command -v zstd >/dev/null || need+=(zstd)
command -v lz4 >/dev/null || need+=(lz4)
kernel="${HDE_VM_KERNEL:-}"
[[ -n "$kernel" ]] || kernel="$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)"
# The vm package's test guest kernel (packages/vm/test/guest/build-guest.sh), when built.
[[ -n "$kernel" ]] || kernel="$(ls "${XDG_CACHE_HOME:-$HOME/.cache}"/novacron/vm-guest/*/vmlinuz 2>/dev/null | head -1 || true)"
[[ -n "$kernel" ]] || need+=(linux-image-cloud-amd64)
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi
[[ -n "$kernel" ]] || kernel="$(ls /boot/vmlinuz-* | sort -V | tail -1)"

work="$(mktemp -d)"
qpid=""
cleanup() {
  [[ -n "$qpid" ]] && kill "$qpid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The initramfs: busybox, some real text and binaries (so the page cache holds realistic content),
# and an init that copies them around and keeps a few processes writing while we snapshot.
root="$work/root"
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,data,usr/bin}
cp "$(command -v busybox)" "$root/bin/busybox"
for app in $("$root/bin/busybox" --list); do [[ $app == busybox ]] || ln -sf busybox "$root/bin/$app"; done
mkdir -p "$root/data/doc" "$root/data/bin"
set +o pipefail # head closes the pipe early on purpose
find /usr/share/doc -name '*.gz' -size -200k | head -400 | while read -r f; do
  gzip -dc "$f" >"$root/data/doc/$(echo "$f" | tr / _ | sed 's/\.gz$//')" 2>/dev/null || true
done
set -o pipefail
for b in qemu-img zstd lz4 python3.11 perl git gpg ssh; do
  p="$(command -v "$b" 2>/dev/null || true)"
  [[ -n "$p" ]] && cp -L "$p" "$root/data/bin/" || true
done
cat >"$root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs -o size=120m tmp /tmp
# Working set: copies of docs and binaries (duplicate pages), a sorted word list, a growing log,
# a compressed archive, and a process rewriting a random-ish file.
cp -r /data/doc /tmp/doc
cp -r /data/bin /tmp/bin
cat /tmp/doc/* | tr -cs 'A-Za-z' '\n' | sort | uniq -c | sort -rn >/tmp/words.txt
tar cf - /data/doc | gzip -1 >/tmp/doc.tar.gz
dd if=/dev/urandom of=/tmp/random.bin bs=1k count=4096 2>/dev/null
(i=0; while true; do i=$((i+1)); echo "$i $(date) $(cat /proc/loadavg)" >>/tmp/app.log; sleep 0.05; done) &
(while true; do md5sum /tmp/bin/* >/tmp/sums.txt; sleep 1; done) &
(n=0; while true; do n=$((n+1)); dd if=/dev/urandom of=/tmp/random.bin bs=4k count=64 seek=$((n % 1024)) conv=notrunc 2>/dev/null; sleep 0.2; done) &
(while true; do sort -r /tmp/words.txt | head -2000 >/tmp/top.txt; sleep 2; done) &
echo HDE-GUEST-READY
while true; do sleep 60; done
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initrd.gz"
echo "initramfs $(du -h "$work/initrd.gz" | cut -f1), kernel $kernel"

bytes=$((ram_mib * 1024 * 1024))
mon="$work/mon.sock"
serial="$work/serial.log"
# QEMU runs in the cache dir: pmemsave's size is parsed as an expression, so "N /abs/path" would
# read as a division; relative file names avoid that.
(cd "$cache" && exec qemu-system-x86_64 -machine q35,accel=tcg -cpu max -smp 1 -m "$ram_mib" -nographic -no-reboot \
  -kernel "$kernel" -initrd "$work/initrd.gz" -append "console=ttyS0 panic=-1 quiet" \
  -serial "file:$serial" -monitor "unix:$mon,server,nowait" -display none -net none) &
qpid=$!

monitor() { { echo "$1"; sleep 1; } | socat -t 5 - "UNIX-CONNECT:$mon" >/dev/null; }
# pmemsave runs in QEMU's main loop; wait until the file has its full size.
wait_file() {
  local t=$((SECONDS + 60))
  until [[ -f "$1" && $(stat -c %s "$1") -eq $bytes ]]; do
    ((SECONDS < t)) || { echo "pmemsave did not finish: $1"; exit 1; }
    sleep 0.5
  done
}

deadline=$((SECONDS + 240))
until grep -q HDE-GUEST-READY "$serial" 2>/dev/null; do
  if ! kill -0 "$qpid" 2>/dev/null; then echo "qemu exited before the guest was ready:"; tail -30 "$serial"; exit 1; fi
  if ((SECONDS > deadline)); then echo "guest not ready after 240 s:"; tail -30 "$serial"; exit 1; fi
  sleep 1
done
echo "guest ready after ${SECONDS}s; snapshot 1"
sleep 3
monitor "pmemsave 0 $bytes vm-ram-1.raw.tmp"
wait_file "$cache/vm-ram-1.raw.tmp"
sleep "$gap_s"
echo "snapshot 2 (${gap_s}s later)"
monitor "pmemsave 0 $bytes vm-ram-2.raw.tmp"
wait_file "$cache/vm-ram-2.raw.tmp"
monitor "quit" || true
wait "$qpid" || true
qpid=""
for i in 1 2; do
  [[ $(stat -c %s "$cache/vm-ram-$i.raw.tmp") -eq $bytes ]] || { echo "short snapshot $i"; exit 1; }
  mv "$cache/vm-ram-$i.raw.tmp" "$cache/vm-ram-$i.raw"
done
{
  echo "kernel: $kernel"
  echo "ram_mib: $ram_mib"
  echo "gap_s: $gap_s"
  echo "made: $(date -u +%FT%TZ)"
} >"$cache/vm-ram.info"
ls -l "$cache"
