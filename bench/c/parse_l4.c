#include "common.h"

struct ethhdr { __u8 dst[6]; __u8 src[6]; __be16 proto; };
struct iphdr { __u8 vihl, tos; __be16 len, id, frag; __u8 ttl, proto; __be16 csum; __be32 src, dst; };
struct ipv6hdr { __be32 vtc; __be16 plen; __u8 next, hops; __u8 src[16], dst[16]; };
struct ports { __be16 sport, dport; };
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 8);
} classes SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 2);
} lastPort SEC(".maps");

static __always_inline void bump(__u32 k)
{
	__u32 *c = bpf_map_lookup_elem(&classes, &k);
	if (c)
		*c += 1;
}

SEC("tc")
int parse_l4(struct __sk_buff *skb)
{
	struct ethhdr *eth = HEADER(skb, struct ethhdr, 0);
	if (!eth) {
		bump(7);
		return TC_ACT_OK;
	}
	__u8 proto;
	__u16 off;
	__u8 base;
	if (eth->proto == bpf_htons(0x0800)) {
		struct iphdr *ip = HEADER(skb, struct iphdr, 14);
		if (!ip) {
			bump(7);
			return TC_ACT_OK;
		}
		__u32 ihl = ip->vihl & 15;
		if (ihl < 5) {
			bump(7);
			return TC_ACT_SHOT;
		}
		if (ip->frag & bpf_htons(0x3fff)) {
			bump(3);
			return TC_ACT_OK;
		}
		proto = ip->proto;
		off = 14 + ihl * 4;
		base = 1;
	} else if (eth->proto == bpf_htons(0x86dd)) {
		struct ipv6hdr *ip6 = HEADER(skb, struct ipv6hdr, 14);
		if (!ip6) {
			bump(7);
			return TC_ACT_OK;
		}
		proto = ip6->next;
		off = 54;
		base = 4;
	} else {
		bump(0);
		return TC_ACT_OK;
	}
	if (proto != 6 && proto != 17) {
		bump(base + 2);
		return TC_ACT_OK;
	}
	struct ports *l4 = HEADER(skb, struct ports, off);
	if (!l4) {
		bump(7);
		return TC_ACT_OK;
	}
	bump(proto == 6 ? base : base + 1);
	__u32 k = proto == 6 ? 0 : 1, v = bpf_ntohs(l4->dport);
	bpf_map_update_elem(&lastPort, &k, &v, BPF_ANY);
	return l4->dport == bpf_htons(23) ? TC_ACT_SHOT : TC_ACT_OK;
}
