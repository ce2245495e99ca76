// 32-bit arithmetic with explicit wrap-around, shifts, masks, Math.imul and division.
import { type i32, u32, TC_ACT_OK, TcContext, array, arrayMap, struct, u8 } from '../../../compiler/dsl/index.ts';

export const Bytes = struct({ b: array(u8, 32) }, { name: 'bytes32' });
export const results = arrayMap({ value: u32, maxEntries: 8 });

function rotl(x: u32, n: u32): u32 {
  return ((x << n) | (x >>> (32 - n))) >>> 0;
}

export function arith(skb: TcContext): i32 {
  const p = skb.header(Bytes, 0);
  if (p === null) return TC_ACT_OK;
  let h: u32 = 0x811c9dc5;
  for (let i = 0; i < 32; i++) h = Math.imul(h ^ p.b[i], 0x01000193) >>> 0;
  const a: u32 = (p.b[0] << 24 | p.b[1] << 16 | p.b[2] << 8 | p.b[3]) >>> 0;
  const b: u32 = p.b[4] + 1;
  results.update(0, h);
  results.update(1, rotl(a, 7));
  results.update(2, (a / b) >>> 0);
  results.update(3, a % b);
  results.update(4, (~a & 0xffff) >>> 0);
  results.update(5, (a >> 3) >>> 0);
  results.update(6, Math.max(a, h));
  results.update(7, ((a - h) | 0) >>> 0);
  return (h & 3) === 0 ? 2 : TC_ACT_OK;
}
