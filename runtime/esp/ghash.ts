// GHASH (NIST SP 800-38D §6.4) with Shoup's 8-bit table method, in the shape the BPF engine uses.
//
// Two passes, split the way the engine splits them:
//   1. Userspace, once per key (`ghashTableForKey`): H = E_K(0¹²⁸), then the 4 KiB table M of the
//      256 products b·H, where byte b is read as a degree-7 polynomial in GCM's bit order. M is
//      stored with the SA (`ghashTableBytes` gives the map-value bytes).
//   2. Datapath, per 16-byte block (`ghashMulH`): Y ← (Y ⊕ X)·H by Horner's rule over the 16 bytes
//      of Y, one table lookup in M and one in the shared 512-byte reduction table R per byte.
//
// The datapath half uses only what the DSL compiles to BPF: u64 lanes (bigint, as the DSL's u64),
// byte loops with constant trip counts, shifts, XORs and array loads. It never relies on bigint
// growing past 64 bits: every left shift is applied to a value masked to the bits that survive,
// so the BPF transcription needs no masks at all.
//
// GCM bit order: bit 0 of a block is the most significant bit of byte 0 and is the coefficient
// of x⁰; multiplying by x is a right shift of the 128-bit big-endian integer, and the bit that
// falls off (x¹²⁸) is reduced with x¹²⁸ = x⁷ + x² + x + 1, i.e. XOR 0xE1 into the top byte.
//
// A 128-bit value is held as two u64 lanes:
//
//   hi = bytes 0..7  read as a big-endian integer (coefficients x⁰..x⁶³,  x⁰ = bit 63 of hi)
//   lo = bytes 8..15 read as a big-endian integer (coefficients x⁶⁴..x¹²⁷, x¹²⁷ = bit 0 of lo)
//
// Table layout the BPF GHASH reads (one map value per key, 4096 bytes, `ghashTableBytes`):
//
//   offset 16·b + 0 : u64 hi of M[b], little-endian (host order on every BPF target we load on)
//   offset 16·b + 8 : u64 lo of M[b], little-endian
//   for b = 0..255, M[b] = b(x)·H,  b(x) = Σ bit(7−j) of b · xʲ  (so M[0x80] = H, M[0x01] = H·x⁷)
//
// Reduction table (shared by all keys, 512 bytes, .rodata, `ghashReductionBytes`):
//
//   offset 2·r : u16 R[r], little-endian; R[r] is the top 16 bits (x⁰..x¹⁵, x⁰ = bit 15) of the
//   reduction of r's bits shifted past x¹²⁷ by a multiplication by x⁸. R[0x80] = 0xE100,
//   R[0x01] = 0x01C2. The datapath XORs (u64)R[r] << 48 into hi.
import { createCipheriv } from 'node:crypto';

/** Bytes of one key's table M (256 entries × 16 bytes). */
export const GHASH_TABLE_BYTES = 4096;
/** Bytes of the shared reduction table R (256 entries × u16). */
export const GHASH_REDUCTION_BYTES = 512;

/** The GHASH accumulator Y as two u64 lanes (see the lane layout above). */
export interface GhashState {
  hi: bigint;
  lo: bigint;
}

/**
 * R[r] for r = 0..255. Bit k of r (k = 0 is the LSB) is the coefficient of x^(127−k) in the low
 * byte of lo; after ·x⁸ it is x^(135−k) = x¹²⁸·x^(7−k) ≡ (x⁷+x²+x+1)·x^(7−k), which is 0xE100 in
 * the 16-bit top-of-block form shifted right by 7−k. Degree ≤ 14, so 16 bits always suffice.
 */
export const GHASH_REDUCTION: Uint16Array = (() => {
  const r = new Uint16Array(256);
  for (let b = 0; b < 256; b++) {
    let v = 0;
    for (let k = 0; k < 8; k++) if ((b >> k) & 1) v ^= 0xe100 >> (7 - k);
    r[b] = v;
  }
  return r;
})();

/** R as the 512 bytes the BPF object carries in .rodata (u16 little-endian). */
export function ghashReductionBytes(): Uint8Array {
  const out = new Uint8Array(GHASH_REDUCTION_BYTES);
  const view = new DataView(out.buffer);
  for (let r = 0; r < 256; r++) view.setUint16(2 * r, GHASH_REDUCTION[r], true);
  return out;
}

function readBe64(bytes: Uint8Array, off: number): bigint {
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(bytes[off + i]);
  return v;
}

/** H = E_K(0¹²⁸) with AES-128/192/256 (the hash subkey, SP 800-38D §7.1 step 1). */
export function hashSubkey(key: Uint8Array): Uint8Array {
  const cipher = createCipheriv(aesEcbName(key.length), key, null);
  cipher.setAutoPadding(false);
  const h = cipher.update(new Uint8Array(16));
  cipher.final();
  return new Uint8Array(h.buffer, h.byteOffset, h.length);
}

export function aesEcbName(keyLength: number): string {
  if (keyLength !== 16 && keyLength !== 24 && keyLength !== 32) throw new RangeError(`AES key must be 16, 24 or 32 bytes, got ${keyLength}`);
  return `aes-${keyLength * 8}-ecb`;
}

/**
 * Userspace precomputation: M[b] = b(x)·H as 512 u64 lanes (hi of entry b at 2b, lo at 2b+1).
 * M[0x80] = H; each lower power of two is the previous one times x; every other entry is the XOR
 * of its bits' entries (multiplication distributes over XOR).
 */
