// 64-bit arithmetic: wrap-around under BigInt.asUintN, signed reinterpretation, division.
import { type i32, u32, TC_ACT_OK, TcContext, array, arrayMap, struct, u64, be32 } from '../../../compiler/dsl/index.ts';

export const Words = struct({ w: array(u64, 4), x: be32 }, { name: 'words' });
export const out = arrayMap({ value: u64, maxEntries: 8 });

export function big(skb: TcContext): i32 {
  const p = skb.header(Words, 0);
  if (p === null) return TC_ACT_OK;
  const a = p.w[0];
  const b = p.w[1] | 1n;
  out.update(0, BigInt.asUintN(64, a * 0x9e3779b97f4a7c15n + p.w[2]));
  out.update(1, a / b);
  out.update(2, a % b);
  out.update(3, BigInt.asUintN(64, BigInt.asIntN(64, a) >> 5n));
  out.update(4, (a >> 13n) ^ (p.w[3] << 3n));
  out.update(5, BigInt(p.x) * 3n);
  const s = BigInt.asIntN(64, p.w[2]);
  out.update(6, s < 0n ? 1n : 2n);
  let acc: u64 = 0n;
  for (let i = 0; i < 4; i++) acc = BigInt.asUintN(64, acc + p.w[i]);
  out.update(7, acc);
  const k: u32 = Number(acc & 0xffn);
  return k > 128 ? 2 : TC_ACT_OK;
}
