// Internet checksum arithmetic as the kernel does it on x86-64 (include/net/checksum.h,
// arch/x86/lib/csum-partial_64.c), so helper results match the kernel bit for bit.
//
// Values are taken the way the host loads them (little-endian). One's complement sums are
// byte-order neutral — swapping the bytes of every input swaps the bytes of the sum — so a
// program that passes raw __be16/__be32 values gets the same bytes the kernel writes.

const U32 = 0x100000000;

/** csum_add: 32-bit add with end-around carry. */
export function csumAdd(csum: number, addend: number): number {
  const sum = (csum >>> 0) + (addend >>> 0);
  return sum >= U32 ? (sum - U32 + 1) >>> 0 : sum;
}

/** csum_sub. */
export const csumSub = (csum: number, addend: number): number => csumAdd(csum, ~addend >>> 0);

/** csum_fold: 32 → 16 bits, complemented. */
export function csumFold(csum: number): number {
  let sum = csum >>> 0;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** csum16_add on __sum16 values. */
function csum16Add(csum: number, addend: number): number {
  const res = (csum + addend) & 0xffff;
  return (res + (res < addend ? 1 : 0)) & 0xffff;
}

/** csum_replace2: patch a 16-bit checksum for a 16-bit field changing from → to. */
export const csumReplace2 = (sum: number, from: number, to: number): number =>
  ~csum16Add(csum16Add(~sum & 0xffff, ~from & 0xffff), to & 0xffff) & 0xffff;

/** csum_replace4: patch a 16-bit checksum for a 32-bit field changing from → to. Note ~csum_unfold sets the high half. */
export const csumReplace4 = (sum: number, from: number, to: number): number => csumFold(csumAdd(csumSub(~sum >>> 0, from), to));

/** csum_replace_by_diff: patch a 16-bit checksum by a 32-bit partial sum of the change. */
export const csumReplaceByDiff = (sum: number, diff: number): number => csumFold(csumAdd(diff, ~sum >>> 0));

/**
 * csum_partial (x86-64): 64-bit little-endian words summed with end-around carry, a short tail
 * zero-padded into one more word, then folded to 32 bits.
 */
export function csumPartial(buf: Buffer, seed: number): number {
  let acc = BigInt(seed >>> 0);
  const add = (word: bigint): void => {
    acc += word;
    if (acc >= 1n << 64n) acc = (acc & 0xffffffffffffffffn) + 1n;
  };
  let off = 0;
  for (; off + 8 <= buf.length; off += 8) add(buf.readBigUInt64LE(off));
  if (off < buf.length) {
    const tail = Buffer.alloc(8);
    tail.set(buf.subarray(off));
    add(tail.readBigUInt64LE(0));
  }
  // from64to32
  let x = (acc & 0xffffffffn) + (acc >> 32n);
  x = (x & 0xffffffffn) + (x >> 32n);
  return Number(x & 0xffffffffn);
}

/** csum_from32to16 (include/net/checksum.h): the 32-bit sum folded to 16 bits, not complemented. */
export function csumFrom32to16(sum: number): number {
  const s = sum >>> 0;
  return (((s + (((s >>> 16) | (s << 16)) >>> 0)) >>> 0) >>> 16) & 0xffff;
}

/**
 * bpf_csum_diff as of Linux 6.13+ ("bpf: bpf_csum_diff: optimize and homogenize for all
 * archs"): the sum of `to` minus the sum of `from`, seeded, folded to 16 bits by
 * csum_from32to16. Sizes need not be multiples of 4 any more; a tail is zero-padded.
 */
export function csumDiff(from: Buffer, to: Buffer, seed: number): number {
  let sum: number;
  if (from.length && to.length) sum = csumSub(csumPartial(to, seed), csumPartial(from, 0));
  else if (to.length) sum = csumPartial(to, seed);
  else if (from.length) sum = ~csumPartial(from, ~seed >>> 0) >>> 0;
  else sum = seed >>> 0;
  return csumFrom32to16(sum);
}
