# Scenario 4, xfrm side: what the SA lookup costs as the number of peers grows. The pair of
# lib.sh carries the traffic; every other peer exists only as Cilium-style xfrm states and
# policies on both nodes (installed in bulk with `ip -batch`, cumulatively per scale point).
#
# Environment (env.sh): SCALE_POINTS ("1 1000 10000"), PING_COUNT, TCP_BYTES, REPS.
# Results per point N, prefixed scale-N.: summary.txt (install_s), count.txt (`ip xfrm state
# count` and `ip xfrm policy count` on node-a), mem-before/after.txt (/proc/meminfo around the
# installation), ping.R.txt, tcp.R.recv.txt, sa-before.R.txt and sa-after.R.txt (node-a's SA to
# node-b around TCP transfer R), active.R.inject.txt and active.R.recv.txt (all peers active),
# NODE.xfrm_stat.txt.
. "${BASELINE:-/baseline}/lib.sh"

topology_up || fail "topology"
$TC -n node-a -batch "$SCENARIO/node-a.tc.batch" || fail "node-a marks"
$TC -n node-b -batch "$SCENARIO/node-b.tc.batch" || fail "node-b marks"

# Whether this kernel has the per-CPU inbound SA cache (xfrm_input_state_lookup; not every kernel
# does, so it is recorded): with it, a hot SA is found without walking the SPI hash chain.
if grep -q ' xfrm_input_state_lookup$' /proc/kallsyms; then echo yes; else echo no; fi > "$RESULTS/input-state-cache.txt"

status=0
for n in $SCALE_POINTS; do
  p="$RESULTS/scale-$n"
  grep -E '^(MemAvailable|Slab):' /proc/meminfo > "$p.mem-before.txt"
  t0=$(cut -d' ' -f1 /proc/uptime)
  $IP -n node-a -batch "$SCENARIO/scale-$n.node-a.xfrm.batch" || fail "installing $n peers on node-a"
  $IP -n node-b -batch "$SCENARIO/scale-$n.node-b.xfrm.batch" || fail "installing $n peers on node-b"
  t1=$(cut -d' ' -f1 /proc/uptime)
  # A failing line stops `ip -batch` and the script; the SAD/SPD sizes the host checks also catch
  # a batch that was cut short.
  { $IP -n node-a xfrm state count; $IP -n node-a xfrm policy count; } > "$p.count.txt" 2>&1
  grep -E '^(MemAvailable|Slab):' /proc/meminfo > "$p.mem-after.txt"
  echo "install_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" > "$p.summary.txt"
  [ "$n" = "${SCALE_POINTS%% *}" ] && crypto_driver > "$RESULTS/crypto-driver.txt"
  log "$n peers installed in $(cut -d= -f2 "$p.summary.txt") s"

  # Warm up: neighbour entries, the policy's bundle cache, TCP's route metrics.
  in_ns pod-a ping -c 5 -W 5 "$POD_B_IP" > /dev/null 2>&1 || { log "warm-up ping failed at $n peers"; status=1; }

  r=1
  while [ "$r" -le "$REPS" ]; do
    # -A: the next echo goes out as soon as the reply is in, so the average is the round trip
    # (two encryptions, two decryptions, four lookups) and not the ping interval.
    in_ns pod-a ping -A -q -c "$PING_COUNT" -W 5 "$POD_B_IP" > "$p.ping.$r.txt" 2>&1 || status=1
    r=$((r + 1))
  done

  # ESP packets of each TCP transfer alone: node-a's SA counters around it, no pings inside.
  r=1
  while [ "$r" -le "$REPS" ]; do
    $IP -n node-a -s xfrm state list src "$NODE_A_IP" dst "$NODE_B_IP" > "$p.sa-before.$r.txt" 2>&1
    port=$((6000 + r))
    in_ns pod-b "$NETPROBE" tcp-recv "$port" 30000 > "$SCRATCH/tcp.$r" 2>&1 &
    pid=$!
    wait_for "$SCRATCH/tcp.$r" listening || fail "tcp receiver did not start"
    in_ns pod-a "$NETPROBE" tcp-send "$POD_B_IP" "$port" "$TCP_BYTES" > "$p.tcp.$r.send.txt" 2>&1 || status=1
    wait "$pid" || status=1
    cp "$SCRATCH/tcp.$r" "$p.tcp.$r.recv.txt"
    $IP -n node-a -s xfrm state list src "$NODE_A_IP" dst "$NODE_B_IP" > "$p.sa-after.$r.txt" 2>&1
    r=$((r + 1))
  done
  # Every peer active at once, inbound: node-b receives one ESP frame from each of the N peers in
  # turn (host-built, active-N.pcap, sent active-N.repeat times over), so no per-CPU or per-policy
  # cache can hold the one SA in use: each packet needs the lookup among N in-states. The frames
  # are injected on node-a's end of the wire; peer-mark.o gives synthetic peers their decrypt mark.
  if [ -f "$SCENARIO/active-$n.pcap" ]; then
    if [ ! -e "$SCRATCH/peer-mark" ]; then
      $TC -n node-b filter add dev eth0 ingress pref 2 bpf da obj "$SCENARIO/peer-mark.o" sec tc || fail "attaching peer-mark.o"
      touch "$SCRATCH/peer-mark"
    fi
    repeat=$(cat "$SCENARIO/active-$n.repeat")
    r=0
    while [ "$r" -le "$REPS" ]; do
      # Run 0 warms up (every SA used once, neighbour and route caches filled) and is not kept.
      if [ "$r" = 0 ]; then times=1; else times=$repeat; fi
      in_ns pod-b "$NETPROBE" udp-recv 4500 $((n * times)) 10000 > "$SCRATCH/active.$r" 2>&1 &
      pid=$!
      wait_for "$SCRATCH/active.$r" listening || fail "active-peer receiver did not start"
      in_ns node-a "$NETPROBE" inject eth0 "$SCENARIO/active-$n.pcap" "$times" > "$SCRATCH/inject.$r" 2>&1 || status=1
      wait "$pid" || status=1
      if [ "$r" != 0 ]; then
        cp "$SCRATCH/inject.$r" "$p.active.$r.inject.txt"
        cp "$SCRATCH/active.$r" "$p.active.$r.recv.txt"
      fi
      r=$((r + 1))
    done
  fi
  in_ns node-a cat /proc/net/xfrm_stat > "$p.node-a.xfrm_stat.txt"
  in_ns node-b cat /proc/net/xfrm_stat > "$p.node-b.xfrm_stat.txt"
  log "$n peers measured"
done
log "done status=$status"
exit $status
