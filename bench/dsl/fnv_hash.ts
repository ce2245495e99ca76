// FNV-1a over the first 32 bytes, a few 32-bit derived values into an array map.
import { type i32, u32, TC_ACT_OK, TcContext, array, arrayMap, struct, u8 } from '../../compiler/dsl/index.ts';

export const Bytes = struct({ b: array(u8, 32) }, { name: 'bytes32' });
export const results = arrayMap({ value: u32, maxEntries: 4 });

export function fnv_hash(skb: TcContext): i32 {
  const p = skb.header(Bytes, 0);
  if (p === null) return TC_ACT_OK;
  let h: u32 = 0x811c9dc5;
  for (let i = 0; i < 32; i++) h = Math.imul(h ^ p.b[i], 0x01000193) >>> 0;
  const a: u32 = (p.b[0] << 24 | p.b[1] << 16 | p.b[2] << 8 | p.b[3]) >>> 0;
  results.update(0, h);
  results.update(1, (h ^ (h >>> 16)) >>> 0);
  results.update(2, (a + h) >>> 0);
  results.update(3, (h & 0xffff) >>> 0);
  return (h & 3) === 0 ? 2 : TC_ACT_OK;
}
