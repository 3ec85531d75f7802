#!/usr/bin/env bash
# Boots the cgroup v2 test VM with a `pando` binary and writes its serial
# console to WORK_DIR/console.log; tests/cgroups_v2_vm.rs reads the
# `PANDO-VM-RESULT` lines from it. By hand:
#
#   cargo build -p pando --bin pando
#   tests/vm/run.sh target/debug/pando /tmp/pando-vm && grep PANDO-VM /tmp/pando-vm/console.log
#
# usage: run.sh PANDO_BIN WORK_DIR
#   PANDO_VM_CACHE   where the kernel is kept (default: WORK_DIR)
#   PANDO_VM_ACCEL   kvm or tcg (default: kvm where the host CPU offers it)
#   PANDO_VM_TIMEOUT seconds before the VM is killed (default: 240 with
#                    KVM, 1500 under TCG emulation)
set -euo pipefail

pando=${1:?usage: run.sh PANDO_BIN WORK_DIR}
work=${2:?usage: run.sh PANDO_BIN WORK_DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"

command -v qemu-system-x86_64 >/dev/null 2>&1 ||
  { echo "run.sh: qemu-system-x86_64 is missing (apt-get install qemu-system-x86)" >&2; exit 1; }

kernel=$("$here/kernel.sh" "${PANDO_VM_CACHE:-$work}")
"$here/build-initramfs.sh" "$pando" "$work/initrd.cpio"

# KVM where the host has hardware virtualization (kvm_intel or kvm_amd) and
# this user may open /dev/kvm; otherwise full emulation (TCG), slower. A
# /dev/kvm backed by kvm_pvm (software nested virtualization) runs only
# PVM-enabled guest kernels, and the stock Debian kernel hangs there.
# PANDO_VM_ACCEL=kvm|tcg overrides the choice.
accel_name=${PANDO_VM_ACCEL:-}
if [ -z "$accel_name" ]; then
  accel_name=tcg
  if [ -r /dev/kvm ] && [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
    accel_name=kvm
  fi
fi
if [ "$accel_name" = kvm ]; then
  accel=(-accel kvm)
  timeout=${PANDO_VM_TIMEOUT:-240}
else
  accel=(-accel tcg)
  timeout=${PANDO_VM_TIMEOUT:-1500}
fi
echo "run.sh: booting $(basename "$kernel") with $accel_name, timeout ${timeout}s" >&2

# panic=-1 and -no-reboot: if /init dies, QEMU exits instead of hanging.
timeout --kill-after=10 "$timeout" qemu-system-x86_64 "${accel[@]}" \
  -m 1024 -smp 2 -display none -monitor none -serial stdio -nic none -no-reboot \
  -kernel "$kernel" -initrd "$work/initrd.cpio" \
  -append "console=ttyS0 panic=-1 quiet cgroup_no_v1=all rdinit=/init" \
  </dev/null >"$work/console.log"
