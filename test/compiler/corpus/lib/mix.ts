// A library of functions (no programs) that itself imports ./sa.ts: an inlined function and a
// @noinline one (a BPF-to-BPF call) that reaches a map and a rodata table of the other file.
import { type Infer, type u8, type u32 } from '../../../../compiler/dsl/index.ts';
import { EncryptSa, SBOX, bump } from './sa.ts';

export function sbox(x: u32): u8 {
  return SBOX[x & 15]!;
}

/** @noinline */
export function mixBlock(sa: Infer<typeof EncryptSa>, x: u32): u32 {
  bump(1);
  let h: u32 = (sa.spi ^ Number(sa.seq & 0xffffn)) >>> 0;
  for (let i = 0; i < 4; i++) h = (Math.imul(h, 0x9e3779b1) ^ sbox((x >>> (i * 8)) & 0xff)) >>> 0;
  return h;
}
