#!/bin/sh
# The cgroup v2 checks, run by /init inside the test VM. Each check prints
#   PANDO-VM-RESULT <name> PASS|FAIL <detail>
# and tests/cgroups_v2_vm.rs fails on any FAIL or missing name.
#
#   unified      /sys/fs/cgroup is cgroup2 and no v1 hierarchy is mounted
#   agent        the agent probed cgroups as usable (no posix fallback)
#   limits       a task's group sits under the agent's root with memory.max,
#                cpu.max, cpu.weight and pids.max from its resources, and
#                the task's processes are in it
#   removed      that group is gone after the task ends
#   oom          a task allocating past mem is killed by the kernel's memcg
#                OOM killer in its group: TASK_FAILED with
#                REASON_CONTAINER_LIMITATION_MEMORY and "Memory limit exceeded"
#   cpu-quota    a busy loop with cpus:0.25 uses about 0.25 cpu by the
#                group's cpu.stat usage_usec, and is throttled; one with
#                cpus:1 beside it runs far faster
#   cpu-large    a task with cpus:12 (more shares than cpu.weight's 10000
#                allows raw) still gets a group and runs
#   cleanup      no container group is left under the agent's root
#
# Everything waits by polling with a deadline.

MASTER=127.0.0.1:5050
ROOT=pando-test
CG=/sys/fs/cgroup
failures=0

result() { # name PASS|FAIL detail...
  name=$1 verdict=$2
  shift 2
  [ "$verdict" = PASS ] || failures=$((failures + 1))
  echo "PANDO-VM-RESULT $name $verdict $*"
}

# now: seconds since boot, with hundredths.
now() { cut -d' ' -f1 /proc/uptime; }

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds.
wait_for() {
  limit=$(( $(cut -d. -f1 /proc/uptime) + $1 ))
  shift
  until "$@"; do
    [ "$(cut -d. -f1 /proc/uptime)" -lt "$limit" ] || return 1
    sleep 0.1
  done
}

# pids_matching TEXT: the processes whose command line holds TEXT (this
# busybox has no pgrep).
pids_matching() {
  for dir in /proc/[0-9]*; do
    if tr '\0' ' ' <"$dir/cmdline" 2>/dev/null | grep -qF -- "$1"; then
      echo "${dir#/proc/}"
    fi
  done
}

