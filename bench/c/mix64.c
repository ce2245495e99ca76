#include "common.h"

struct words4 { __u64 w[4]; };
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} mixed SEC(".maps");

static __always_inline __u64 splitmix(__u64 x)
{
	__u64 z = x + 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

SEC("tc")
int mix64(struct __sk_buff *skb)
{
	struct words4 *p = HEADER(skb, struct words4, 0);
	if (!p)
		return TC_ACT_OK;
	__u64 acc = 0;
	for (__u32 i = 0; i < 4; i++) {
		__u64 x = p->w[i];
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		acc += splitmix(x);
		__u32 k = i;
		__u64 v = acc;
		bpf_map_update_elem(&mixed, &k, &v, BPF_ANY);
	}
	return (acc >> 60) > 7 ? 2 : TC_ACT_OK;
}
