// AES-GCM from one ecb(aes) call + table GHASH (runtime/esp/gcm.ts): the McGrew–Viega GCM spec
// test cases 1–18 as known answers, then random cross-checks against node:crypto's aes-*-gcm
// (OpenSSL) and @noble/ciphers' gcm.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { gcm as nobleGcm } from '@noble/ciphers/aes.js';
import { describe, expect, it } from 'vitest';
import { constantTimeEqual, gcmCounterBlocks, gcmKey, gcmOpen, gcmSeal, type GcmKey } from '../runtime/esp/gcm.ts';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// "The Galois/Counter Mode of Operation (GCM)", McGrew and Viega, revised spec, Appendix B.
const K1 = 'feffe9928665731c6d6a8f9467308308';
const P60 = 'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39';
const P64 = P60 + '1aafd255';
const A20 = 'feedfacedeadbeeffeedfacedeadbeefabaddad2';
const IV96 = 'cafebabefacedbaddecaf888';
const IV64 = 'cafebabefacedbad';
const IV480 = '9313225df88406e555909c5aff5269aa6a7a9538534f7da1e4c303d2a318a728c3c0c95156809539fcf0e2429a6b525416aedbf5a0de6a57a637b39b';
const Z = (bytes: number): string => '00'.repeat(bytes);

interface Vector {
  n: number;
  key: string;
  iv: string;
  pt: string;
  aad: string;
  ct: string;
  tag: string;
}
const vectors: Vector[] = [
  { n: 1, key: Z(16), iv: Z(12), pt: '', aad: '', ct: '', tag: '58e2fccefa7e3061367f1d57a4e7455a' },
  { n: 2, key: Z(16), iv: Z(12), pt: Z(16), aad: '', ct: '0388dace60b6a392f328c2b971b2fe78', tag: 'ab6e47d42cec13bdf53a67b21257bddf' },
  { n: 3, key: K1, iv: IV96, pt: P64, aad: '', ct: '42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985', tag: '4d5c2af327cd64a62cf35abd2ba6fab4' },
  { n: 4, key: K1, iv: IV96, pt: P60, aad: A20, ct: '42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091', tag: '5bc94fbc3221a5db94fae95ae7121a47' },
  { n: 5, key: K1, iv: IV64, pt: P60, aad: A20, ct: '61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c742373806900e49f24b22b097544d4896b424989b5e1ebac0f07c23f4598', tag: '3612d2e79e3b0785561be14aaca2fccb' },
  { n: 6, key: K1, iv: IV480, pt: P60, aad: A20, ct: '8ce24998625615b603a033aca13fb894be9112a5c3a211a8ba262a3cca7e2ca701e4a9a4fba43c90ccdcb281d48c7c6fd62875d2aca417034c34aee5', tag: '619cc5aefffe0bfa462af43c1699d050' },
  { n: 7, key: Z(24), iv: Z(12), pt: '', aad: '', ct: '', tag: 'cd33b28ac773f74ba00ed1f312572435' },
  { n: 8, key: Z(24), iv: Z(12), pt: Z(16), aad: '', ct: '98e7247c07f0fe411c267e4384b0f600', tag: '2ff58d80033927ab8ef4d4587514f0fb' },
  { n: 9, key: K1 + 'feffe9928665731c', iv: IV96, pt: P64, aad: '', ct: '3980ca0b3c00e841eb06fac4872a2757859e1ceaa6efd984628593b40ca1e19c7d773d00c144c525ac619d18c84a3f4718e2448b2fe324d9ccda2710acade256', tag: '9924a7c8587336bfb118024db8674a14' },
  { n: 10, key: K1 + 'feffe9928665731c', iv: IV96, pt: P60, aad: A20, ct: '3980ca0b3c00e841eb06fac4872a2757859e1ceaa6efd984628593b40ca1e19c7d773d00c144c525ac619d18c84a3f4718e2448b2fe324d9ccda2710', tag: '2519498e80f1478f37ba55bd6d27618c' },
  { n: 11, key: K1 + 'feffe9928665731c', iv: IV64, pt: P60, aad: A20, ct: '0f10f599ae14a154ed24b36e25324db8c566632ef2bbb34f8347280fc4507057fddc29df9a471f75c66541d4d4dad1c9e93a19a58e8b473fa0f062f7', tag: '65dcc57fcf623a24094fcca40d3533f8' },
  { n: 12, key: K1 + 'feffe9928665731c', iv: IV480, pt: P60, aad: A20, ct: 'd27e88681ce3243c4830165a8fdcf9ff1de9a1d8e6b447ef6ef7b79828666e4581e79012af34ddd9e2f037589b292db3e67c036745fa22e7e9b7373b', tag: 'dcf566ff291c25bbb8568fc3d376a6d9' },
  { n: 13, key: Z(32), iv: Z(12), pt: '', aad: '', ct: '', tag: '530f8afbc74536b9a963b4f1c4cb738b' },
  { n: 14, key: Z(32), iv: Z(12), pt: Z(16), aad: '', ct: 'cea7403d4d606b6e074ec5d3baf39d18', tag: 'd0d1c8a799996bf0265b98b5d48ab919' },
  { n: 15, key: K1 + K1, iv: IV96, pt: P64, aad: '', ct: '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad', tag: 'b094dac5d93471bdec1a502270e3cc6c' },
  { n: 16, key: K1 + K1, iv: IV96, pt: P60, aad: A20, ct: '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662', tag: '76fc6ece0f4e1768cddf8853bb2d551b' },
  { n: 17, key: K1 + K1, iv: IV64, pt: P60, aad: A20, ct: 'c3762df1ca787d32ae47c13bf19844cbaf1ae14d0b976afac52ff7d79bba9de0feb582d33934a4f0954cc2363bc73f7862ac430e64abe499f47c9b1f', tag: '3a337dbf46a792c45e454913fe2ea8f2' },
  { n: 18, key: K1 + K1, iv: IV480, pt: P60, aad: A20, ct: '5a8def2f0c9e53f1f75d7853659e2a20eeb2b22aafde6419a058ab4f6f746bf40fc0c3b780f244452da3ebf1c5d82cdea2418997200ef82e44ae7e3f', tag: 'a44a8266ee1c8eb0c8b5d4cf5ae9f19a' },
];

