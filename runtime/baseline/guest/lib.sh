# Shared by every baseline scenario script (sourced, busybox ash).
#
# The topology is two Cilium-like nodes, each with one pod behind a veth, the nodes joined by a
# veth "wire". Addresses and MACs are fixed so that frames built outside the guest (the engine's
# ESP output, for the interoperability scenarios) can be injected on the wire as they are; the
# same numbers are exported to TypeScript by runtime/baseline/topology.ts, keep them in step.
#
#   pod-a            node-a                          node-b            pod-b
#   eth0 ---------- lxc0   eth0 ================== eth0   lxc0 ---------- eth0
#   10.0.1.10/24    10.0.1.1  192.168.0.1/24   192.168.0.2/24  10.0.2.1   10.0.2.10/24
#
# iproute2 is called by full path: busybox's shell prefers its own `ip`/`tc` applets, which know
# nothing of xfrm or clsact.
#
# The same scripts run on the host with --native (runtime/baseline/native.ts), which sets
# SCENARIO, RESULTS, SCRATCH and NETPROBE to its temporary directory; the defaults are the guest's paths.
IP=/usr/sbin/ip
TC=/usr/sbin/tc
SCENARIO=${SCENARIO:-/scenario}
RESULTS=${RESULTS:-/results}
NETPROBE=${NETPROBE:-/usr/local/bin/netprobe}
SCRATCH=${SCRATCH:-/tmp}
NAMESPACES="node-a node-b pod-a pod-b"
# The engine's loader (runtime/baseline/guest-engine.ts, bundled) and the node that runs it; only
# in guests of the engine scenarios. ETHTOOL is optional.
NODE_BIN=${NODE_BIN:-/usr/bin/node}
GUEST_ENGINE=${GUEST_ENGINE:-$SCENARIO/engine/guest-engine.mjs}
ETHTOOL=${ETHTOOL:-/usr/sbin/ethtool}

NODE_A_IP=192.168.0.1
NODE_B_IP=192.168.0.2
NODE_A_MAC=02:00:c0:a8:00:01
NODE_B_MAC=02:00:c0:a8:00:02
POD_A_IP=10.0.1.10
POD_B_IP=10.0.2.10
POD_A_CIDR=10.0.1.0/24
POD_B_CIDR=10.0.2.0/24
# Cilium lowers the pod route MTU by the ESP overhead (`mtu 1423` in its routes).
POD_ROUTE_MTU=1423

log() { echo "[$(cut -d' ' -f1 /proc/uptime)] $*"; }
fail() { echo "FAIL: $*"; exit 1; }
in_ns() { local ns=$1; shift; $IP netns exec "$ns" "$@"; }

# A pod namespace behind lxc0 of its node (busybox ash has `local`).
#   pod_up NODE POD POD_IP GATEWAY POD_MAC LXC_MAC POD_CIDR
pod_up() {
  local node=$1 pod=$2 pod_ip=$3 gw=$4 pod_mac=$5 lxc_mac=$6 cidr=$7
  $IP netns add "$pod" || return 1
  $IP -n "$pod" link set lo up
  $IP -n "$node" link add lxc0 address "$lxc_mac" type veth peer name eth0 netns "$pod" address "$pod_mac" || return 1
  $IP -n "$node" addr add "$gw/${cidr#*/}" dev lxc0
  $IP -n "$node" link set lxc0 up
  $IP -n "$pod" addr add "$pod_ip/${cidr#*/}" dev eth0
  $IP -n "$pod" link set eth0 up
  $IP -n "$pod" route add default via "$gw" mtu "$POD_ROUTE_MTU"
  # Pods send complete checksums and MTU-sized segments, for xfrm and the engine alike: the engine
  # encrypts what tc egress hands it (it does not complete CHECKSUM_PARTIAL yet, and a GSO
  # superpacket is too big to encrypt), as on a node that bounds GSO for IPsec.
  if [ -x "$ETHTOOL" ]; then
    in_ns "$pod" "$ETHTOOL" -K eth0 tx off tso off gso off > /dev/null 2>&1
    in_ns "$node" "$ETHTOOL" -K lxc0 gro off > /dev/null 2>&1
  fi
}

# Removes the namespaces (and with them every veth, SA and policy in them). Needed natively; in
# the guest, power-off does it. Only namespaces this script created are touched: topology_up
# refuses to start when any of them already exists.
topology_down() {
  for ns in $NAMESPACES; do
    [ -e "/run/netns/$ns" ] && $IP netns del "$ns"
    # The engine's pins (maps; its links go with the devices), named by the host per node.
    [ -d "/sys/fs/bpf/ets-baseline-$ns" ] && rm -rf "/sys/fs/bpf/ets-baseline-$ns"
  done
  return 0
}

