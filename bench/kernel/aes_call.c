/* The reference the engine is measured against (issue 5, `npm run bench`): ONE bare
 * bpf_crypto_encrypt call over exactly N bytes of a per-CPU scratch buffer, with an ecb(aes)
 * context (slot 0) or an ecb(aes-generic) context (slot 1) kept as a kptr in a map.
 *
 *   setup_ctx (SEC "syscall", sleepable): creates the context from its ctx argument
 *     (struct setup_args) and swaps it into ctx_map[slot], releasing any previous one.
 *   aes_<N> / aes_generic_<N> (SEC "tc"): scratch.out[0..N) = E_K(scratch.in[0..N)), ECB.
 *     Returns TC_ACT_OK (0) when the call succeeded, TC_ACT_SHOT (2) otherwise (no context, kfunc
 *     error) — the bench checks the return value so it never times an early bail-out.
 *
 * N is a compile-time constant per program (64, 512, 1408 = 1400 rounded up to 16, as the engine
 * must round), so the timed program is the lookups + two dynptrs + the call, nothing else.
 * Built by bench/kernel/objects.ts with clang-19 -O2 -g -target bpf. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

/* Defined (empty), not just declared: see test/fixtures/c/kfunc_call.c. */
struct bpf_crypto_ctx {};

/* Must match the kernel's layout (bpf_crypto_ctx_create checks params__sz == sizeof). */
struct bpf_crypto_params {
	char type[14];
	__u8 reserved[2];
	char algo[128];
	__u8 key[256];
	__u32 key_len;
	__u32 authsize;
};

extern struct bpf_crypto_ctx *bpf_crypto_ctx_create(const struct bpf_crypto_params *params, __u32 params__sz, int *err) __ksym;
extern void bpf_crypto_ctx_release(struct bpf_crypto_ctx *ctx) __ksym;
extern int bpf_crypto_encrypt(struct bpf_crypto_ctx *ctx, const struct bpf_dynptr *src, const struct bpf_dynptr *dst,
			      const struct bpf_dynptr *siv__nullable) __ksym;

#define SCRATCH_BYTES 1408 /* the largest N */
#define SLOTS 2		   /* 0: ecb(aes), 1: ecb(aes-generic) */

struct holder {
	struct bpf_crypto_ctx __kptr *ctx;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, struct holder);
} ctx_map SEC(".maps");

struct scratch {
	__u8 in[SCRATCH_BYTES];
	__u8 out[SCRATCH_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

/* The syscall program's argument, written by user space (bench/kernel/objects.ts). */
struct setup_args {
	char algo[32];	  /* NUL-terminated, e.g. "ecb(aes)" */
	__u8 key[32];
	__u32 key_len;	  /* 16, 24 or 32 */
	__u32 slot;	  /* < SLOTS */
	__s32 err;	  /* out: 0, or the negative errno of bpf_crypto_ctx_create */
	__u32 _pad;
};

SEC("syscall")
int setup_ctx(struct setup_args *args)
{
	struct bpf_crypto_params params = {
		.type = "skcipher",
	};
	struct bpf_crypto_ctx *cctx, *old;
	struct holder *h;
	__u32 slot = args->slot;
	int err = 0;

	if (slot >= SLOTS || args->key_len > sizeof(args->key)) {
		args->err = -22; /* EINVAL */
		return 0;
	}
	__builtin_memcpy(params.algo, args->algo, sizeof(args->algo));
	params.algo[sizeof(args->algo) - 1] = 0;
	__builtin_memcpy(params.key, args->key, sizeof(args->key));
	params.key_len = args->key_len;

	cctx = bpf_crypto_ctx_create(&params, sizeof(params), &err);
	if (!cctx) {
		args->err = err ? err : -22;
		return 0;
	}
	h = bpf_map_lookup_elem(&ctx_map, &slot);
	if (!h) {
		bpf_crypto_ctx_release(cctx);
		args->err = -2; /* ENOENT */
		return 0;
	}
	old = bpf_kptr_xchg(&h->ctx, cctx);
	if (old)
		bpf_crypto_ctx_release(old);
	args->err = 0;
	return 0;
}

static __always_inline int encrypt_scratch(__u32 slot, __u32 n)
{
	__u32 zero = 0;
	struct holder *h = bpf_map_lookup_elem(&ctx_map, &slot);
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	struct bpf_crypto_ctx *ctx;
	struct bpf_dynptr src, dst;

	if (!h || !s)
		return TC_ACT_SHOT;
	ctx = h->ctx; /* RCU-protected kptr: trusted for the call in a non-sleepable program */
	if (!ctx)
		return TC_ACT_SHOT;
	bpf_dynptr_from_mem(s->in, n, 0, &src);
	bpf_dynptr_from_mem(s->out, n, 0, &dst);
	return bpf_crypto_encrypt(ctx, &src, &dst, NULL) ? TC_ACT_SHOT : TC_ACT_OK;
}

#define BARE_CALL(name, slot, n)                         \
	SEC("tc")                                        \
	int name(struct __sk_buff *skb)                  \
	{                                                \
		return encrypt_scratch(slot, n);         \
	}

BARE_CALL(aes_64, 0, 64)
BARE_CALL(aes_512, 0, 512)
BARE_CALL(aes_1408, 0, 1408)
BARE_CALL(aes_generic_64, 1, 64)
BARE_CALL(aes_generic_512, 1, 512)
BARE_CALL(aes_generic_1408, 1, 1408)

char LICENSE[] SEC("license") = "GPL";
