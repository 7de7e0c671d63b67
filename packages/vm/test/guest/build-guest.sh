#!/usr/bin/env bash
# Builds the tiny test guest once: Debian's kernel (unpacked from its package, not installed on the
# host) + a busybox initramfs whose init prints NOVACRON-GUEST-READY on the serial console and powers
# off on the ACPI power button (busybox acpid), + an empty qcow2 base image for overlays.
# Output dir (printed on stdout) is keyed by this script, the kernel package and busybox's version,
# so every test file shares one build. usage: build-guest.sh [cache-root]
set -euo pipefail
root="${1:-${NOVACRON_VM_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/novacron/vm-guest}}"
for tool in apt-cache apt-get dpkg-deb cpio gzip qemu-img sha256sum; do
  command -v "$tool" >/dev/null || { echo "build-guest: $tool not found" >&2; exit 1; }
done
busybox=/bin/busybox
case " $("$busybox" --list 2>/dev/null | tr "\n" " ") " in *" acpid "*) ;; *)
   echo "build-guest: $busybox (busybox-static) with acpid not found" >&2; exit 1 ;;
esac
kpkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
[ -n "$kpkg" ] || { echo "build-guest: cannot resolve linux-image-amd64 (apt-get update?)" >&2; exit 1; }
kver="$(apt-cache policy "$kpkg" | awk '/Candidate:/ { print $2 }')"
key="$( { cat "$0"; echo "$kpkg $kver"; sha256sum "$busybox"; } | sha256sum | cut -c1-16)"
out="$root/$key"
if [ -f "$out/done" ]; then echo "$out"; exit 0; fi
mkdir -p "$root"
exec 9>"$root/.lock"
flock 9
if [ -f "$out/done" ]; then echo "$out"; exit 0; fi
work="$(mktemp -d "$root/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "$kpkg" >/dev/null 2>&1) || { echo "build-guest: apt-get download $kpkg failed" >&2; exit 1; }
dpkg-deb -x "$work"/*.deb "$work/k"
mkdir -p "$work/out" "$work/rd"/{bin,dev,proc,sys,lib,etc/acpi/PWRF}
cp "$work"/k/boot/vmlinuz-* "$work/out/vmlinuz"
mods="$(echo "$work"/k/lib/modules/*)"
cp "$mods/kernel/drivers/acpi/button.ko" "$mods/kernel/drivers/input/evdev.ko" "$work/rd/lib/"
cp "$busybox" "$work/rd/bin/busybox"
cat >"$work/rd/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
insmod /lib/evdev.ko
insmod /lib/button.ko
# acpid opens the event devices present when it starts: wait for the power button's node first.
i=0
while [ $i -lt 100 ]; do
  ev=$(grep -A5 'Name="Power Button"' /proc/bus/input/devices | sed -n 's/.*Handlers=.*\(event[0-9]*\).*/\1/p')
  [ -n "$ev" ] && [ -e "/dev/input/$ev" ] && break
  sleep 0.1
  i=$((i + 1))
done
# -l: acpid exits when it cannot open its log (default /var/log/acpid.log, absent here)
acpid -f -c /etc/acpi -l /dev/ttyS0 </dev/null >/dev/null 2>&1 &
echo "NOVACRON-GUEST-READY $(cat /proc/sys/kernel/random/boot_id)" > /dev/ttyS0
# novacron.halt on the kernel command line: the guest powers itself off (a guest-initiated shutdown).
case " $(cat /proc/cmdline) " in *" novacron.halt "*) echo "NOVACRON-GUEST-HALT" > /dev/ttyS0; poweroff -f ;; esac
while true; do sleep 3600; done
INIT
cat >"$work/rd/etc/acpi/PWRF/00000080" <<'PWR'
#!/bin/sh
echo "NOVACRON-GUEST-POWERDOWN" > /dev/ttyS0
sync
poweroff -f
PWR
chmod +x "$work/rd/init" "$work/rd/etc/acpi/PWRF/00000080"
(cd "$work/rd" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/out/initrd.gz"
qemu-img create -q -f qcow2 "$work/out/base.qcow2" 16M
echo "$kpkg $kver" >"$work/out/done"
rm -rf "$out"
mv "$work/out" "$out"
echo "$out"
