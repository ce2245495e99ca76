// GHASH with Shoup's 8-bit tables (runtime/esp/ghash.ts) against the GCM spec's GHASH values, a
// bit-serial reference written straight from SP 800-38D Algorithm 1, and @noble/ciphers' GHASH.
import { randomBytes } from 'node:crypto';
import { ghash as nobleGhash } from '@noble/ciphers/_polyval.js';
import { ecb } from '@noble/ciphers/aes.js';
import { describe, expect, it } from 'vitest';
import {
  GHASH_REDUCTION,
  GHASH_TABLE_BYTES,
  ghash,
  ghashDigest,
  ghashInit,
  ghashLengths,
  ghashReductionBytes,
  ghashTableBytes,
  ghashTableForKey,
  ghashTableFromBytes,
  ghashTableFromH,
  ghashUpdate,
  hashSubkey,
} from '../runtime/esp/ghash.ts';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** SP 800-38D §6.3 Algorithm 1, bit by bit: the slowest, most literal X·Y in GF(2¹²⁸). */
function gfMulBitSerial(x: Uint8Array, y: Uint8Array): Uint8Array {
  const z = new Uint8Array(16);
  const v = Uint8Array.from(y);
  for (let i = 0; i < 128; i++) {
    if ((x[i >> 3] >> (7 - (i & 7))) & 1) for (let j = 0; j < 16; j++) z[j] ^= v[j];
    const lsb = v[15] & 1;
    for (let j = 15; j > 0; j--) v[j] = (v[j] >> 1) | ((v[j - 1] & 1) << 7);
    v[0] >>= 1;
    if (lsb) v[0] ^= 0xe1;
  }
  return z;
}

/** GHASH from the bit-serial multiply (§6.4), over A and C padded separately plus the length block. */
function ghashBitSerial(h: Uint8Array, aad: Uint8Array, ct: Uint8Array): Uint8Array {
  const pad = (b: Uint8Array): Uint8Array => {
    const out = new Uint8Array(Math.ceil(b.length / 16) * 16);
    out.set(b);
    return out;
  };
  const lens = new Uint8Array(16);
  new DataView(lens.buffer).setBigUint64(0, BigInt(aad.length) * 8n, false);
  new DataView(lens.buffer).setBigUint64(8, BigInt(ct.length) * 8n, false);
  const all = new Uint8Array([...pad(aad), ...pad(ct), ...lens]);
  let y: Uint8Array = new Uint8Array(16);
  for (let off = 0; off < all.length; off += 16) {
    for (let j = 0; j < 16; j++) y[j] ^= all[off + j];
    y = gfMulBitSerial(y, h);
  }
  return y;
}

function lengthBlock(aadLength: number, ctLength: number): Uint8Array {
  const b = new Uint8Array(16);
  new DataView(b.buffer).setBigUint64(0, BigInt(aadLength) * 8n, false);
  new DataView(b.buffer).setBigUint64(8, BigInt(ctLength) * 8n, false);
  return b;
}

describe('GHASH reduction table R (shared, .rodata)', () => {
  it('holds the classic Shoup values and is linear in its index', () => {
    expect(GHASH_REDUCTION[0]).toBe(0);
    expect(GHASH_REDUCTION[0x80]).toBe(0xe100); // x¹²⁸ ≡ x⁷ + x² + x + 1
    expect(GHASH_REDUCTION[0x01]).toBe(0x01c2); // x¹³⁵ ≡ (x⁷ + x² + x + 1)·x⁷
    expect(GHASH_REDUCTION[0xff]).toBe(0xe100 ^ 0x7080 ^ 0x3840 ^ 0x1c20 ^ 0x0e10 ^ 0x0708 ^ 0x0384 ^ 0x01c2);
    for (let a = 0; a < 256; a++) for (const b of [1, 2, 0x40, 0x80, 0x5a]) expect(GHASH_REDUCTION[a ^ b]).toBe(GHASH_REDUCTION[a] ^ GHASH_REDUCTION[b]);
  });

  it('serialises to 512 bytes of little-endian u16', () => {
    const bytes = ghashReductionBytes();
    expect(bytes.length).toBe(512);
    expect([bytes[2 * 0x80], bytes[2 * 0x80 + 1]]).toEqual([0x00, 0xe1]);
    expect([bytes[2], bytes[3]]).toEqual([0xc2, 0x01]);
  });
});