# group_of MARKER: the cgroup directory of the container whose process's
# command line holds MARKER (the task's processes live in <group>/leaf).
group_of() {
  for pid in $(pids_matching "$1"); do
    cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
    case "$cg" in
      /$ROOT/*/leaf) echo "$CG${cg%/leaf}"; return 0 ;;
    esac
  done
  return 1
}
has_group() { group_of "$1" >/dev/null; }

# execute NAME RESOURCES COMMAND: runs a task through the scheduler API;
# its output goes to /tmp/NAME.out, its exit status to /tmp/NAME.rc.
execute() {
  (
    pando execute --master "$MASTER" --name "$1" --resources "$2" --command "$3" \
      --timeout 30secs >"/tmp/$1.out" 2>&1
    echo $? >"/tmp/$1.rc"
  ) &
}
finished() { [ -s "/tmp/$1.rc" ]; }

# --- the cluster -----------------------------------------------------------

pando master --ip 127.0.0.1 --port 5050 --work_dir /tmp/master >/tmp/master.log 2>&1 &
# The agent runs in a group of its own, as a service manager would start it.
mkdir "$CG/pando-agent.service"
sh -c "echo \$\$ >$CG/pando-agent.service/cgroup.procs
  exec pando agent --master $MASTER --ip 127.0.0.1 --port 5051 --work_dir /tmp/agent \
    --isolation cgroups/cpu,cgroups/mem,cgroups/pids --cgroups_root $ROOT \
    --resources 'cpus:16;mem:640;disk:1024'" >/tmp/agent.log 2>&1 &

registered() { pando agent list --master "$MASTER" 2>/dev/null | grep -q pando-vm; }
if ! wait_for 60 registered; then
  result cluster FAIL "the agent did not register within 60s"
fi

# --- unified ---------------------------------------------------------------

fstype=$(awk -v m=$CG '$2 == m { print $3 }' /proc/mounts)
v1=$(awk '$3 == "cgroup"' /proc/mounts | wc -l)
if [ "$fstype" = cgroup2 ] && [ "$v1" = 0 ]; then
  result unified PASS "$CG is $fstype, no v1 mounts, controllers: $(cat $CG/cgroup.subtree_control)"
else
  result unified FAIL "$CG is $fstype, $v1 v1 mounts"
fi

# --- agent -------------------------------------------------------------------

if grep -q "falling back to posix" /tmp/agent.log; then
  result agent FAIL "$(grep 'falling back to posix' /tmp/agent.log | tail -n1)"
else
  result agent PASS "cgroups isolation in force, root $CG/$ROOT"
fi

# --- limits, removed -------------------------------------------------------

execute limits 'cpus:0.5;mem:96' 'echo limits-task; while [ ! -e /tmp/limits.release ]; do sleep 0.1; done'
if wait_for 60 has_group limits.release; then
  group=$(group_of limits.release)
  parent=$(dirname "$group")
  memory_max=$(cat "$group/memory.max")
  cpu_max=$(cat "$group/cpu.max")
  cpu_weight=$(cat "$group/cpu.weight")
  pids_max=$(cat "$group/pids.max")
  procs=$(cat "$group/leaf/cgroup.procs" | wc -l)
  detail="group $group: memory.max=$memory_max cpu.max='$cpu_max' cpu.weight=$cpu_weight pids.max=$pids_max processes=$procs"
  # 96 MB; 0.5 of a 100 ms period; 512 shares as a weight (100 per cpu);
  # the agent's default pids limit.
  if [ "$parent" = "$CG/$ROOT" ] && [ "$memory_max" = 100663296 ] &&
    [ "$cpu_max" = "50000 100000" ] && [ "$cpu_weight" = 50 ] &&
    [ "$pids_max" = 32768 ] && [ "$procs" -ge 2 ]; then
    result limits PASS "$detail"
  else
    result limits FAIL "$detail"
  fi
  touch /tmp/limits.release
  gone() { [ ! -e "$group" ]; }
  if wait_for 60 finished limits && [ "$(cat /tmp/limits.rc)" = 0 ] && wait_for 30 gone; then
    result removed PASS "$group removed after TASK_FINISHED"
  else
    result removed FAIL "rc=$(cat /tmp/limits.rc 2>/dev/null) group exists: $([ -e "$group" ] && echo yes || echo no)"
  fi
else
  result limits FAIL "no group for the task within 60s: $(tr '\n' '|' </tmp/limits.out)"
  result removed FAIL "no group to watch"
fi

# --- oom -------------------------------------------------------------------

# awk doubles a string until the kernel kills it (64 MB needs 22 doublings).
execute oom 'cpus:0.5;mem:64' "awk 'BEGIN { s = \"0123456789abcdef\"; for (;;) s = s s }'"
if wait_for 90 finished oom; then
  out=$(grep -E 'status update|message:|reason:' /tmp/oom.out | tr '\n' '|')
  # The kernel's report names the group whose limit was hit and the victim.
  kill=$(dmesg | grep -o 'oom-kill:constraint=CONSTRAINT_MEMCG.*' | tail -n1)
  case "$kill" in
    *"oom_memcg=/$ROOT/"*task=awk*) kernel_ok=yes ;;
    *) kernel_ok=no ;;
  esac
  detail="rc=$(cat /tmp/oom.rc); kernel: $kill; pando execute: $out"
  if grep -q "TASK_FAILED" /tmp/oom.out && grep -q "REASON_CONTAINER_LIMITATION_MEMORY" /tmp/oom.out &&
    grep -q "Memory limit exceeded" /tmp/oom.out && [ "$kernel_ok" = yes ]; then
    result oom PASS "$detail"
  else
    result oom FAIL "$detail"
  fi
else
  result oom FAIL "the task did not end within 90s: $(tr '\n' '|' </tmp/oom.out)"
fi

# --- cpu-quota -------------------------------------------------------------

execute cpu25 'cpus:0.25;mem:32' 'while [ ! -e /tmp/cpu.release ]; do :; done # cpu25'
execute cpu100 'cpus:1;mem:32' 'while [ ! -e /tmp/cpu.release ]; do :; done # cpu100'
if wait_for 60 has_group '# cpu25' && wait_for 60 has_group '# cpu100'; then
  g25=$(group_of '# cpu25')
  g100=$(group_of '# cpu100')
  stat_of() { awk -v k="$2" '$1 == k { print $2 }' "$1/cpu.stat"; }
  # Let both loops settle, then measure over 5 s of wall time.
  sleep 1
  t0=$(now) u25_0=$(stat_of "$g25" usage_usec) th0=$(stat_of "$g25" nr_throttled) u100_0=$(stat_of "$g100" usage_usec)
  sleep 5
  t1=$(now) u25_1=$(stat_of "$g25" usage_usec) th1=$(stat_of "$g25" nr_throttled) u100_1=$(stat_of "$g100" usage_usec)
  r25=$(awk -v a="$u25_0" -v b="$u25_1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 / (t1 - t0) }')
  r100=$(awk -v a="$u100_0" -v b="$u100_1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 / (t1 - t0) }')
  throttled=$((th1 - th0))
  detail="cpus:0.25 used $r25 cpu (cpu.max '$(cat "$g25/cpu.max")', throttled $throttled periods), cpus:1 used $r100 cpu over $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')s"
  # The quota holds the loop at 0.25 (a little over for accounting slack);
  # the unthrottled loop beside it shows the loop itself could use more.
  if awk -v r="$r25" -v c="$r100" 'BEGIN { exit !(r >= 0.15 && r <= 0.30 && c >= 0.6 && c >= 2 * r) }' &&
    [ "$throttled" -gt 10 ]; then
    result cpu-quota PASS "$detail"
  else
    result cpu-quota FAIL "$detail"
  fi
else
  result cpu-quota FAIL "no groups for the busy loops within 60s: $(tr '\n' '|' </tmp/cpu25.out)"
fi
touch /tmp/cpu.release
wait_for 60 finished cpu25
wait_for 60 finished cpu100

# --- cpu-large ---------------------------------------------------------------

execute large 'cpus:12;mem:32' 'cat /sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)/../cpu.weight >/tmp/large.weight'
if wait_for 90 finished large; then
  weight=$(cat /tmp/large.weight 2>/dev/null)
  if [ "$(cat /tmp/large.rc)" = 0 ] && [ "$weight" = 1200 ]; then
    result cpu-large PASS "cpus:12 ran with cpu.weight=$weight"
  else
    result cpu-large FAIL "rc=$(cat /tmp/large.rc) cpu.weight=$weight: $(tr '\n' '|' </tmp/large.out)"
  fi
else
  result cpu-large FAIL "the task did not end within 90s: $(tr '\n' '|' </tmp/large.out)"
fi

# --- cleanup ---------------------------------------------------------------

empty_root() { [ -z "$(find $CG/$ROOT -mindepth 1 -maxdepth 1 -type d)" ]; }
if wait_for 30 empty_root; then
  result cleanup PASS "$CG/$ROOT has no container groups left"
else
  result cleanup FAIL "left: $(find $CG/$ROOT -mindepth 1 -maxdepth 1 -type d | tr '\n' ' ')"
fi

if [ "$failures" -gt 0 ]; then
  echo "--- agent log (tail)"
  tail -n 60 /tmp/agent.log
  echo "--- master log (tail)"
  tail -n 20 /tmp/master.log
fi
