#include "common.h"

struct ethhdr { __u8 dst[6]; __u8 src[6]; __be16 proto; };
struct vlanhdr { __be16 tci, proto; };
struct vlan_stats { __u64 packets, bytes; };
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct vlan_stats);
	__uint(max_entries, 4096);
} perVlan SEC(".maps");

SEC("tc")
int vlan_count(struct __sk_buff *skb)
{
	struct ethhdr *eth = HEADER(skb, struct ethhdr, 0);
	if (!eth)
		return TC_ACT_OK;
	__u16 proto = bpf_ntohs(eth->proto);
	__u32 vid = 0, depth = 0;
	for (int i = 0; i < 2; i++) {
		if (proto != 0x8100 && proto != 0x88a8)
			break;
		struct vlanhdr *tag = HEADER(skb, struct vlanhdr, 14 + i * 4);
		if (!tag)
			return TC_ACT_OK;
		if (i == 0)
			vid = bpf_ntohs(tag->tci) & 0xfff;
		proto = bpf_ntohs(tag->proto);
		depth = i + 1;
	}
	__u32 key = vid | (depth << 16);
	struct vlan_stats *s = bpf_map_lookup_elem(&perVlan, &key);
	if (s) {
		s->packets += 1;
		s->bytes += skb->len;
	} else {
		struct vlan_stats n = { 1, skb->len };
		bpf_map_update_elem(&perVlan, &key, &n, BPF_ANY);
	}
	return proto == 0x0800 || proto == 0x86dd ? TC_ACT_OK : 2;
}
