#!/bin/busybox sh
# PID 1 of the baseline guest. Mounts the pseudo filesystems, loads the module closure the host
# resolved (there is no modprobe here), runs /scenario/run.sh under a deadline, then sends every
# file the scenario left in /results back over the serial console and powers off.
#
# Console protocol (parsed by runtime/baseline/qemu.ts), one record per line:
#   @@LOG <text>                       a line of the scenario's stdout/stderr
#   @@MODULE-FAIL <file>               insmod failed (the scenario still runs; the host reports it)
#   @@FILE <name> <bytes> <sha256>     followed by base64 lines, then
#   @@ENDFILE <name>
#   @@EXIT <status>                    the scenario's exit status; last record before poweroff
# Kernel messages are kept off the console (loglevel=1 and dmesg -n 1) so they cannot split a
# record; the host still verifies every file against its length and SHA-256.
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /results /usr/bin /usr/sbin
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
dmesg -n 1

echo "@@LOG boot uptime=$(cut -d' ' -f1 /proc/uptime) kernel=$(uname -r)"
if [ -f /lib/modules/baseline/modules.load ]; then
  while read -r m; do
    insmod "/lib/modules/baseline/$m" || echo "@@MODULE-FAIL $m"
  done < /lib/modules/baseline/modules.load
fi
echo "@@LOG modules loaded uptime=$(cut -d' ' -f1 /proc/uptime)"

deadline=$(cat /scenario/deadline 2>/dev/null || echo 120)
set -o pipefail
# A read loop rather than sed: busybox sed has no -u and would hold lines back in its buffer.
timeout -s KILL "$deadline" sh -c 'cd /scenario && set -a && . ./env.sh && set +a && exec sh ./run.sh' 2>&1 |
  while IFS= read -r line; do echo "@@LOG $line"; done
status=$?
set +o pipefail
# Stop whatever the scenario left running (listeners, captures) so nothing writes to the console
# while the results go out.
kill -9 -1 2>/dev/null
sleep 0.2

for f in /results/*; do
  [ -f "$f" ] || continue
  name=${f#/results/}
  echo "@@FILE $name $(wc -c < "$f") $(sha256sum "$f" | cut -d' ' -f1)"
  base64 -w 76 "$f"
  echo "@@ENDFILE $name"
done
echo "@@EXIT $status"
sync
poweroff -f
