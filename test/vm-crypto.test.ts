// bpf_crypto kfuncs in the VM, checked against independent AES: the FIPS-197 known answer and
// node:crypto for CBC (selftests' crypto_sanity does the same against AF_ALG).
import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { assemble } from '../compiler/asm/assembler.ts';
import { bpf_func_id as F, bpf_map_type as T } from '../runtime/sys/constants.ts';
import { ArrayMap, CryptoParams, Errno, runInstructions } from '../runtime/vm/index.ts';

const KFUNCS = ['bpf_crypto_ctx_create', 'bpf_dynptr_from_skb', 'bpf_dynptr_adjust', 'bpf_crypto_encrypt', 'bpf_crypto_decrypt', 'bpf_crypto_ctx_release'];
const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const PLAIN = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const FIPS197_C1 = '69c4e0d86a7b0430d8cdb78070b4c55a';
const ETH = Buffer.alloc(14, 0x11);
const IV_OFFSET = CryptoParams.SIZE;

/** Encrypt or decrypt the payload after the Ethernet header in place; r0 = the kfunc's result, or *err when create fails. */
function cryptProgram(decrypt: boolean, withIv: boolean): ReturnType<typeof assemble>['insns'] {
  const { insns } = assemble(`
    r6 = r1
    ld_pseudo r1, 0x2, 0x1
    r2 = ${CryptoParams.SIZE}
    r3 = r10
    r3 += -4
    call kfunc 0x0
    if r0 == 0 goto fail
    r7 = r0
    r1 = r6
    r2 = 0
    r3 = r10
    r3 += -32
    call kfunc 0x1
    r1 = r10
    r1 += -32
    r2 = 14
    r3 = *(u32 *)(r6 + 0)
    call kfunc 0x2
    r4 = 0
    ${withIv ? `ld_pseudo r1, 0x2, 0x1
    r1 += ${IV_OFFSET}
    r2 = 16
    r3 = 0
    r4 = r10
    r4 += -48
    call ${F.BPF_FUNC_dynptr_from_mem}
    r4 = r10
    r4 += -48` : ''}
    r1 = r7
    r2 = r10
    r2 += -32
    r3 = r10
    r3 += -32
    call kfunc ${decrypt ? '0x4' : '0x3'}
    r8 = r0
    r1 = r7
    call kfunc 0x5
    r0 = r8
    exit
  fail:
    r0 = *(s32 *)(r10 - 4)
    exit`);
  for (const insn of insns) if (insn.opcode === 0x85 && insn.src === 2) insn.reference = KFUNCS[insn.imm];
  return insns;
}

function params(algo: string, key = KEY, iv: Buffer<ArrayBufferLike> = Buffer.alloc(16)): ArrayMap {
  const map = new ArrayMap({ name: 'params', type: T.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: CryptoParams.SIZE + 16, maxEntries: 1 });
  const v = map.values[0]!;
  v.write('skcipher', CryptoParams.type, 'latin1');
  v.write(algo, CryptoParams.algo, 'latin1');
  v.set(key, CryptoParams.key);
  v.writeUInt32LE(key.length, CryptoParams.key_len);
  v.set(iv, IV_OFFSET);
  return map;
}

function crypt(algo: string, payload: Buffer, decrypt = false, iv?: Buffer<ArrayBufferLike>) {
  const map = params(algo, KEY, iv);
  const r = runInstructions(cryptProgram(decrypt, iv !== undefined), { kind: 'tc', packet: Buffer.concat([ETH, payload] as Uint8Array[]), maps: new Map([[1, map]]) });
  return { retval: BigInt.asIntN(64, r.retval), payload: r.packet.subarray(14), iv: map.values[0]!.subarray(IV_OFFSET, IV_OFFSET + 16) };
}

describe('bpf_crypto kfuncs', () => {
  it('ecb(aes) matches FIPS-197 C.1', () => {
    const r = crypt('ecb(aes)', Buffer.concat([PLAIN, PLAIN] as Uint8Array[]));
    expect(r.retval).toBe(0n);
    expect(r.payload.toString('hex')).toBe(FIPS197_C1.repeat(2));
    expect(crypt('ecb(aes-generic)', PLAIN).payload.toString('hex')).toBe(FIPS197_C1);
  });

  it('ecb(aes) decrypts back', () => {
    const r = crypt('ecb(aes)', Buffer.from(FIPS197_C1, 'hex'), true);
    expect(r.retval).toBe(0n);
    expect(r.payload).toEqual(PLAIN);
  });

  it('cbc(aes) matches node:crypto and leaves the last ciphertext block in the IV', () => {
    const iv = Buffer.from('f0e0d0c0b0a090807060504030201000', 'hex');
    const payload = Buffer.from('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51', 'hex');
    const c = createCipheriv('aes-128-cbc', new Uint8Array(KEY), new Uint8Array(iv));
    c.setAutoPadding(false);
    const expected = Buffer.concat([c.update(new Uint8Array(payload)), c.final()] as Uint8Array[]);
    const r = crypt('cbc(aes)', payload, false, iv);
    expect(r.retval).toBe(0n);
    expect(r.payload).toEqual(expected);
    expect(r.iv).toEqual(expected.subarray(16));
    expect(crypt('cbc(aes)', expected, true, iv).payload).toEqual(payload);
  });

  it('cbc(aes) without an IV dynptr is -EINVAL', () => {
    expect(crypt('cbc(aes)', PLAIN).retval).toBe(BigInt(-Errno.EINVAL));
  });

  it('a length that is not a multiple of the block size is -EINVAL (whole blocks are still processed)', () => {
    const r = crypt('ecb(aes)', Buffer.concat([PLAIN, Buffer.alloc(4)] as Uint8Array[]));
    expect(r.retval).toBe(BigInt(-Errno.EINVAL));
    expect(r.payload.subarray(0, 16).toString('hex')).toBe(FIPS197_C1);
  });

  it('ctx_create reports the kernel errnos through *err', () => {
    expect(crypt('gcm(aes)', PLAIN).retval).toBe(BigInt(-Errno.EOPNOTSUPP));
    const map = params('ecb(aes)', Buffer.alloc(15));
    const r = runInstructions(cryptProgram(false, false), { kind: 'tc', packet: Buffer.concat([ETH, PLAIN] as Uint8Array[]), maps: new Map([[1, map]]) });
    expect(BigInt.asIntN(64, r.retval)).toBe(BigInt(-Errno.EINVAL));
    const wrongType = params('ecb(aes)');
    wrongType.values[0]!.write('aead\0\0\0\0', CryptoParams.type, 'latin1');
    const t = runInstructions(cryptProgram(false, false), { kind: 'tc', packet: Buffer.concat([ETH, PLAIN] as Uint8Array[]), maps: new Map([[1, wrongType]]) });
    expect(BigInt.asIntN(64, t.retval)).toBe(BigInt(-Errno.ENOENT));
  });
});
