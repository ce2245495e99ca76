// Constant tables in .rodata, configuration and state in .data/.bss: an S-box lookup over the
// packet, a CRC-style table walk with a masked index, and a struct config read and updated.
import { type i32, u8, u32, u64, TC_ACT_OK, TcContext, array, arrayMap, global, rodata, struct } from '../../../compiler/dsl/index.ts';

export const Bytes = struct({ b: array(u8, 16) }, { name: 'bytes16' });
// The first row of the AES S-box, then a permutation of 0..15 to fill 32 entries.
export const SBOX = rodata(array(u8, 32), [
  0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76,
  3, 14, 7, 0, 9, 12, 1, 15, 4, 11, 2, 8, 13, 6, 10, 5,
]);
export const MIX = rodata(array(u32, 8), [0x9e3779b9, 0x7f4a7c15, 0xf39cc060, 0x5ced1a9b, 0x1, 0xffffffff, 0x80000000, 0x12345678]);
export const Config = struct({ shift: u32, enabled: u8, seed: u64 }, { name: 'config' });
export const config = global(Config, { shift: 3, enabled: 1, seed: 0x0123456789abcdefn });
export const packets = global(u64);
export const out = arrayMap({ value: u32, maxEntries: 4 });

export function tables(skb: TcContext): i32 {
  const p = skb.header(Bytes, 14);
  if (p === null) return TC_ACT_OK;
  let h: u32 = 0;
  for (let i = 0; i < 16; i++) h = ((h << 1) ^ SBOX[p.b[i] & 31] ^ MIX[i & 7]) >>> 0;
  out.update(0, h);
  out.update(1, config.enabled === 1 ? (h >>> config.shift) >>> 0 : 0);
  config.shift = (config.shift + 1) & 7;
  packets.value = BigInt.asUintN(64, packets.value + config.seed);
  out.update(2, Number(packets.value & 0xffffffffn));
  out.update(3, config.shift);
  return (h & 1) === 0 ? TC_ACT_OK : 2;
}
