// Completing a CHECKSUM_PARTIAL TCP/UDP checksum in the DSL, for the egress before it encrypts.
//
// Node-local TCP (and UDP on devices with checksum offload) reaches tc egress as CHECKSUM_PARTIAL:
// the check field holds only the folded pseudo-header sum (Linux writes
// `~csum_tcpudp_magic(saddr, daddr, len, proto, 0)`, the seed the device finishes from). Inside
// ESP nothing finishes it, and a receiver that verifies (xfrm decrypts, then TCP checks) drops
// the segment; xfrm itself calls skb_checksum_help before it encrypts. BPF cannot read
// ip_summed, so the packet decides:
//
//   S    = pseudo header (src, dst, proto, L4 length) + every L4 byte, the check field as it is
//   fold(S) = 0xffff               → complete already: left            (L4CSUM_COMPLETE)
//   check = fold(pseudo header)    → the seed: written as the full sum (L4CSUM_COMPLETED)
//                                    ~fold(pseudo + L4 with check = 0); UDP writes 0 as 0xffff
//   otherwise                      → corrupt from the sender: left     (L4CSUM_BAD); the receiver
//                                    drops it, as it would without us
//   UDP check 0 (no checksum), fragments (MF or offset ≠ 0), not TCP/UDP, not IPv4: left
//                                    (L4CSUM_NOT_APPLICABLE)
//
// Sums are ones-complement (RFC 1071), mod 0xffff throughout. The L4 bytes are read as raw
// little-endian u64s (the fastest packet loads), two per 16-byte block: summing the host-order
// 16-bit words gives 256·B mod 0xffff where B is the sum of the network-order words (RFC 1071
// §2(B), byte-order independence), so the folded sum is byte-swapped once at the end. The L4
// header starts at an even offset, so the tail (8, 4, 2, then 1 byte zero-padded) keeps the word
// pairing; an odd last byte b is the network word b·256, i.e. the host word b.
//
// Verifier shape (3,541 insns processed for `l4csum_test`, kernel 6.18):
// - one bounded loop over the 16-byte blocks whose only exit to the rest is `j >= blocks` (a
//   failed packet check returns MALFORMED, which cannot happen after the pull), and nothing after
//   it reads j: the tail works from the length, so the exits reach it with equal states;
// - the accumulator is not folded in the loop (94 blocks of four 32-bit halves cannot carry out
//   of 64 bits), so an iteration is ~30 instructions;
// - no branch before the loop learns a constant protocol: TCP/UDP is tested through a product,
//   isUdp is (proto >> 4) & 1, and length, minimum and check offset are selected by multiplying
//   with it. With `proto !== 6 && proto !== 17` the verifier walked the loop once for TCP and once
//   for UDP (13,140 insns with 8-byte steps).
// bpf_loop is no option (its callback cannot see the packet, engine/README.md G8).
//
// The IPv4 header is at ETH_HLEN (as in engine/esp.ts egress). The function pulls the packet's
// IPv4 datagram into the linear area first (bpf_skb_pull_data: locally built TCP keeps its payload
// in page frags, which direct packet access cannot see), so like pullData it invalidates packet
// views the caller took before the call.
//
// `l4csum_test` below is the test program (test/engine-l4csum.test.ts): it returns the code.

import {
  type i32,
  type u32,
  type u64,
  TcContext,
  array,
  be16,
  be32,
  pullData,
  struct,
  u8,
  u16 as U16,
  u32 as U32,
  u64 as U64,
} from '../compiler/dsl/index.ts';

/** The check field was complete (ones-complement sum over pseudo header and L4 = 0): left. */
export const L4CSUM_COMPLETE = 0;
/** The check field held the CHECKSUM_PARTIAL seed: the full checksum was written. */
export const L4CSUM_COMPLETED = 1;
/** Nothing to do: not IPv4, not TCP/UDP, an IP fragment, or UDP without a checksum (0). */
export const L4CSUM_NOT_APPLICABLE = 2;
/** Truncated or inconsistent headers (IPv4 version/IHL/total length, TCP < 20 bytes, UDP length
 *  outside 8…IP payload) or the pull failed: the packet is left as it is. */
export const L4CSUM_MALFORMED = 3;
/** Neither complete nor the seed: a checksum the sender got wrong, left for the receiver to drop. */
export const L4CSUM_BAD = 4;
/** L4 longer than L4CSUM_MAX_LEN: left (engine/esp.ts egress drops such packets as TOO_BIG). */
export const L4CSUM_TOO_BIG = 5;

