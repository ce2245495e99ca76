# The pair scenarios: the two nodes of lib.sh, each either Linux xfrm with Cilium's states,
# policies and marks (NODE.xfrm.batch, NODE.tc.batch) or the engine (NODE.engine.json):
#   1 xfrm <-> xfrm, 2 engine (node-a) <-> xfrm (node-b): a->b is engine -> xfrm, b->a is
#   xfrm -> engine, 3 engine <-> engine. Pod-to-pod traffic in both directions, and the ESP frames
#   node-a put on the wire.
#
# Environment (env.sh, written by the host): UDP_COUNT UDP_SIZE TCP_BYTES NEGATIVE_COUNT.
# Results: ping.*.txt, udp.*.txt, tcp.*.txt, esp-a-to-b.pcap (the UDP datagrams of udp.a-to-b as
# node-a's xfrm encrypted them), replay.*.txt (those frames injected on the wire again and
# decrypted by node-b's xfrm; an engine on node-b must drop them as replays), reference.*.txt
# (host-encrypted frames, reference-a-to-b.pcap, decrypted by node-b), the xfrm snapshots of both
# nodes (pair.*; with the engine's counters where it runs), and the negative control (negative.*:
# frames under a wrong key, which node-b must drop and count). The host-built frames carry
# sequence numbers above anything the nodes send, and go last (before the negative control): the
# engine keeps a replay window, Cilium's xfrm states do not.
. "${BASELINE:-/baseline}/lib.sh"

topology_up || fail "topology"
node_config node-a || fail "node-a xfrm/tc configuration"
node_config node-b || fail "node-b xfrm/tc configuration"
crypto_driver > "$RESULTS/crypto-driver.txt"
log "configured; AEAD driver $(cat "$RESULTS/crypto-driver.txt")"

status=0
step() { log "$1"; }

step "ping both ways"
in_ns pod-a ping -c 3 -W 5 "$POD_B_IP" > "$RESULTS/ping.a-to-b.txt" 2>&1 || status=1
in_ns pod-b ping -c 3 -W 5 "$POD_A_IP" > "$RESULTS/ping.b-to-a.txt" 2>&1 || status=1

# udp SRC_POD DST_POD DST_IP PORT TAG: one batch of known datagrams, verified on arrival.
udp() {
  in_ns "$2" "$NETPROBE" udp-recv "$4" "$UDP_COUNT" 10000 > "$SCRATCH/udp.$5" 2>&1 &
  local pid=$!
  wait_for "$SCRATCH/udp.$5" listening || return 1
  in_ns "$1" "$NETPROBE" udp-send "$3" "$4" "$UDP_COUNT" "$UDP_SIZE" > "$RESULTS/udp.$5.send.txt" 2>&1
  wait "$pid"
  local rc=$?
  cp "$SCRATCH/udp.$5" "$RESULTS/udp.$5.recv.txt"
  return $rc
}

step "udp a->b, capturing node-a's ESP on the wire"
in_ns node-a "$NETPROBE" capture eth0 "$RESULTS/esp-a-to-b.pcap" "$UDP_COUNT" 20000 50 > $SCRATCH/capture 2>&1 &
capture_pid=$!
wait_for $SCRATCH/capture listening || fail "capture did not start"
udp pod-a pod-b "$POD_B_IP" 4000 a-to-b || status=1
wait "$capture_pid" || status=1
cp $SCRATCH/capture "$RESULTS/capture.txt"

step "udp b->a"
udp pod-b pod-a "$POD_A_IP" 4001 b-to-a || status=1

