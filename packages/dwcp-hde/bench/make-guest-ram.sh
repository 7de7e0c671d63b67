#!/usr/bin/env bash
# More guest RAM images for the benchmark, each a different workload (make-vm-snapshots.sh makes
# the first, a busybox guest with a mixed working set):
#   text  page cache full of text: 80 MiB of source code, headers and docs in the initramfs
#         (rootfs is page cache), 60 MiB of line-numbered text derived from it in tmpfs,
#         grep/wc/sort passes over it, a log being written (320 MiB of RAM)
#   db    a database: sqlite3 builds a ~95 MiB database with two indexes in tmpfs (with a 48 MiB
#         page cache in its heap) and keeps updating and querying it
# Boots Debian's kernel + a busybox initramfs under QEMU TCG, saves guest RAM with the monitor's
# `pmemsave` when the workload reports ready and again some seconds later. Cached outside git.
# usage: make-guest-ram.sh text|db [cache-dir]   (default <repo>/.cache/hde-bench)
# env: HDE_VM_RAM_MIB (256; text 320), HDE_VM_GAP_S (8), HDE_VM_KERNEL (default: /boot, else the vm
#      package's test guest kernel, else apt-get download of linux-image-cloud-amd64)
set -euo pipefail

workload="${1:?usage: make-guest-ram.sh text|db [cache-dir]}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${2:-$repo/.cache/hde-bench}"
ram_mib="${HDE_VM_RAM_MIB:-$([[ $workload == text ]] && echo 320 || echo 256)}"
gap_s="${HDE_VM_GAP_S:-8}"
out1="$cache/guest-$workload-1.raw"
out2="$cache/guest-$workload-2.raw"
mkdir -p "$cache"
if [[ -s "$out1" && -s "$out2" ]]; then
  echo "reusing $out1 $out2"
  exit 0
fi
for tool in qemu-system-x86_64 socat cpio gzip busybox; do
  command -v "$tool" >/dev/null || { echo "make-guest-ram: $tool not found" >&2; exit 1; }
done

work="$(mktemp -d)"
qpid=""
cleanup() {
  [[ -n "$qpid" ]] && kill "$qpid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

kernel="${HDE_VM_KERNEL:-}"
[[ -n "$kernel" ]] || kernel="$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1 || true)"
[[ -n "$kernel" ]] || kernel="$(ls "${XDG_CACHE_HOME:-$HOME/.cache}"/novacron/vm-guest/*/vmlinuz 2>/dev/null | head -1 || true)"
if [[ -z "$kernel" ]]; then
  (cd "$work" && apt-get download linux-image-cloud-amd64 >/dev/null 2>&1 || true)
  kpkg="$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
  (cd "$work" && apt-get download "$kpkg" >/dev/null)
  dpkg-deb -x "$work/$kpkg"*.deb "$work/k"
  kernel="$(ls "$work"/k/boot/vmlinuz-* | head -1)"
fi

root="$work/root"
mkdir -p "$root"/{bin,proc,sys,dev,tmp,data,lib64,lib/x86_64-linux-gnu}
cp "$(command -v busybox)" "$root/bin/busybox"
for app in $("$root/bin/busybox" --list); do [[ $app == busybox ]] || ln -sf busybox "$root/bin/$app"; done

case "$workload" in
text)
  # Text as a guest's page cache holds it: sources, headers and docs, in files of 256 KiB (37,000
  # small files would round up to pages; the rootfs, a tmpfs, takes at most half the free RAM).
  set +o pipefail # head closes the pipe early on purpose
  budget=$((80 * 1024 * 1024))
  {
    find /usr/include /usr/lib/python3 /usr/lib/python3.11 /usr/share/perl /usr/share/perl5 -type f \
      \( -name '*.h' -o -name '*.py' -o -name '*.pm' -o -name '*.pl' \) 2>/dev/null | sort | xargs cat 2>/dev/null
    find /usr/share/doc /usr/share/man -type f -name '*.gz' 2>/dev/null | sort | xargs gzip -dc 2>/dev/null
  } | head -c "$budget" | (cd "$root/data" && split -b 256k -d -a 4 - text-)
  set -o pipefail
  size=$(du -sb "$root/data" | cut -f1)
  echo "text: $((size >> 20)) MiB in the initramfs"
  cat >"$root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs -o size=96m tmp /tmp
cd /data
# Read everything (a file server's or build host's page cache), derive some text from it.
cat * | wc -l >/tmp/lines.txt
grep -n '' * 2>/dev/null | head -c 62914560 >/tmp/numbered.txt
cat text-0000 text-0100 text-0200 | head -c 8388608 | tr -cs 'A-Za-z_' '\n' | sort | uniq -c | sort -rn | head -20000 >/tmp/idents.txt
grep -l include * | head -3000 >/tmp/includers.txt
(i=0; while true; do i=$((i+1)); echo "$i $(date) $(cat /proc/loadavg)" >>/tmp/app.log; sleep 0.05; done) &
(while true; do grep -h 'def ' * 2>/dev/null | sort | uniq -c | sort -rn | head -5000 >/tmp/defs.txt; sleep 1; done) &
echo HDE-GUEST-READY
while true; do sleep 60; done
INIT
  ;;
