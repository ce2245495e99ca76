// tc ingress on node-b's wire: gives ESP from the scale scenario's synthetic peers the decrypt
// mark Cilium's bpf_host would give it, 0x0d00 | node_id << 16, so xfrm finds each peer's
// in-state (Cilium's in-states differ only by that node ID in the mark).
//
// bpf_host looks the node ID up in the ipcache; here it is computed, because the synthetic peers
// are numbered by address (runtime/baseline/topology.ts, syntheticPeer): peer i has outer address
// 172.16.0.0 + i and node ID 2 + i. Computing it keeps the marking O(1), so the measured growth
// with peers is xfrm's alone (a tc rule per peer would add its own linear walk).
//
// Compiled on the host with clang -target bpf and loaded by iproute2's tc in the guest (direct
// action). Self-contained: no kernel or libbpf headers.
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;

// The start of struct __sk_buff (include/uapi/linux/bpf.h): only mark and the data pointers are
// used, at their UAPI offsets.
struct __sk_buff {
  __u32 len, pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci, vlan_proto, priority,
      ingress_ifindex, ifindex, tc_index, cb[5], hash, tc_classid, data, data_end;
};

#define TC_ACT_OK 0
#define SEC(name) __attribute__((section(name), used))

SEC("tc")
int peer_mark(struct __sk_buff *skb) {
  __u8 *data = (__u8 *)(long)skb->data;
  __u8 *end = (__u8 *)(long)skb->data_end;
  // Ethernet II (14) + IPv4 header up to the source address (16).
  if (data + 14 + 16 > end) return TC_ACT_OK;
  if (data[12] != 0x08 || data[13] != 0x00) return TC_ACT_OK;  // not IPv4
  if (data[14 + 9] != 50) return TC_ACT_OK;                     // not ESP
  __u8 *src = data + 14 + 12;
  if (src[0] != 172 || (src[1] & 0xf0) != 16) return TC_ACT_OK;  // not 172.16.0.0/12
  __u32 i = ((__u32)(src[1] - 16) << 16) | ((__u32)src[2] << 8) | src[3];
  skb->mark = 0x0d00 | ((2 + i) << 16);
  return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
