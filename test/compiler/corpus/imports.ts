// Imports across files (gap G1): maps, descriptors, constants and a rodata table declared in
// lib/sa.ts, functions from lib/mix.ts (which imports lib/sa.ts too), inlined and called.
import { type i32, TC_ACT_OK, TcContext, array, local, struct, u8 } from '../../../compiler/dsl/index.ts';
import { EncryptSa, SPI_BASE, SaKey, bump, encrypt_sa, stats } from './lib/sa.ts';
import { mixBlock, sbox } from './lib/mix.ts';

const Hdr = struct({ b: array(u8, 8) }, { name: 'hdr8' });
export type Sa = typeof EncryptSa;

export function imported(skb: TcContext): i32 {
  const h = skb.header(Hdr, 6);
  if (h === null) return TC_ACT_OK;
  const key = local(SaKey, { kind: h.b[0] & 1, sel: h.b[1] & 3 });
  if (encrypt_sa.lookup(key) === null) encrypt_sa.update(key, { seq: 0n, packets: 0n, spi: SPI_BASE + h.b[2], keyIndex: sbox(h.b[3]) });
  const sa = encrypt_sa.lookup(key);
  if (sa === null) return TC_ACT_OK;
  sa.seq = BigInt.asUintN(64, sa.seq + 1n);
  sa.packets = BigInt.asUintN(64, sa.packets + BigInt(skb.len));
  bump(0);
  const r = mixBlock(sa, skb.len);
  stats.update(2, BigInt(r));
  encrypt_sa.update({ kind: 2, sel: SPI_BASE & 7 }, { seq: 1n, packets: 2n, spi: 3, keyIndex: sbox(r) });
  return (r & 1) === 0 ? TC_ACT_OK : 2;
}
