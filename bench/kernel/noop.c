/* The floor of every BPF_PROG_TEST_RUN figure in `npm run bench`: a tc program that does nothing.
 * Built by bench/kernel/objects.ts with clang-19 -O2 -g -target bpf. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int noop(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