db)
  cp "$(command -v sqlite3)" "$root/bin/sqlite3"
  for lib in $(ldd "$(command -v sqlite3)" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  # Words for realistic row contents.
  set +o pipefail # head closes the pipe early on purpose
  find /usr/share/doc -name 'copyright' | head -300 | xargs cat 2>/dev/null | tr -cs 'A-Za-z' '\n' |
    awk 'length > 2' | sort -u | head -20000 >"$root/data/words.txt"
  set -o pipefail
  echo "db: $(wc -l <"$root/data/words.txt") words"
  cat >"$root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs -o size=160m tmp /tmp
cd /tmp
sqlite3 shop.db <<'SQL'
PRAGMA journal_mode = WAL;
PRAGMA cache_size = -65536;
CREATE TABLE words (id INTEGER PRIMARY KEY, w TEXT);
CREATE TEMP TABLE raw (w TEXT);
.import /data/words.txt raw
INSERT INTO words (w) SELECT w FROM raw;
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, city TEXT, created INTEGER, balance REAL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER, item TEXT, qty INTEGER, price REAL, ts INTEGER, note TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150000)
INSERT INTO customers SELECT i,
  (SELECT w FROM words WHERE id = 1 + abs(random()) % 20000) || ' ' || (SELECT w FROM words WHERE id = 1 + abs(random()) % 20000),
  lower((SELECT w FROM words WHERE id = 1 + abs(random()) % 20000)) || i || '@example.org',
  (SELECT w FROM words WHERE id = 1 + abs(random()) % 500), 1700000000 + abs(random()) % 50000000, (abs(random()) % 1000000) / 100.0
FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500000)
INSERT INTO orders SELECT i, 1 + abs(random()) % 150000,
  (SELECT w FROM words WHERE id = 1 + abs(random()) % 3000), 1 + abs(random()) % 9, (abs(random()) % 100000) / 100.0,
  1700000000 + i * 37, CASE WHEN random() % 4 = 0 THEN (SELECT w FROM words WHERE id = 1 + abs(random()) % 20000) || ' please' ELSE NULL END
FROM n;
CREATE INDEX orders_customer ON orders (customer, ts);
CREATE INDEX customers_city ON customers (city);
SQL
ls -l /tmp > /dev/ttyS0
# The running database: updates, inserts and reports, in one long-lived process (its page cache
# in its heap) and a second one running reports.
(while true; do
  echo "UPDATE customers SET balance = balance + 1 WHERE id % 97 = abs(random()) % 97;"
  echo "INSERT INTO orders (customer, item, qty, price, ts) SELECT 1 + abs(random()) % 150000, 'restock', 3, 9.99, strftime('%s','now') FROM customers LIMIT 200;"
  echo "SELECT city, count(*), sum(balance) FROM customers GROUP BY city ORDER BY 2 DESC LIMIT 5;"
  sleep 0.3
done) | sqlite3 -cmd 'PRAGMA cache_size = -49152' shop.db >/tmp/report.log 2>&1 &
(while true; do sqlite3 shop.db "PRAGMA cache_size = -24576; SELECT c.city, sum(o.qty * o.price) FROM orders o JOIN customers c ON c.id = o.customer GROUP BY c.city ORDER BY 2 DESC LIMIT 10;" >/tmp/top.txt; sleep 2; done) &
echo HDE-GUEST-READY
while true; do sleep 60; done
INIT
  ;;
*)
  echo "make-guest-ram: unknown workload $workload (text|db)" >&2
  exit 1
  ;;
esac
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initrd.gz"
echo "initramfs $(du -h "$work/initrd.gz" | cut -f1), kernel $kernel, RAM $ram_mib MiB"

bytes=$((ram_mib * 1024 * 1024))
mon="$work/mon.sock"
serial="$work/serial.log"
# pmemsave's size is parsed as an expression ("N /abs/path" reads as a division): relative names.
(cd "$cache" && exec qemu-system-x86_64 -machine q35,accel=tcg -cpu max -smp 1 -m "$ram_mib" -nographic -no-reboot \
  -kernel "$kernel" -initrd "$work/initrd.gz" -append "console=ttyS0 panic=-1 quiet" \
  -serial "file:$serial" -monitor "unix:$mon,server,nowait" -display none -net none) &
qpid=$!

monitor() { { echo "$1"; sleep 1; } | socat -t 5 - "UNIX-CONNECT:$mon" >/dev/null; }
wait_file() {
  local t=$((SECONDS + 60))
  until [[ -f "$1" && $(stat -c %s "$1") -eq $bytes ]]; do
    ((SECONDS < t)) || { echo "pmemsave did not finish: $1"; exit 1; }
    sleep 0.5
  done
}
deadline=$((SECONDS + 900))
until grep -q HDE-GUEST-READY "$serial" 2>/dev/null; do
  if ! kill -0 "$qpid" 2>/dev/null; then echo "qemu exited before the guest was ready:"; tail -30 "$serial"; exit 1; fi
  if ((SECONDS > deadline)); then echo "guest not ready after 900 s:"; tail -30 "$serial"; exit 1; fi
  sleep 1
done
echo "guest ready after ${SECONDS}s; snapshot 1"
tail -5 "$serial"
sleep 3
monitor "pmemsave 0 $bytes guest-$workload-1.raw.tmp"
wait_file "$out1.tmp"
sleep "$gap_s"
echo "snapshot 2 (${gap_s}s later)"
monitor "pmemsave 0 $bytes guest-$workload-2.raw.tmp"
wait_file "$out2.tmp"
monitor "quit" || true
wait "$qpid" || true
qpid=""
mv "$out1.tmp" "$out1"
mv "$out2.tmp" "$out2"
{
  echo "workload: $workload"
  echo "kernel: $kernel"
  echo "ram_mib: $ram_mib"
  echo "gap_s: $gap_s"
  echo "made: $(date -u +%FT%TZ)"
} >"$cache/guest-$workload.info"
ls -l "$out1" "$out2"
