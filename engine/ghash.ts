// GHASH (NIST SP 800-38D §6.4) in the DSL: Shoup's 8-bit table method, transcribed from the
// datapath half of runtime/esp/ghash.ts (ghashMulH), which is the reference it is diffed against.
//
// Per 16-byte block X:  Y ← (Y ⊕ X)·H, 16 Horner rounds from the last byte of Y to the first:
//
//   b    = byte 15−i of Y           (i < 8: lo >> 8i, else hi >> 8(i−8); & 0xff)
//   rem  = zl & 0xff                (the byte that Z·x⁸ shifts out of the 128-bit value)
//   zl   = zl >> 8 | zh << 56
//   zh   = zh >> 8 ⊕ R[rem] << 48   (reduction of that byte by x¹²⁸ = x⁷ + x² + x + 1)
//   zh  ⊕= M[b].hi ; zl ⊕= M[b].lo
//
// Lanes: hi = block bytes 0..7 as a big-endian u64, lo = bytes 8..15 (GCM bit order: x⁰ is the
// MSB of byte 0). M is the per-key 4096-byte table computed by userspace from H = E_K(0¹²⁸)
// (runtime/esp/ghash.ts ghashTableBytes): entry b at byte 16·b, hi then lo, host order.
//
// R is not loaded from a table here. R[r] = clmul(r, 0xE1) << 1 = r<<1 ⊕ r<<6 ⊕ r<<7 ⊕ r<<8
// (R[0x80] = 0xE100, R[0x01] = 0x01C2; test/engine-ghash.test.ts checks all 256 against
// runtime/esp/ghash.ts GHASH_REDUCTION), so R[rem] << 48 is four shifts of rem. That is the same
// value as the 512-byte .rodata table of runtime/esp/README.md, minus one load whose address
// depends on secret data and minus a global-data map. The M loads remain secret-indexed: that is
// inherent to table GHASH (Linux's gf128mul_4k_lle has the same property); the tables are key
// material and live in a map only the engine can read.
//
// engine/esp.ts imports ghashBlock and the two layouts from here; `ghash_step` below is the test
// program.

import {
  type i32,
  type Infer,
  type u32,
  type u8,
  type u64,
  TC_ACT_OK,
  TC_ACT_SHOT,
  TcContext,
  array,
  arrayMap,
  be16,
  be32,
  struct,
  u64 as U64,
} from '../compiler/dsl/index.ts';

/** One key's Shoup table M: m[2b] = hi of b·H, m[2b+1] = lo (4096 bytes, a map value). */
export const GhashTable = struct({ m: array(U64, 512) }, { name: 'ghash_table' });
export type GhashTable = Infer<typeof GhashTable>;

/** The accumulator Y as two lanes (hi = bytes 0..7 big-endian, lo = bytes 8..15). */
export const GhashState = struct({ hi: U64, lo: U64 }, { name: 'ghash_state' });
export type GhashState = Infer<typeof GhashState>;

/** One Horner round, Z ← Z·x⁸ ⊕ M[b], with Z in memory (`z`): a DSL function returns one value
 *  and Z is two lanes. */
function ghashRound(table: GhashTable, z: GhashState, b: u8): void {
  const zh: u64 = z.hi;
  const zl: u64 = z.lo;
  const rem: u64 = zl & 0xffn;
  z.lo = ((zl >> 8n) | ((zh & 0xffn) << 56n)) ^ table.m[2 * b + 1];
  z.hi = (zh >> 8n) ^ (rem << 49n) ^ (rem << 54n) ^ (rem << 55n) ^ (rem << 56n) ^ table.m[2 * b];
}

/** The lane's byte at bit `shift` (0 = its last byte). Parameters of inlined functions carry
 *  their declared type's range, so the shift is masked to the 0..63 the compiler must see. */
function laneByte(lane: u64, shift: u64): u8 {
  return Number((lane >> (shift & 63n)) & 0xffn);
}

/** Y ← (Y ⊕ (xh ‖ xl))·H: one block absorbed; Y lives in map memory (per-CPU scratch in the
 *  engine). The 16 rounds are written out rather than looped: the compiler does not finish on a
 *  loop nested in the caller's block loop (engine/README.md, gap G2). Round i takes byte 15−i. */
export function ghashBlock(table: GhashTable, y: GhashState, xh: u64, xl: u64): void {
  const yh: u64 = y.hi ^ xh;
  const yl: u64 = y.lo ^ xl;
  y.hi = 0n;
  y.lo = 0n;
  ghashRound(table, y, laneByte(yl, 0n));
  ghashRound(table, y, laneByte(yl, 8n));
  ghashRound(table, y, laneByte(yl, 16n));
  ghashRound(table, y, laneByte(yl, 24n));
  ghashRound(table, y, laneByte(yl, 32n));
  ghashRound(table, y, laneByte(yl, 40n));
  ghashRound(table, y, laneByte(yl, 48n));
  ghashRound(table, y, laneByte(yl, 56n));
  ghashRound(table, y, laneByte(yh, 0n));
  ghashRound(table, y, laneByte(yh, 8n));
  ghashRound(table, y, laneByte(yh, 16n));
  ghashRound(table, y, laneByte(yh, 24n));
  ghashRound(table, y, laneByte(yh, 32n));
  ghashRound(table, y, laneByte(yh, 40n));
  ghashRound(table, y, laneByte(yh, 48n));
  ghashRound(table, y, laneByte(yh, 56n));
}

/** The final GHASH block [len(A)]₆₄ ‖ [len(C)]₆₄, lengths given in bytes. */
export function ghashLengths(table: GhashTable, y: GhashState, aadBytes: u32, ctBytes: u32): void {
  ghashBlock(table, y, BigInt(aadBytes) * 8n, BigInt(ctBytes) * 8n);
}

// ---------------------------------------------------------------------------------------------
// Test program: one GHASH block per run, Y carried between runs in `ghash_out`, so userspace
// drives GHASH_H(A, C) block by block (A and C zero-padded separately, then the length block):
//
//   0      14          16         32
//   | eth  | reset be16 | X (16 B) |     reset ≠ 0: Y ← 0 first;  then Y ← (Y ⊕ X)·H
//
// One block per run rather than a loop over the packet: a loop around ghashBlock does not
// compile yet (engine/README.md, gap G2).

const GhashStep = struct({ eth: array(be16, 7), reset: be16, w: array(be32, 4) }, { name: 'ghash_step' });

/** The per-key table the test program reads (entry 0), filled by the test. */
export const ghash_tables = arrayMap({ value: GhashTable, maxEntries: 1 });
/** Y: hi/lo lanes. */
export const ghash_out = arrayMap({ value: GhashState, maxEntries: 1 });

export function ghash_step(skb: TcContext): i32 {
  const step = skb.header(GhashStep, 0);
  if (step === null) return TC_ACT_SHOT;
  const table = ghash_tables.lookup(0);
  const y = ghash_out.lookup(0);
  if (table === null || y === null) return TC_ACT_SHOT;
  if (step.reset !== 0) {
    y.hi = 0n;
    y.lo = 0n;
  }
  const xh: u64 = (BigInt(step.w[0]) << 32n) | BigInt(step.w[1]);
  const xl: u64 = (BigInt(step.w[2]) << 32n) | BigInt(step.w[3]);
  ghashBlock(table, y, xh, xl);
  return TC_ACT_OK;
}
