// 64-bit mixing (splitmix64 finaliser and xorshift) over four packet words into an array map.
import { type i32, u32, TC_ACT_OK, TcContext, array, arrayMap, struct, u64 } from '../../compiler/dsl/index.ts';

export const Words = struct({ w: array(u64, 4) }, { name: 'words4' });
export const mixed = arrayMap({ value: u64, maxEntries: 4 });

function splitmix(x: u64): u64 {
  let z = BigInt.asUintN(64, x + 0x9e3779b97f4a7c15n);
  z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
  z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
  return z ^ (z >> 31n);
}

export function mix64(skb: TcContext): i32 {
  const p = skb.header(Words, 0);
  if (p === null) return TC_ACT_OK;
  let acc: u64 = 0n;
  for (let i = 0; i < 4; i++) {
    let x = p.w[i];
    x ^= BigInt.asUintN(64, x << 13n);
    x ^= x >> 7n;
    x ^= BigInt.asUintN(64, x << 17n);
    acc = BigInt.asUintN(64, acc + splitmix(x));
    mixed.update(i, acc);
  }
  const k: u32 = Number(acc >> 60n);
  return k > 7 ? 2 : TC_ACT_OK;
}