/** Wraps a GcmKey to count ecb(aes) calls and record what they were given. */
function counting(key: GcmKey): { key: GcmKey; calls: Uint8Array[] } {
  const calls: Uint8Array[] = [];
  return {
    calls,
    key: {
      keyLength: key.keyLength,
      table: key.table,
      ecb: (blocks) => {
        calls.push(Uint8Array.from(blocks));
        return key.ecb(blocks);
      },
    },
  };
}

describe('AES-GCM known answers: GCM spec test cases 1–18 (AES-128/192/256, 96/64/480-bit IVs, with and without AAD)', () => {
  it.each(vectors.map((v) => [v.n, v] as const))('test case %i', (_n, v) => {
    const key = gcmKey(hex(v.key));
    const sealed = gcmSeal(key, hex(v.iv), hex(v.aad), hex(v.pt));
    expect(toHex(sealed.ciphertext)).toBe(v.ct);
    expect(toHex(sealed.tag)).toBe(v.tag);
    expect(toHex(gcmOpen(key, hex(v.iv), hex(v.aad), hex(v.ct), hex(v.tag)) ?? hex('dead'))).toBe(v.pt);
    // Every bit of the tag, and the AAD, is covered.
    for (let bit = 0; bit < 128; bit += 9) {
      const t = hex(v.tag);
      t[bit >> 3] ^= 1 << (bit & 7);
      expect(gcmOpen(key, hex(v.iv), hex(v.aad), hex(v.ct), t), `tag bit ${bit}`).toBeNull();
    }
    if (v.ct) {
      const c = hex(v.ct);
      c[c.length - 1] ^= 0x80;
      expect(gcmOpen(key, hex(v.iv), hex(v.aad), c, hex(v.tag))).toBeNull();
    }
    expect(gcmOpen(key, hex(v.iv), hex(v.aad + '00'), hex(v.ct), hex(v.tag))).toBeNull();
  });
});

