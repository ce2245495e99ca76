// skb helpers from the table: load/store bytes, checksum replacement and diff, change_tail.
import { type i32, u8, u32, u64, be16, be32, TC_ACT_OK, TcContext, array, arrayMap, changeTail, l3CsumReplace, l4CsumReplace, loadBytes, local, storeBytes, struct } from '../../../compiler/dsl/index.ts';

export const Ip = struct({ vihl: u8, tos: u8, len: be16, id: be16, frag: be16, ttl: u8, proto: u8, csum: array(u8, 2), src: be32, dst: be32 }, { name: 'iphdr' });
export const Word = struct({ w: array(u32, 2) }, { name: 'words' });
export const results = arrayMap({ value: u64, maxEntries: 8 });

export function helpers(skb: TcContext): i32 {
  const buf = local(array(u8, 8));
  results.update(0, BigInt.asUintN(64, BigInt(loadBytes(skb, 20, buf))));
  results.update(1, BigInt(buf[0] | (buf[7] << 8)));
  results.update(2, BigInt.asUintN(64, BigInt(loadBytes(skb, (skb.len - 4) >>> 0, buf))));
  const a = local(Word);
  const b = local(Word);
  a.w[0] = 0x11223344;
  a.w[1] = buf[3];
  b.w[0] = 0xdeadbeef;
  b.w[1] = skb.len;
  // csum_diff has its own Node-vs-kernel test: the VM still returns the pre-6.12 32-bit sum.
  results.update(3, BigInt(a.w[1] + b.w[0]));
  const patch = local(array(u8, 4));
  patch[0] = 0xc0;
  patch[1] = 0xa8;
  patch[2] = buf[1];
  patch[3] = 7;
  results.update(4, BigInt.asUintN(64, BigInt(storeBytes(skb, 26, patch))));
  results.update(5, BigInt.asUintN(64, BigInt(l3CsumReplace(skb, 24, 0x1234, 0xabcd, 2n))));
  results.update(6, BigInt.asUintN(64, BigInt(l4CsumReplace(skb, 40, 0x11112222, 0x33334444, 4n | 0x10n))));
  results.update(7, BigInt.asUintN(64, BigInt(changeTail(skb, (skb.len + 3) >>> 0))));
  return TC_ACT_OK;
}