topology_up() {
  for ns in $NAMESPACES; do
    if [ -e "/run/netns/$ns" ]; then
      echo "network namespace $ns already exists; not touching it"
      return 1
    fi
  done
  trap topology_down EXIT
  for ns in node-a node-b; do
    $IP netns add "$ns" || return 1
    $IP -n "$ns" link set lo up
    in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1 || return 1
  done
  $IP -n node-a link add eth0 address "$NODE_A_MAC" type veth \
    peer name eth0 netns node-b address "$NODE_B_MAC" || return 1
  $IP -n node-a addr add "$NODE_A_IP/24" dev eth0
  $IP -n node-b addr add "$NODE_B_IP/24" dev eth0
  $IP -n node-a link set eth0 up
  $IP -n node-b link set eth0 up
  if [ -x "$ETHTOOL" ]; then
    for ns in node-a node-b; do in_ns "$ns" "$ETHTOOL" -K eth0 tso off gso off gro off > /dev/null 2>&1; done
  fi
  pod_up node-a pod-a "$POD_A_IP" 10.0.1.1 02:00:0a:00:01:0a 02:00:0a:00:01:01 "$POD_A_CIDR" || return 1
  pod_up node-b pod-b "$POD_B_IP" 10.0.2.1 02:00:0a:00:02:0a 02:00:0a:00:02:01 "$POD_B_CIDR" || return 1
  $IP -n node-a route add "$POD_B_CIDR" via "$NODE_B_IP" dev eth0
  $IP -n node-b route add "$POD_A_CIDR" via "$NODE_A_IP" dev eth0
  # Static neighbours: no ARP on the wire, so a capture there holds only the traffic under test
  # and injected frames never wait for resolution.
  $IP -n node-a neigh replace "$NODE_B_IP" lladdr "$NODE_B_MAC" dev eth0 nud permanent
  $IP -n node-b neigh replace "$NODE_A_IP" lladdr "$NODE_A_MAC" dev eth0 nud permanent
}

# The engine on a node (its SCENARIO/NODE.engine.json, written by the host): load the compiled
# object, attach to the node's eth0, install the SAs and the policy. The pins keep it attached
# after the loader exits.
engine_up() {
  local node=$1
  PATH=/usr/sbin:/usr/bin:/bin:$PATH "$NODE_BIN" "$GUEST_ENGINE" up "$SCENARIO/$node.engine.json" > "$RESULTS/engine-up.$node.txt" 2>&1
  local rc=$?
  cat "$RESULTS/engine-up.$node.txt"
  return $rc
}

# The engine's counters on a node (the real peer's SAs and the audit), one line, to TAG.NODE.engine.txt.
engine_stats() {
  local node=$1 tag=$2
  [ -f "$SCENARIO/$node.engine.json" ] || return 0
  PATH=/usr/sbin:/usr/bin:/bin:$PATH "$NODE_BIN" "$GUEST_ENGINE" stats "$SCENARIO/$node.engine.json" "$tag" > "$RESULTS/$tag.$node.engine.txt" 2>&1
}

is_engine() { [ -f "$SCENARIO/$1.engine.json" ]; }

# Applies the host-generated configuration of one node: `ip -batch` for xfrm, `tc -batch` for the
# marks Cilium's BPF programs would set, the engine where NODE.engine.json exists. Each file may
# be absent.
node_config() {
  local node=$1
  if is_engine "$node"; then
    engine_up "$node" || return 1
  fi
  if [ -f "$SCENARIO/$node.xfrm.batch" ]; then
    $IP -n "$node" -batch "$SCENARIO/$node.xfrm.batch" || return 1
  fi
  if [ -f "$SCENARIO/$node.tc.batch" ]; then
    $TC -n "$node" -batch "$SCENARIO/$node.tc.batch" || return 1
  fi
}

# Waits until FILE has a line matching PATTERN (a listener announcing itself), up to SECONDS;
# on timeout shows what the listener printed instead.
wait_for() {
  local file=$1 pattern=$2 seconds=${3:-10} i=0
  while ! grep -q "$pattern" "$file" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt $((seconds * 20)) ]; then
      echo "no \"$pattern\" in $file after $seconds s:"
      cat "$file" 2>&1
      return 1
    fi
    sleep 0.05
  done
}

# Saves what xfrm says about a node: SAs with counters, policies, and the per-netns error
# counters. The host parses these files; nothing here interprets them.
xfrm_snapshot() {
  local node=$1 tag=$2
  $IP -n "$node" -s xfrm state > "$RESULTS/$tag.$node.xfrm-state.txt" 2>&1
  $IP -n "$node" -s xfrm policy > "$RESULTS/$tag.$node.xfrm-policy.txt" 2>&1
  in_ns "$node" cat /proc/net/xfrm_stat > "$RESULTS/$tag.$node.xfrm_stat.txt" 2>&1
  engine_stats "$node" "$tag"
}

# Which implementation of the AEAD the kernel picked (aesni or generic): goes into the report.
# The crypto API picks the registered implementation with the highest priority.
crypto_driver() {
  awk '/^name/ {name=$3} /^driver/ {drv=$3} /^priority/ {prio=$3}
       /^$/ {if (name=="rfc4106(gcm(aes))") print prio, drv}' /proc/crypto | sort -rn | awk 'NR==1 {print $2}'
}
