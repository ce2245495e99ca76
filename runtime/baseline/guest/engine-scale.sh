# Scenario 4, engine side: the same measurements as xfrm-scale.sh with the engine on both nodes.
# The peers beyond the real one exist only as encryption-map, ingress-SA and ipcache entries
# (guest-engine.ts `peers`), added cumulatively per scale point.
#
# Environment (env.sh): SCALE_POINTS, PING_COUNT, TCP_BYTES, REPS.
# Results per point N, prefixed scale-N.: NODE.peers.txt (install time), mem-before/after.txt,
# ping.R.txt, tcp.R.recv.txt, sa-before.R.node-a.engine.txt and sa-after.R.node-a.engine.txt
# (node-a's SA counters around TCP transfer R), active.R.inject.txt and active.R.recv.txt (all
# peers active: one ESP frame from each of the N peers in turn, injected on the wire to node-b),
# NODE.engine.txt (counters at the end of the point).
. "${BASELINE:-/baseline}/lib.sh"

topology_up || fail "topology"
engine_up node-a || fail "engine on node-a"
engine_up node-b || fail "engine on node-b"

status=0
peers() {
  PATH=/usr/sbin:/usr/bin:/bin:$PATH "$NODE_BIN" "$GUEST_ENGINE" peers "$SCENARIO/$1.engine.json" "$2"
}
for n in $SCALE_POINTS; do
  p="$RESULTS/scale-$n"
  grep -E '^(MemAvailable|Slab):' /proc/meminfo > "$p.mem-before.txt"
  for node in node-a node-b; do
    if [ -f "$SCENARIO/scale-$n.$node.peers.json" ]; then
      peers "$node" "$SCENARIO/scale-$n.$node.peers.json" > "$p.$node.peers.txt" 2>&1 || fail "adding peers for $n on $node: $(cat "$p.$node.peers.txt")"
    else
      echo "engine: peers added=0 install_ms=0" > "$p.$node.peers.txt"
    fi
  done
  grep -E '^(MemAvailable|Slab):' /proc/meminfo > "$p.mem-after.txt"
  log "$n peers installed ($(grep -h install_ms "$p.node-a.peers.txt" | sed 's/.*install_ms=//') ms on node-a)"

  in_ns pod-a ping -c 5 -W 5 "$POD_B_IP" > /dev/null 2>&1 || { log "warm-up ping failed at $n peers"; status=1; }
  r=1
  while [ "$r" -le "$REPS" ]; do
    in_ns pod-a ping -A -q -c "$PING_COUNT" -W 5 "$POD_B_IP" > "$p.ping.$r.txt" 2>&1 || status=1
    r=$((r + 1))
  done

  r=1
  while [ "$r" -le "$REPS" ]; do
    engine_stats node-a "scale-$n.sa-before.$r"
    port=$((6000 + r))
    in_ns pod-b "$NETPROBE" tcp-recv "$port" 30000 > "$SCRATCH/tcp.$r" 2>&1 &
    pid=$!
    wait_for "$SCRATCH/tcp.$r" listening || fail "tcp receiver did not start"
    in_ns pod-a "$NETPROBE" tcp-send "$POD_B_IP" "$port" "$TCP_BYTES" > "$p.tcp.$r.send.txt" 2>&1 || status=1
    wait "$pid" || status=1
    cp "$SCRATCH/tcp.$r" "$p.tcp.$r.recv.txt"
    engine_stats node-a "scale-$n.sa-after.$r"
    r=$((r + 1))
  done

  # All peers active, inbound on node-b: the engine keeps a replay window, so every run has its
  # own frames (active-N.R.pcap, fresh sequence numbers), run 0 warming up.
  r=0
  while [ -f "$SCENARIO/active-$n.$r.pcap" ]; do
    frames=$(cat "$SCENARIO/active-$n.$r.count")
    in_ns pod-b "$NETPROBE" udp-recv 4500 "$frames" 10000 > "$SCRATCH/active.$r" 2>&1 &
    pid=$!
    wait_for "$SCRATCH/active.$r" listening || fail "active-peer receiver did not start"
    in_ns node-a "$NETPROBE" inject eth0 "$SCENARIO/active-$n.$r.pcap" > "$SCRATCH/inject.$r" 2>&1 || status=1
    wait "$pid" || status=1
    if [ "$r" != 0 ]; then
      cp "$SCRATCH/inject.$r" "$p.active.$r.inject.txt"
      cp "$SCRATCH/active.$r" "$p.active.$r.recv.txt"
    fi
    r=$((r + 1))
  done
  engine_stats node-a "scale-$n.end"
  engine_stats node-b "scale-$n.end"
  log "$n peers measured"
done
log "done status=$status"
exit $status
