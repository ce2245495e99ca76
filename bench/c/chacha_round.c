#include "common.h"

struct chacha_block { __u32 w[16]; };

#define ROTL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define QR(a, b, c, d) \
	a += b; d = ROTL(d ^ a, 16); c += d; b = ROTL(b ^ c, 12); \
	a += b; d = ROTL(d ^ a, 8); c += d; b = ROTL(b ^ c, 7)

SEC("tc")
int chacha_round(struct __sk_buff *skb)
{
	struct chacha_block *p = HEADER(skb, struct chacha_block, 14);
	if (!p)
		return TC_ACT_OK;
	__u32 x0 = p->w[0], x1 = p->w[1], x2 = p->w[2], x3 = p->w[3], x4 = p->w[4], x5 = p->w[5], x6 = p->w[6], x7 = p->w[7];
	__u32 x8 = p->w[8], x9 = p->w[9], x10 = p->w[10], x11 = p->w[11], x12 = p->w[12], x13 = p->w[13], x14 = p->w[14], x15 = p->w[15];
	QR(x0, x4, x8, x12);
	QR(x1, x5, x9, x13);
	QR(x2, x6, x10, x14);
	QR(x3, x7, x11, x15);
	QR(x0, x5, x10, x15);
	QR(x1, x6, x11, x12);
	QR(x2, x7, x8, x13);
	QR(x3, x4, x9, x14);
	p->w[0] = x0; p->w[1] = x1; p->w[2] = x2; p->w[3] = x3; p->w[4] = x4; p->w[5] = x5; p->w[6] = x6; p->w[7] = x7;
	p->w[8] = x8; p->w[9] = x9; p->w[10] = x10; p->w[11] = x11; p->w[12] = x12; p->w[13] = x13; p->w[14] = x14; p->w[15] = x15;
	return x0 & 0xff;
}
