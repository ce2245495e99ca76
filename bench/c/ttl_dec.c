#include "common.h"

struct iphdr { __u8 vihl, tos; __be16 len, id, frag; __u8 ttl, proto; __be16 csum; __be32 src, dst; };
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 2);
} stats SEC(".maps");

static __always_inline void bump(__u32 k)
{
	__u32 *c = bpf_map_lookup_elem(&stats, &k);
	if (c)
		*c += 1;
}

SEC("tc")
int ttl_dec(struct __sk_buff *skb)
{
	struct iphdr *ip = HEADER(skb, struct iphdr, 14);
	if (!ip)
		return TC_ACT_OK;
	if (ip->ttl <= 1) {
		bump(1);
		return TC_ACT_SHOT;
	}
	__u32 old = ip->ttl | (ip->proto << 8);
	__u32 next = (ip->ttl - 1) | (ip->proto << 8);
	ip->ttl = ip->ttl - 1;
	if (bpf_l3_csum_replace(skb, 24, old, next, 2) != 0)
		return TC_ACT_SHOT;
	bump(0);
	return TC_ACT_OK;
}