/** The longest L4 segment summed: egress encrypts IPv4 datagrams up to 1514 bytes, so with a
 *  20-byte header up to 1494, rounded up to 16. The loop's bound is its block count (the verifier
 *  walks every iteration up to it, ~30 insns each). */
export const L4CSUM_MAX_LEN = 1504;
const MAX_BLOCKS = L4CSUM_MAX_LEN / 16; // 94

const ETH_HLEN = 14;
const ETH_P_IP = 0x0800;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

const L4Eth = struct({ dst: array(u8, 6), src: array(u8, 6), proto: be16 }, { name: 'l4csum_eth' });
const L4Ip = struct(
  { vihl: u8, tos: u8, totLen: be16, id: be16, frag: be16, ttl: u8, protocol: u8, check: be16, saddr: be32, daddr: be32 },
  { name: 'l4csum_iphdr' },
);
/** The first 8 bytes of TCP and UDP: ports, then UDP's length and check. */
const L4Head = struct({ sport: be16, dport: be16, len: be16, check: be16 }, { name: 'l4csum_head' });
const L4Check = struct({ v: be16 }, { name: 'l4csum_check' });
const Raw16 = struct({ a: U64, b: U64 }, { name: 'l4csum_raw16' });
const Raw8 = struct({ v: U64 }, { name: 'l4csum_raw8' });
const Raw4 = struct({ v: U32 }, { name: 'l4csum_raw4' });
const Raw2 = struct({ v: U16 }, { name: 'l4csum_raw2' });
const Raw1 = struct({ v: u8 }, { name: 'l4csum_raw1' });

/** x mod 0xffff as 1…0xffff (0 only for x = 0), for x < 2⁴⁸: end-around carry, three times. */
function fold16(x: u64): u32 {
  let s: u64 = (x & 0xffffn) + (x >> 16n);
  s = (s & 0xffffn) + (s >> 16n);
  s = (s & 0xffffn) + (s >> 16n);
  return Number(s & 0xffffn);
}

/**
 * Completes a CHECKSUM_PARTIAL TCP/UDP checksum of the IPv4 packet at ETH_HLEN in place (see the
 * top of this file); returns an L4CSUM_* code. Invalidates the caller's packet views (it pulls).
 */
