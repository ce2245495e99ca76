// AES-GCM (NIST SP 800-38D) built the way the BPF engine builds it: AES only as a bare ECB block
// function (the bpf_crypto `ecb(aes)` kfunc, Linux ≥ 6.10, has no gcm), counter mode and the tag
// assembled around it, GHASH from the 8-bit tables of ghash.ts.
//
// Per message, exactly one ECB call encrypts all counter blocks at once:
//
//   block 0      : J0                    → E_K(J0), masks the tag
//   block 1 … n  : inc32(J0) … incₙ(J0)  → keystream for the n = ⌈len(P)/16⌉ data blocks
//
// With the 96-bit IVs ESP uses, J0 = IV ‖ 0x00000001, so block i is simply IV ‖ be32(i + 1): the
// engine writes the blocks into its per-CPU scratch buffer, calls the kfunc once over
// 16·(n + 1) bytes, then XORs and hashes. Other IV lengths (only for the spec's test cases) derive
// J0 through GHASH as §7.1 step 2 says; inc32 wraps modulo 2³² as §6.2 says.
import { createCipheriv, type Cipher } from 'node:crypto';
import { inspect } from 'node:util';
import { aesEcbName, ghash, ghashDigest, ghashInit, ghashLengths, ghashTableForKey, ghashUpdate } from './ghash.ts';

/**
 * One AES key prepared for GCM: the ECB block function and the GHASH table M. M is key material
 * (it is H = E_K(0¹²⁸) in another form, and H is what lets an attacker forge tags), so it never
 * prints, and the engine's map holding it must be as private as the key.
 */
export interface GcmKey {
  readonly keyLength: 16 | 24 | 32;
  /** M[256] of ghash.ts (512 u64 lanes); ghashTableBytes() gives the engine's map value. */
  readonly table: BigUint64Array;
  /** E_K over whole 16-byte blocks, like the ecb(aes) kfunc: one call, any number of blocks. */
  ecb(blocks: Uint8Array): Uint8Array;
}

export function gcmKey(key: Uint8Array): GcmKey {
  // ECB with padding off never buffers across update() calls, so one Cipher object serves every
  // message; the key bytes live only inside it and the table.
  const cipher: Cipher = createCipheriv(aesEcbName(key.length), key, null);
  cipher.setAutoPadding(false);
  const table = ghashTableForKey(key);
  return {
    keyLength: key.length as 16 | 24 | 32,
    table,
    ecb(blocks: Uint8Array): Uint8Array {
      if (blocks.length % 16 !== 0) throw new RangeError('ecb(aes) takes whole 16-byte blocks');
      return new Uint8Array(cipher.update(blocks));
    },
    toJSON: () => `GcmKey(AES-${key.length * 8}, [redacted])`,
    [inspect.custom]: () => `GcmKey(AES-${key.length * 8}, [redacted])`,
  } as GcmKey;
}

/** J0 (SP 800-38D §7.1 step 2). */
export function gcmJ0(key: GcmKey, iv: Uint8Array): Uint8Array {
  if (iv.length === 0) throw new RangeError('GCM IV must not be empty');
  if (iv.length === 12) {
    const j0 = new Uint8Array(16);
    j0.set(iv);
    j0[15] = 1;
    return j0;
  }
  const y = ghashInit();
  ghashUpdate(key.table, y, iv, 0, iv.length);
  ghashLengths(key.table, y, 0, iv.length);
  return ghashDigest(y);
}

/** The n + 1 counter blocks J0, inc32(J0), …, inc32ⁿ(J0), back to back. */
export function gcmCounterBlocks(j0: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(16 * (n + 1));
  const view = new DataView(out.buffer);
  const c0 = new DataView(j0.buffer, j0.byteOffset, 16).getUint32(12, false);
  for (let i = 0; i <= n; i++) {
    out.set(j0.subarray(0, 12), 16 * i);
    view.setUint32(16 * i + 12, (c0 + i) >>> 0, false); // inc32: the low 32 bits wrap
  }
  return out;
}

/**
 * Counter-mode pass and tag in one go: returns data ⊕ keystream and the full 16-byte tag
 * E_K(J0) ⊕ GHASH(A, C). `ciphertextIsInput` says which side of the XOR GHASH covers.
 */
function gcmCore(key: GcmKey, iv: Uint8Array, aad: Uint8Array, data: Uint8Array, ciphertextIsInput: boolean): { out: Uint8Array; tag: Uint8Array } {
  // 2³² − 2 blocks is the SP 800-38D plaintext limit; ESP never comes close.
  const n = Math.ceil(data.length / 16);
  if (n > 0xfffffffe) throw new RangeError('GCM message too long');
  const ks = key.ecb(gcmCounterBlocks(gcmJ0(key, iv), n));
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ ks[16 + i];
  const s = ghash(key.table, aad, ciphertextIsInput ? data : out);
  for (let i = 0; i < 16; i++) s[i] ^= ks[i];
  return { out, tag: s };
}

export function gcmSeal(key: GcmKey, iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, tagLength = 16): { ciphertext: Uint8Array; tag: Uint8Array } {
  checkTagLength(tagLength);
  const { out, tag } = gcmCore(key, iv, aad, plaintext, false);
  return { ciphertext: out, tag: tag.slice(0, tagLength) };
}

/** Plaintext, or null when the tag does not verify (the tag is compared in constant time). */
export function gcmOpen(key: GcmKey, iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Uint8Array | null {
  checkTagLength(tag.length);
  const { out, tag: expected } = gcmCore(key, iv, aad, ciphertext, true);
  if (!constantTimeEqual(expected.subarray(0, tag.length), tag)) {
    out.fill(0); // release nothing decrypted under a forged tag
    return null;
  }
  return out;
}

/**
 * Equality in time independent of where the bytes differ: OR-accumulate every XOR, test once.
 * The same loop is what the BPF engine runs over the ICV (no early exit, no data-dependent branch).
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false; // lengths are public (the ICV length is SA state)
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function checkTagLength(t: number): void {
  // SP 800-38D §5.2.1.2: 128, 120, 112, 104, 96 bits, and 64/32 for special uses; ESP uses 8/12/16.
  if (![4, 8, 12, 13, 14, 15, 16].includes(t)) throw new RangeError(`GCM tag length ${t} not allowed`);
}
