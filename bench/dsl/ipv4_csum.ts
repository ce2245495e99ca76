// Verify the IPv4 header checksum (ones' complement sum of the ten 16-bit words); count good and
// bad headers, drop bad ones.
import { type i32, u32, TC_ACT_OK, TC_ACT_SHOT, TcContext, array, arrayMap, struct, u16 } from '../../compiler/dsl/index.ts';

export const Hdr = struct({ w: array(u16, 10) }, { name: 'ip_words' });
export const verdicts = arrayMap({ value: u32, maxEntries: 2 });

export function ipv4_csum(skb: TcContext): i32 {
  const ip = skb.header(Hdr, 14);
  if (ip === null) return TC_ACT_OK;
  let sum: u32 = 0;
  for (let i = 0; i < 10; i++) sum = (sum + ip.w[i]) >>> 0;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  const ok = sum === 0xffff;
  const c = verdicts.lookup(ok ? 0 : 1);
  if (c !== null) c.value = (c.value + 1) >>> 0;
  return ok ? TC_ACT_OK : TC_ACT_SHOT;
}
