#!/usr/bin/env bash
# Prints the path of a Debian Linux kernel image for the cgroup v2 test VM,
# fetching it into the cache directory $1 on first use.
#
#   apt-cache depends linux-image-amd64 ──► linux-image-<abi>-amd64
#   apt-get download (apt-get update first if that fails)
#   dpkg-deb --fsys-tarfile | tar ./boot/vmlinuz-*  ──► $1/vmlinuz-<abi>-amd64
#
# Nothing is installed on the host: the package is only unpacked. The
# kernel needs no modules: cgroup v2 with the cpu, memory and pids
# controllers, the 8250 serial console and initramfs support are built in
# (the script checks the package's config for them).
set -euo pipefail

cache=${1:?usage: kernel.sh CACHE_DIR}
mkdir -p "$cache"
exec 9>"$cache/kernel.lock"
flock 9

existing=$(ls "$cache"/vmlinuz-* 2>/dev/null | head -n1 || true)
if [ -n "$existing" ]; then
  echo "$existing"
  exit 0
fi

meta=linux-image-amd64
pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}' || true)
if [ -z "$pkg" ]; then
  apt-get update -qq >&2
  pkg=$(apt-cache depends "$meta" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$pkg" ] || { echo "kernel.sh: apt knows no kernel behind $meta" >&2; exit 1; }

tmp=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# apt drops privileges to _apt for downloads; let it write here.
chmod 777 "$tmp"
if ! (cd "$tmp" && apt-get download -qq "$pkg" >&2); then
  apt-get update -qq >&2
  (cd "$tmp" && apt-get download -qq "$pkg" >&2)
fi
dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' './boot/config-*'

config=$(ls "$tmp"/boot/config-*)
for option in CGROUPS MEMCG CGROUP_SCHED CFS_BANDWIDTH CGROUP_PIDS BLK_DEV_INITRD \
  SERIAL_8250_CONSOLE DEVTMPFS TMPFS; do
  grep -q "^CONFIG_$option=y" "$config" ||
    { echo "kernel.sh: $pkg lacks CONFIG_$option=y" >&2; exit 1; }
done

vmlinuz=$(ls "$tmp"/boot/vmlinuz-*)
mv "$vmlinuz" "$cache/"
echo "$cache/$(basename "$vmlinuz")"
