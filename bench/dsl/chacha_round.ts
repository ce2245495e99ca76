// Crypto round: one ChaCha20 double round (8 quarter rounds) over 16 little-endian words of the
// packet after the Ethernet header, computed in place (the state is the packet).
import { type i32, u32, TC_ACT_OK, TcContext, array, struct } from '../../compiler/dsl/index.ts';

export const Block = struct({ w: array(u32, 16) }, { name: 'chacha_block' });

function rotl(x: u32, n: u32): u32 {
  return ((x << n) | (x >>> (32 - n))) >>> 0;
}

export function chacha_round(skb: TcContext): i32 {
  const p = skb.header(Block, 14);
  if (p === null) return TC_ACT_OK;
  // columns
  p.w[0] = (p.w[0] + p.w[4]) >>> 0; p.w[12] = rotl((p.w[12] ^ p.w[0]) >>> 0, 16); p.w[8] = (p.w[8] + p.w[12]) >>> 0; p.w[4] = rotl((p.w[4] ^ p.w[8]) >>> 0, 12);
  p.w[0] = (p.w[0] + p.w[4]) >>> 0; p.w[12] = rotl((p.w[12] ^ p.w[0]) >>> 0, 8); p.w[8] = (p.w[8] + p.w[12]) >>> 0; p.w[4] = rotl((p.w[4] ^ p.w[8]) >>> 0, 7);
  p.w[1] = (p.w[1] + p.w[5]) >>> 0; p.w[13] = rotl((p.w[13] ^ p.w[1]) >>> 0, 16); p.w[9] = (p.w[9] + p.w[13]) >>> 0; p.w[5] = rotl((p.w[5] ^ p.w[9]) >>> 0, 12);
  p.w[1] = (p.w[1] + p.w[5]) >>> 0; p.w[13] = rotl((p.w[13] ^ p.w[1]) >>> 0, 8); p.w[9] = (p.w[9] + p.w[13]) >>> 0; p.w[5] = rotl((p.w[5] ^ p.w[9]) >>> 0, 7);
  p.w[2] = (p.w[2] + p.w[6]) >>> 0; p.w[14] = rotl((p.w[14] ^ p.w[2]) >>> 0, 16); p.w[10] = (p.w[10] + p.w[14]) >>> 0; p.w[6] = rotl((p.w[6] ^ p.w[10]) >>> 0, 12);
  p.w[2] = (p.w[2] + p.w[6]) >>> 0; p.w[14] = rotl((p.w[14] ^ p.w[2]) >>> 0, 8); p.w[10] = (p.w[10] + p.w[14]) >>> 0; p.w[6] = rotl((p.w[6] ^ p.w[10]) >>> 0, 7);
  p.w[3] = (p.w[3] + p.w[7]) >>> 0; p.w[15] = rotl((p.w[15] ^ p.w[3]) >>> 0, 16); p.w[11] = (p.w[11] + p.w[15]) >>> 0; p.w[7] = rotl((p.w[7] ^ p.w[11]) >>> 0, 12);
  p.w[3] = (p.w[3] + p.w[7]) >>> 0; p.w[15] = rotl((p.w[15] ^ p.w[3]) >>> 0, 8); p.w[11] = (p.w[11] + p.w[15]) >>> 0; p.w[7] = rotl((p.w[7] ^ p.w[11]) >>> 0, 7);
  // diagonals
  p.w[0] = (p.w[0] + p.w[5]) >>> 0; p.w[15] = rotl((p.w[15] ^ p.w[0]) >>> 0, 16); p.w[10] = (p.w[10] + p.w[15]) >>> 0; p.w[5] = rotl((p.w[5] ^ p.w[10]) >>> 0, 12);
  p.w[0] = (p.w[0] + p.w[5]) >>> 0; p.w[15] = rotl((p.w[15] ^ p.w[0]) >>> 0, 8); p.w[10] = (p.w[10] + p.w[15]) >>> 0; p.w[5] = rotl((p.w[5] ^ p.w[10]) >>> 0, 7);
  p.w[1] = (p.w[1] + p.w[6]) >>> 0; p.w[12] = rotl((p.w[12] ^ p.w[1]) >>> 0, 16); p.w[11] = (p.w[11] + p.w[12]) >>> 0; p.w[6] = rotl((p.w[6] ^ p.w[11]) >>> 0, 12);
  p.w[1] = (p.w[1] + p.w[6]) >>> 0; p.w[12] = rotl((p.w[12] ^ p.w[1]) >>> 0, 8); p.w[11] = (p.w[11] + p.w[12]) >>> 0; p.w[6] = rotl((p.w[6] ^ p.w[11]) >>> 0, 7);
  p.w[2] = (p.w[2] + p.w[7]) >>> 0; p.w[13] = rotl((p.w[13] ^ p.w[2]) >>> 0, 16); p.w[8] = (p.w[8] + p.w[13]) >>> 0; p.w[7] = rotl((p.w[7] ^ p.w[8]) >>> 0, 12);
  p.w[2] = (p.w[2] + p.w[7]) >>> 0; p.w[13] = rotl((p.w[13] ^ p.w[2]) >>> 0, 8); p.w[8] = (p.w[8] + p.w[13]) >>> 0; p.w[7] = rotl((p.w[7] ^ p.w[8]) >>> 0, 7);
  p.w[3] = (p.w[3] + p.w[4]) >>> 0; p.w[14] = rotl((p.w[14] ^ p.w[3]) >>> 0, 16); p.w[9] = (p.w[9] + p.w[14]) >>> 0; p.w[4] = rotl((p.w[4] ^ p.w[9]) >>> 0, 12);
  p.w[3] = (p.w[3] + p.w[4]) >>> 0; p.w[14] = rotl((p.w[14] ^ p.w[3]) >>> 0, 8); p.w[9] = (p.w[9] + p.w[14]) >>> 0; p.w[4] = rotl((p.w[4] ^ p.w[9]) >>> 0, 7);
  return p.w[0] & 0xff;
}