export function ghashTableFromH(h: Uint8Array): BigUint64Array {
  if (h.length !== 16) throw new RangeError('H must be 16 bytes');
  const m = new BigUint64Array(512);
  let hi = readBe64(h, 0);
  let lo = readBe64(h, 8);
  for (let p = 0x80; p >= 1; p >>= 1) {
    m[2 * p] = hi;
    m[2 * p + 1] = lo;
    // ·x: shift right by one; the x¹²⁷ bit that falls off becomes x¹²⁸ ≡ 0xE1 ‖ 0¹²⁰.
    const carry = lo & 1n;
    lo = (lo >> 1n) | ((hi & 1n) << 63n);
    hi = (hi >> 1n) ^ (carry ? 0xe1n << 56n : 0n);
  }
  for (let p = 2; p < 256; p <<= 1) {
    for (let j = 1; j < p; j++) {
      m[2 * (p + j)] = m[2 * p] ^ m[2 * j];
      m[2 * (p + j) + 1] = m[2 * p + 1] ^ m[2 * j + 1];
    }
  }
  return m;
}

/** The per-key table for an AES key (computes H = E_K(0¹²⁸) first). */
export function ghashTableForKey(key: Uint8Array): BigUint64Array {
  const h = hashSubkey(key);
  try {
    return ghashTableFromH(h);
  } finally {
    h.fill(0);
  }
}

/** The table as the 4096-byte map value the BPF GHASH reads (layout in the file header). */
export function ghashTableBytes(m: BigUint64Array): Uint8Array {
  if (m.length !== 512) throw new RangeError('a GHASH table has 512 u64 lanes');
  const out = new Uint8Array(GHASH_TABLE_BYTES);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 512; i++) view.setBigUint64(8 * i, m[i], true);
  return out;
}

/** Inverse of ghashTableBytes (to read a table back out of a map or a VM memory dump). */
export function ghashTableFromBytes(bytes: Uint8Array): BigUint64Array {
  if (bytes.length !== GHASH_TABLE_BYTES) throw new RangeError(`a GHASH table is ${GHASH_TABLE_BYTES} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const m = new BigUint64Array(512);
  for (let i = 0; i < 512; i++) m[i] = view.getBigUint64(8 * i, true);
  return m;
}

export function ghashInit(): GhashState {
  return { hi: 0n, lo: 0n };
}

/**
 * Datapath: Y ← Y·H (Shoup's 8-bit method). Horner's rule from the last byte of Y (x¹²⁰..x¹²⁷, the
 * low byte of lo) to the first (x⁰..x⁷, the high byte of hi):  Z ← Z·x⁸ ⊕ M[byte].
 * Z·x⁸ shifts the 128-bit Z right by 8; the byte shifted out of lo is reduced through R into the
 * top 16 bits of hi. The first round shifts Z = 0, which costs one shift but keeps the loop body
 * uniform (one body, 16 trips: easy for the verifier, easy to diff).
 */
export function ghashMulH(m: BigUint64Array, y: GhashState): void {
  let zh = 0n;
  let zl = 0n;
  for (let i = 0; i < 16; i++) {
    // byte 15−i of Y: bytes 15..8 live in lo (low byte first), bytes 7..0 in hi.
    const lane = i < 8 ? y.lo : y.hi;
    const b = Number((lane >> BigInt(8 * (i & 7))) & 0xffn);
    const rem = Number(zl & 0xffn);
    zl = (zl >> 8n) | ((zh & 0xffn) << 56n);
    zh = (zh >> 8n) ^ (BigInt(GHASH_REDUCTION[rem]) << 48n);
    zh ^= m[2 * b];
    zl ^= m[2 * b + 1];
  }
  y.hi = zh;
  y.lo = zl;
}

/**
 * Absorbs data[off, off+len) as 16-byte blocks, the last one zero-padded (SP 800-38D pads A and C
 * separately, so call once for A and once for C). Each block: Y ← (Y ⊕ X)·H.
 */
export function ghashUpdate(m: BigUint64Array, y: GhashState, data: Uint8Array, off: number, len: number): void {
  if (off < 0 || len < 0 || off + len > data.length) throw new RangeError('ghashUpdate: range outside data');
  for (let blk = 0; blk < len; blk += 16) {
    let xh = 0n;
    let xl = 0n;
    for (let i = 0; i < 8; i++) {
      const a = blk + i < len ? data[off + blk + i] : 0;
      const b = blk + 8 + i < len ? data[off + blk + 8 + i] : 0;
      xh = (xh << 8n) | BigInt(a); // at most 8 bytes in: never exceeds 64 bits
      xl = (xl << 8n) | BigInt(b);
    }
    y.hi ^= xh;
    y.lo ^= xl;
    ghashMulH(m, y);
  }
}

/** Absorbs the final block [len(A)]₆₄ ‖ [len(C)]₆₄, lengths in bits. */
export function ghashLengths(m: BigUint64Array, y: GhashState, aadBytes: number, ctBytes: number): void {
  y.hi ^= BigInt(aadBytes) * 8n;
  y.lo ^= BigInt(ctBytes) * 8n;
  ghashMulH(m, y);
}

/** Y as 16 bytes (big-endian lanes, GCM byte order). */
export function ghashDigest(y: GhashState): Uint8Array {
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, y.hi, false);
  view.setBigUint64(8, y.lo, false);
  return out;
}

/** GHASH_H(A ‖ 0^v ‖ C ‖ 0^u ‖ [len(A)]₆₄ ‖ [len(C)]₆₄) — the S of SP 800-38D §7.1 step 5. */
export function ghash(m: BigUint64Array, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const y = ghashInit();
  ghashUpdate(m, y, aad, 0, aad.length);
  ghashUpdate(m, y, ciphertext, 0, ciphertext.length);
  ghashLengths(m, y, aad.length, ciphertext.length);
  return ghashDigest(y);
}