describe('the engine shape: one ecb(aes) call per message', () => {
  it('encrypts J0, inc32(J0) … incₙ(J0) in a single call; block 0 masks the tag', () => {
    const v = vectors[3]; // test case 4: 60 bytes → 4 data blocks
    const { key, calls } = counting(gcmKey(hex(v.key)));
    const sealed = gcmSeal(key, hex(v.iv), hex(v.aad), hex(v.pt));
    expect(toHex(sealed.tag)).toBe(v.tag);
    expect(calls.length).toBe(1);
    expect(calls[0].length).toBe(16 * 5);
    for (let i = 0; i < 5; i++) expect(toHex(calls[0].subarray(16 * i, 16 * i + 16))).toBe(IV96 + (i + 1).toString(16).padStart(8, '0'));
    calls.length = 0;
    gcmOpen(key, hex(v.iv), hex(v.aad), hex(v.ct), hex(v.tag));
    expect(calls.length).toBe(1);
  });

  it('inc32 wraps the low 32 bits only (SP 800-38D §6.2)', () => {
    const blocks = gcmCounterBlocks(hex('0102030405060708090a0b0cfffffffe'), 3);
    expect(toHex(blocks)).toBe(
      ['0102030405060708090a0b0cfffffffe', '0102030405060708090a0b0cffffffff', '0102030405060708090a0b0c00000000', '0102030405060708090a0b0c00000001'].join(''),
    );
  });

  it('refuses tag lengths SP 800-38D does not allow', () => {
    const key = gcmKey(new Uint8Array(16));
    expect(() => gcmSeal(key, new Uint8Array(12), new Uint8Array(), new Uint8Array(), 10)).toThrow(RangeError);
    expect(() => gcmKey(new Uint8Array(20))).toThrow(RangeError);
  });
});

describe('AES-GCM against OpenSSL (node:crypto) and @noble/ciphers, random inputs', () => {
  it('matches for keys of 16/24/32 bytes, |P| 0..300, |A| 0..40, tags of 8/12/16 bytes', () => {
    for (let round = 0; round < 240; round++) {
      const keyLength = [16, 24, 32][round % 3];
      const tagLength = [16, 12, 8][Math.floor(round / 3) % 3];
      const key = new Uint8Array(randomBytes(keyLength));
      const iv = new Uint8Array(randomBytes(12));
      const aad = new Uint8Array(randomBytes([0, 8, 12, 40][round % 4]));
      const pt = new Uint8Array(randomBytes((round * 37) % 301));
      const ctx = `round ${round}: AES-${keyLength * 8}, |P| ${pt.length}, |A| ${aad.length}, tag ${tagLength}`;
      const ours = gcmSeal(gcmKey(key), iv, aad, pt, tagLength);

      const c = createCipheriv(`aes-${keyLength * 8}-gcm` as 'aes-128-gcm', key, iv, { authTagLength: tagLength });
      c.setAAD(aad);
      const ct = Buffer.concat([c.update(pt), c.final()]);
      expect(toHex(ours.ciphertext), ctx).toBe(ct.toString('hex'));
      expect(toHex(ours.tag), ctx).toBe(c.getAuthTag().toString('hex'));

      if (tagLength === 16) expect(toHex(new Uint8Array([...ours.ciphertext, ...ours.tag])), ctx).toBe(toHex(nobleGcm(key, iv, aad).encrypt(pt)));

      // OpenSSL's output opens with ours, and ours opens with OpenSSL.
      expect(gcmOpen(gcmKey(key), iv, aad, new Uint8Array(ct), new Uint8Array(c.getAuthTag())), ctx).toEqual(pt);
      const d = createDecipheriv(`aes-${keyLength * 8}-gcm` as 'aes-128-gcm', key, iv, { authTagLength: tagLength });
      d.setAAD(aad);
      d.setAuthTag(ours.tag);
      expect(toHex(Buffer.concat([d.update(ours.ciphertext), d.final()])), ctx).toBe(toHex(pt));
    }
  });
});

describe('constantTimeEqual', () => {
  it('is equality, for any position of the difference and for different lengths', () => {
    const a = new Uint8Array(randomBytes(16));
    expect(constantTimeEqual(a, Uint8Array.from(a))).toBe(true);
    for (let i = 0; i < 16; i++) {
      const b = Uint8Array.from(a);
      b[i] ^= 1;
      expect(constantTimeEqual(a, b)).toBe(false);
    }
    expect(constantTimeEqual(a, a.subarray(0, 12))).toBe(false);
    expect(constantTimeEqual(new Uint8Array(), new Uint8Array())).toBe(true);
  });
});
