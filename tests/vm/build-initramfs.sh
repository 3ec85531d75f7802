#!/usr/bin/env bash
# Builds the cgroup v2 test VM's initramfs (an uncompressed newc cpio) from
# a `pando` binary:
#
#   /bin/busybox + one symlink per applet   (busybox-static)
#   /bin/pando                              (stripped copy of $1)
#   the shared libraries `ldd $1` names, at the same paths, and the loader
#   /init (tests/vm/init), /checks.sh (tests/vm/checks.sh), a minimal /etc
#
# usage: build-initramfs.sh PANDO_BIN OUT.cpio
set -euo pipefail

pando=${1:?usage: build-initramfs.sh PANDO_BIN OUT.cpio}
out=${2:?usage: build-initramfs.sh PANDO_BIN OUT.cpio}
here=$(cd "$(dirname "$0")" && pwd)

busybox=""
for candidate in /bin/busybox /usr/bin/busybox; do
  if [ -x "$candidate" ] && ! ldd "$candidate" >/dev/null 2>&1; then
    busybox=$candidate
    break
  fi
done
[ -n "$busybox" ] || { echo "build-initramfs.sh: no static busybox (apt-get install busybox-static)" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,root,run}

cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done

# The debug binary is mostly debug info; the guest's RAM holds the whole
# initramfs, so ship it stripped.
if command -v strip >/dev/null 2>&1; then
  strip -o "$root/bin/pando" "$pando"
else
  cp "$pando" "$root/bin/pando"
fi
for lib in $(ldd "$pando" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

install -m 0755 "$here/init" "$root/init"
install -m 0755 "$here/checks.sh" "$root/checks.sh"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
printf '127.0.0.1 localhost pando-vm\n' >"$root/etc/hosts"

if command -v cpio >/dev/null 2>&1; then
  cpio_cmd=(cpio -o -H newc --quiet)
else
  cpio_cmd=("$busybox" cpio -o -H newc)
fi
(cd "$root" && find . | LC_ALL=C sort | "${cpio_cmd[@]}") >"$out"