describe('GHASH per-key table M (4 KiB map value)', () => {
  it('M[0x80] = H, M[b] = b(x)·H for every b (checked bit-serially), M[0] = 0', () => {
    const h = hex('66e94bd4ef8a2c3b884cfa59ca342b2e');
    const m = ghashTableFromH(h);
    const entry = (b: number): Uint8Array => ghashDigest({ hi: m[2 * b], lo: m[2 * b + 1] });
    expect(toHex(entry(0x80))).toBe(toHex(h));
    expect(toHex(entry(0))).toBe('00'.repeat(16));
    for (let b = 0; b < 256; b++) {
      const poly = new Uint8Array(16);
      poly[0] = b; // byte 0 of a block: its MSB is x⁰, so b read as a block is b(x)
      expect(toHex(entry(b)), `M[${b}]`).toBe(toHex(gfMulBitSerial(poly, h)));
    }
  });

  it('byte layout: entry b at 16·b, hi lane then lo lane, each u64 little-endian', () => {
    const h = hex('b83b533708bf535d0aa6e52980d53b78');
    const bytes = ghashTableBytes(ghashTableFromH(h));
    expect(bytes.length).toBe(GHASH_TABLE_BYTES);
    const e = bytes.subarray(16 * 0x80, 16 * 0x80 + 16);
    expect(toHex(e)).toBe(toHex(h.slice(0, 8).reverse()) + toHex(h.slice(8).reverse()));
    expect(ghashTableFromBytes(bytes)).toEqual(ghashTableFromH(h));
  });

  it('H = E_K(0¹²⁸), agreeing with @noble/ciphers AES (128 and 256)', () => {
    for (const len of [16, 32]) {
      const key = new Uint8Array(randomBytes(len));
      const h = ecb(key, { disablePadding: true }).encrypt(new Uint8Array(16));
      expect(hashSubkey(key)).toEqual(h);
      expect(ghashTableForKey(key)).toEqual(ghashTableFromH(h));
    }
    expect(toHex(hashSubkey(new Uint8Array(16)))).toBe('66e94bd4ef8a2c3b884cfa59ca342b2e'); // GCM spec case 1
  });
});

describe('GHASH known answers (GCM spec test cases 1–5: H, A, C → GHASH(H, A, C))', () => {
  const cases: [string, string, string, string][] = [
    ['66e94bd4ef8a2c3b884cfa59ca342b2e', '', '', '00000000000000000000000000000000'],
    ['66e94bd4ef8a2c3b884cfa59ca342b2e', '', '0388dace60b6a392f328c2b971b2fe78', 'f38cbb1ad69223dcc3457ae5b6b0f885'],
    [
      'b83b533708bf535d0aa6e52980d53b78',
      '',
      '42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985',
      '7f1b32b81b820d02614f8895ac1d4eac',
    ],
    [
      'b83b533708bf535d0aa6e52980d53b78',
      'feedfacedeadbeeffeedfacedeadbeefabaddad2',
      '42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091',
      '698e57f70e6ecc7fd9463b7260a9ae5f',
    ],
    [
      'b83b533708bf535d0aa6e52980d53b78',
      'feedfacedeadbeeffeedfacedeadbeefabaddad2',
      '61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c742373806900e49f24b22b097544d4896b424989b5e1ebac0f07c23f4598',
      'df586bb4c249b92cb6922877e444d37b',
    ],
  ];
  it.each(cases.map((c, i) => [i + 1, ...c]))('test case %i', (_n, h, a, c, expected) => {
    expect(toHex(ghash(ghashTableFromH(hex(h as string)), hex(a as string), hex(c as string)))).toBe(expected);
    expect(toHex(ghashBitSerial(hex(h as string), hex(a as string), hex(c as string)))).toBe(expected); // the reference itself
  });
});

describe('GHASH against independent implementations, random inputs', () => {
  it('equals the bit-serial reference and @noble/ciphers for A, C of 0..80 bytes', () => {
    for (let round = 0; round < 200; round++) {
      const h = new Uint8Array(randomBytes(16));
      const aad = new Uint8Array(randomBytes(round % 21));
      const ct = new Uint8Array(randomBytes((round * 7) % 81));
      const got = ghash(ghashTableFromH(h), aad, ct);
      const ctx = `round ${round}: |A| = ${aad.length}, |C| = ${ct.length}`;
      expect(toHex(got), ctx).toBe(toHex(ghashBitSerial(h, aad, ct)));
      const pad = (b: Uint8Array): number[] => [...b, ...new Array((16 - (b.length % 16)) % 16).fill(0)];
      const noble = nobleGhash(new Uint8Array([...pad(aad), ...pad(ct), ...lengthBlock(aad.length, ct.length)]), h);
      expect(toHex(got), ctx).toBe(toHex(noble));
    }
  });

  it('edge keys and blocks: H = 1 (x⁰), H = x¹²⁷, all-ones inputs', () => {
    const hs = ['80000000000000000000000000000000', '00000000000000000000000000000001', 'ff'.repeat(16)];
    for (const hh of hs) {
      const h = hex(hh);
      for (const data of ['ff'.repeat(16), '00'.repeat(15) + '01', '80' + '00'.repeat(15), 'ff'.repeat(33)]) {
        expect(toHex(ghash(ghashTableFromH(h), new Uint8Array(), hex(data))), `H ${hh}, C ${data}`).toBe(toHex(ghashBitSerial(h, new Uint8Array(), hex(data))));
      }
    }
  });

  it('streaming: A and C each padded separately, however the caller splits its calls', () => {
    const h = new Uint8Array(randomBytes(16));
    const m = ghashTableFromH(h);
    const aad = new Uint8Array(randomBytes(12));
    const ct = new Uint8Array(randomBytes(45));
    const y = ghashInit();
    ghashUpdate(m, y, aad, 0, aad.length);
    ghashUpdate(m, y, ct, 0, 32); // whole blocks first …
    ghashUpdate(m, y, ct, 32, 13); // … then the zero-padded tail
    ghashLengths(m, y, aad.length, ct.length);
    expect(ghashDigest(y)).toEqual(ghash(m, aad, ct));
    expect(() => ghashUpdate(m, y, ct, 40, 6)).toThrow(RangeError);
  });
});