# The captured frames go onto the wire again from outside xfrm (AF_PACKET on node-a's end of the
# wire); node-b's xfrm must decrypt them and pod-b must receive the same datagrams. This is the
# path an engine-produced frame takes in the engine -> xfrm scenario. Cilium's states without ESN
# have no replay window, so the repeated sequence numbers are accepted.
# An engine on node-b has seen these sequence numbers and must drop every frame (anti-replay).
step "replay captured ESP into node-b"
if is_engine node-b; then replay_ms=3000; else replay_ms=10000; fi
engine_stats node-b replay-before
in_ns pod-b "$NETPROBE" udp-recv 4000 "$UDP_COUNT" "$replay_ms" > $SCRATCH/replay 2>&1 &
replay_pid=$!
wait_for $SCRATCH/replay listening || fail "replay receiver did not start"
in_ns node-a "$NETPROBE" inject eth0 "$RESULTS/esp-a-to-b.pcap" > "$RESULTS/replay.inject.txt" 2>&1 || status=1
if is_engine node-b; then wait "$replay_pid"; else wait "$replay_pid" || status=1; fi
cp $SCRATCH/replay "$RESULTS/replay.recv.txt"
engine_stats node-b replay-after

# tcp SRC_POD DST_POD DST_IP PORT TAG
tcp() {
  in_ns "$2" "$NETPROBE" tcp-recv "$4" 20000 > "$SCRATCH/tcp.$5" 2>&1 &
  local pid=$!
  wait_for "$SCRATCH/tcp.$5" listening || return 1
  in_ns "$1" "$NETPROBE" tcp-send "$3" "$4" "$TCP_BYTES" > "$RESULTS/tcp.$5.send.txt" 2>&1
  local send_rc=$?
  wait "$pid"
  local rc=$?
  cp "$SCRATCH/tcp.$5" "$RESULTS/tcp.$5.recv.txt"
  [ "$send_rc" = 0 ] && return $rc
  return 1
}

# node-a's SA counters around a transfer (out-SA for a->b, in-SA for b->a): its ESP packets give
# the per-packet cost.
sa_counters() {
  if is_engine node-a; then
    engine_stats node-a "$1"
  else
    $IP -n node-a -s xfrm state > "$RESULTS/$1.txt" 2>&1
  fi
}
step "tcp a->b"
sa_counters tcp.a-to-b.sa-before
tcp pod-a pod-b "$POD_B_IP" 5001 a-to-b || status=1
sa_counters tcp.a-to-b.sa-after
step "tcp b->a"
sa_counters tcp.b-to-a.sa-before
tcp pod-b pod-a "$POD_A_IP" 5002 b-to-a || status=1
sa_counters tcp.b-to-a.sa-after

# Frames the host encrypted with its reference ESP codec (runtime/esp, via runtime/baseline/esp.ts)
# from the same Cilium key: node-b must accept ESP it did not produce itself.
step "inject host-built ESP into node-b"
in_ns pod-b "$NETPROBE" udp-recv 4002 "$UDP_COUNT" 10000 > "$SCRATCH/reference" 2>&1 &
reference_pid=$!
wait_for "$SCRATCH/reference" listening || fail "reference receiver did not start"
in_ns node-a "$NETPROBE" inject eth0 "$SCENARIO/reference-a-to-b.pcap" > "$RESULTS/reference.inject.txt" 2>&1 || status=1
wait "$reference_pid" || status=1
cp "$SCRATCH/reference" "$RESULTS/reference.recv.txt"

xfrm_snapshot node-a pair
xfrm_snapshot node-b pair

# Negative control, after the snapshots the zero-error check reads: frames under a wrong key must
# be dropped by node-b's xfrm and show up in exactly the counters that check reads, so a broken
# counter or a path that bypasses xfrm cannot pass unnoticed.
step "negative control: ESP under a wrong key"
if is_engine node-b; then negative_ms=2000; else negative_ms=3000; fi
in_ns pod-b "$NETPROBE" udp-recv 4003 "$NEGATIVE_COUNT" "$negative_ms" > "$SCRATCH/negative" 2>&1 &
negative_pid=$!
wait_for "$SCRATCH/negative" listening || fail "negative receiver did not start"
in_ns node-a "$NETPROBE" inject eth0 "$SCENARIO/wrong-key-a-to-b.pcap" > "$RESULTS/negative.inject.txt" 2>&1 || status=1
wait "$negative_pid"
cp "$SCRATCH/negative" "$RESULTS/negative.recv.txt"
xfrm_snapshot node-b negative
log "done status=$status"
exit $status
