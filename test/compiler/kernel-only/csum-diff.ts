// bpf_csum_diff: the kernel folds the result to 16 bits on every architecture since Linux 6.12.
import { type i32, u32, u64, TC_ACT_OK, TcContext, array, arrayMap, csumDiff, local, struct, u8 } from '../../../compiler/dsl/index.ts';

export const Word = struct({ w: array(u32, 2) }, { name: 'words' });
export const Odd = struct({ b: array(u8, 6) }, { name: 'odd' });
export const results = arrayMap({ value: u64, maxEntries: 4 });

export function diff(skb: TcContext): i32 {
  const a = local(Word);
  const b = local(Word);
  const odd = local(Odd);
  a.w[0] = 0x11223344;
  a.w[1] = skb.len;
  b.w[0] = 0xdeadbeef;
  b.w[1] = (skb.len * 77) >>> 0;
  results.update(0, BigInt.asUintN(64, csumDiff(a, b, 0x1234)));
  results.update(1, BigInt.asUintN(64, csumDiff(b, a, 0)));
  results.update(2, BigInt.asUintN(64, csumDiff(odd, a, 0)));
  return TC_ACT_OK;
}
