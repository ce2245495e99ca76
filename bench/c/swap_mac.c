#include "common.h"

struct ethhdr { __u8 dst[6]; __u8 src[6]; __be16 proto; };
struct iphdr { __u8 vihl, tos; __be16 len, id, frag; __u8 ttl, proto; __be16 csum; __be32 src, dst; };

SEC("tc")
int swap_mac(struct __sk_buff *skb)
{
	struct ethhdr *eth = HEADER(skb, struct ethhdr, 0);
	if (!eth)
		return TC_ACT_OK;
	for (int i = 0; i < 6; i++) {
		__u8 t = eth->dst[i];
		eth->dst[i] = eth->src[i];
		eth->src[i] = t;
	}
	if (eth->proto == bpf_htons(0x0800)) {
		struct iphdr *ip = HEADER(skb, struct iphdr, 14);
		if (!ip)
			return TC_ACT_OK;
		__be32 t = ip->src;
		ip->src = ip->dst;
		ip->dst = t;
	}
	return bpf_redirect(1, 0);
}