/** @noinline */
export function completeL4Checksum(skb: TcContext): u32 {
  const eth = skb.header(L4Eth, 0);
  if (eth === null) return L4CSUM_MALFORMED;
  if (eth.proto !== ETH_P_IP) return L4CSUM_NOT_APPLICABLE;
  const ip = skb.header(L4Ip, ETH_HLEN);
  if (ip === null) return L4CSUM_MALFORMED;
  const vihl: u32 = ip.vihl;
  const ihl: u32 = (vihl & 15) * 4;
  const totLen: u32 = ip.totLen;
  if (vihl >>> 4 !== 4 || ihl < 20 || totLen < ihl || totLen + ETH_HLEN > skb.len) return L4CSUM_MALFORMED;
  if ((ip.frag & 0x3fff) !== 0) return L4CSUM_NOT_APPLICABLE;
  // TCP (6) or UDP (17), tested through a product so that the verifier does not learn a constant
  // protocol on two paths (it would walk the loop below once for each).
  const proto: u32 = ip.protocol;
  const notTcpUdp: u32 = ((proto - IPPROTO_TCP) * (proto - IPPROTO_UDP)) >>> 0;
  if (notTcpUdp !== 0) return L4CSUM_NOT_APPLICABLE;
  const isUdp: u32 = (proto >>> 4) & 1; // 6 → 0, 17 → 1
  const ipLen: u32 = (totLen - ihl) & 0xffff; // totLen ≥ ihl (checked); the mask is for the compiler
  if (ipLen > L4CSUM_MAX_LEN) return L4CSUM_TOO_BIG;
  const saddr: u32 = ip.saddr;
  const daddr: u32 = ip.daddr;

  // The whole datagram linear and writable (a no-op for a linear, unshared skb).
  if (pullData(skb, ETH_HLEN + totLen) !== 0) return L4CSUM_MALFORMED;
  const l4Off: u32 = ETH_HLEN + (ihl & 60);
  const head = skb.header(L4Head, l4Off);
  if (head === null) return L4CSUM_MALFORMED;
  const udpLen: u32 = head.len;
  const udpCheck: u32 = head.check;
  // Branch-free from here to the loop (the same reason): UDP sums its own length (bytes past it
  // are not UDP's) and needs 8 ≤ it ≤ the IP payload; TCP sums the IP payload, at least 20 bytes.
  const len: u32 = (ipLen + isUdp * (udpLen - ipLen)) >>> 0;
  const minLen: u32 = 20 - 12 * isUdp;
  if (len < minLen || len > ipLen) return L4CSUM_MALFORMED;
  const noChecksum: u32 = isUdp * (1 - ((udpCheck + 0xffff) >>> 16)); // UDP and check 0
  if (noChecksum !== 0) return L4CSUM_NOT_APPLICABLE;
  const n: u32 = len & 0x7ff; // ≤ L4CSUM_MAX_LEN; the mask is for the compiler
  const checkOff: u32 = l4Off + 16 - 10 * isUdp; // TCP check at 16, UDP at 6

  // The L4 bytes, 16 at a time, as host-order words (the sum is byte-swapped below); no carry
  // is lost: at most 94 · 4 · (2³² − 1) < 2⁶⁴ (asUintN is for the compiler, it never wraps).
  const blocks: u32 = n >>> 4;
  let acc: u64 = 0n;
  for (let j = 0; j < MAX_BLOCKS; j++) {
    if (j >= blocks) break;
    const w = skb.header(Raw16, l4Off + 16 * j);
    if (w === null) return L4CSUM_MALFORMED;
    const a: u64 = w.a;
    const b: u64 = w.b;
    acc = BigInt.asUintN(64, acc + (a & 0xffffffffn) + (a >> 32n) + (b & 0xffffffffn) + (b >> 32n));
  }
  // The last 0…15 bytes from the length alone: 8, 4, 2, then 1 (zero-padded).
  const tailOff: u32 = l4Off + (n & 0x7f0);
  let tail8: u64 = 0n;
  let tail4: u32 = 0;
  let tail2: u32 = 0;
  let tail1: u32 = 0;
  if ((n & 8) !== 0) {
    const t8 = skb.header(Raw8, tailOff);
    if (t8 === null) return L4CSUM_MALFORMED;
    const t: u64 = t8.v;
    tail8 = (t & 0xffffffffn) + (t >> 32n);
  }
  if ((n & 4) !== 0) {
    const t4 = skb.header(Raw4, tailOff + (n & 8));
    if (t4 === null) return L4CSUM_MALFORMED;
    tail4 = t4.v;
  }
  if ((n & 2) !== 0) {
    const t2 = skb.header(Raw2, tailOff + (n & 12));
    if (t2 === null) return L4CSUM_MALFORMED;
    tail2 = t2.v;
  }
  if ((n & 1) !== 0) {
    const t1 = skb.header(Raw1, tailOff + (n & 14));
    if (t1 === null) return L4CSUM_MALFORMED;
    tail1 = t1.v;
  }
  const acc32: u64 = (acc & 0xffffffffn) + (acc >> 32n); // < 2³³
  const host: u32 = fold16(acc32 + (tail8 & 0x3ffffffffn) + BigInt(tail4) + BigInt(tail2) + BigInt(tail1));
  const data: u32 = ((host & 0xff) << 8) | (host >>> 8); // network-order word sum of the L4 bytes

  const pseudo: u32 = (saddr >>> 16) + (saddr & 0xffff) + (daddr >>> 16) + (daddr & 0xffff) + proto + n;
  const chk = skb.header(L4Check, checkOff);
  if (chk === null) return L4CSUM_MALFORMED;
  const check: u32 = chk.v;
  if (fold16(BigInt(pseudo + data)) === 0xffff) return L4CSUM_COMPLETE;
  if (check !== fold16(BigInt(pseudo))) return L4CSUM_BAD;
  // Without the seed: S − check = S + ~check.
  const full: u32 = ~fold16(BigInt(pseudo + data + (0xffff - check))) & 0xffff;
  chk.v = isUdp !== 0 && full === 0 ? 0xffff : full;
  return L4CSUM_COMPLETED;
}

// ---------------------------------------------------------------------------------------------
// Test program: the packet (Ethernet, IPv4, L4) in, the code out as the return value, the
// checksum completed in place.

/** @section tc */
export function l4csum_test(skb: TcContext): i32 {
  return completeL4Checksum(skb) | 0;
}
