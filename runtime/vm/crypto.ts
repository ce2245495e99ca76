// The bpf_crypto kfuncs (kernel/bpf/crypto.c, Linux 6.10+) with the "skcipher" type
// (kernel/bpf/crypto_skcipher.c, backed by lskcipher), implemented with node:crypto.
//
// The kernel's checks and errnos are kept: a bad params struct is -EINVAL, an unknown type
// -ENOENT, an unknown algorithm -EOPNOTSUPP, a wrong key length -EINVAL; encrypt/decrypt need
// non-empty src ≤ dst, an IV dynptr of exactly the algorithm's IV size, and a length that is a
// multiple of the block size — like lskcipher, whole blocks are processed before -EINVAL.
// CBC updates the IV in place to the last ciphertext block, as lskcipher does.

import { createCipheriv, createDecipheriv } from 'node:crypto';
import { clone, concat, u8 } from './bytes.ts';
import { loadDynptr, dynptrView } from './dynptr.ts';
import type { Machine } from './machine.ts';
import { Errno } from './maps.ts';
import { address, type Region } from './memory.ts';
import type { NativeFunction } from './program.ts';

/** struct bpf_crypto_params (vmlinux BTF, Linux 6.18). */
export const CryptoParams = { type: 0, reserved: 14, algo: 16, key: 144, key_len: 400, authsize: 404, SIZE: 408 } as const;

const BLOCK = 16;

/** lskcipher algorithms the VM provides: AES in ECB and CBC, by name and by the generic driver name. */
const ALGORITHMS: Record<string, { mode: 'ecb' | 'cbc' }> = {
  'ecb(aes)': { mode: 'ecb' },
  'ecb(aes-generic)': { mode: 'ecb' },
  'cbc(aes)': { mode: 'cbc' },
  'cbc(aes-generic)': { mode: 'cbc' },
};

export class CryptoContext {
  usage = 1;
  region?: Region;
  constructor(
    readonly algo: string,
    readonly mode: 'ecb' | 'cbc',
    readonly key: Buffer,
  ) {}
  /** ctx->siv_len: IV size plus state size (lskcipher ECB/CBC keep no state). */
  get sivLen(): number {
    return this.mode === 'cbc' ? BLOCK : 0;
  }
}

const isCryptoContext = (o: unknown): o is CryptoContext => o instanceof CryptoContext;

const cString = (buf: Buffer): string => {
  const nul = buf.indexOf(0);
  return buf.subarray(0, nul < 0 ? buf.length : nul).toString('latin1');
};

function create(m: Machine, paramsPtr: bigint, paramsSize: bigint, errPtr: bigint): bigint {
  const fail = (errno: number): bigint => {
    const err = Buffer.alloc(4);
    err.writeInt32LE(-errno);
    m.memory.write(errPtr, err);
    return 0n;
  };
  if (paramsPtr === 0n || Number(paramsSize & 0xffffffffn) !== CryptoParams.SIZE) return fail(Errno.EINVAL);
  const params = m.memory.read(paramsPtr, CryptoParams.SIZE);
  if (params[CryptoParams.reserved] || params[CryptoParams.reserved + 1]) return fail(Errno.EINVAL);
  if (cString(params.subarray(CryptoParams.type, CryptoParams.reserved)) !== 'skcipher') return fail(Errno.ENOENT);
  const algo = cString(params.subarray(CryptoParams.algo, CryptoParams.key));
  const alg = ALGORITHMS[algo];
  if (!alg) return fail(Errno.EOPNOTSUPP);
  // skcipher has no setauthsize: a non-zero authsize is not supported.
  if (params.readUInt32LE(CryptoParams.authsize) !== 0) return fail(Errno.EOPNOTSUPP);
  const keyLen = params.readUInt32LE(CryptoParams.key_len);
  if (keyLen === 0 || keyLen > 256) return fail(Errno.EINVAL);
  if (keyLen !== 16 && keyLen !== 24 && keyLen !== 32) return fail(Errno.EINVAL); // aes_expandkey
  const ctx = new CryptoContext(algo, alg.mode, clone(params.subarray(CryptoParams.key, CryptoParams.key + keyLen)));
  ctx.region = m.memory.addObject(`bpf_crypto_ctx ${algo}`, ctx);
  m.memory.write(errPtr, Buffer.alloc(4));
  return address(ctx.region, 0);
}

function acquire(m: Machine, ptr: bigint): bigint {
  const ctx = m.memory.object(ptr, 'bpf_crypto_ctx', isCryptoContext);
  if (ctx.usage === 0) return 0n;
  ctx.usage++;
  return ptr;
}

function release(m: Machine, ptr: bigint): number {
  const ctx = m.memory.object(ptr, 'bpf_crypto_ctx', isCryptoContext);
  if (--ctx.usage === 0 && ctx.region) m.memory.retire(ctx.region);
  return 0;
}

/** AES over whole blocks of `src` into `dst`, chaining through `iv` for CBC (updated in place). */
function aes(ctx: CryptoContext, decrypt: boolean, src: Buffer, dst: Buffer, iv: Buffer | undefined): void {
  const cipherName = `aes-${ctx.key.length * 8}-${ctx.mode}`;
  const ivIn = ctx.mode === 'cbc' ? u8(clone(iv!)) : null;
  const c = decrypt ? createDecipheriv(cipherName, u8(ctx.key), ivIn) : createCipheriv(cipherName, u8(ctx.key), ivIn);
  c.setAutoPadding(false);
  // Copy the input first: src and dst may overlap (in-place encryption).
  const input = clone(src);
  const out = concat([c.update(u8(input)), c.final()]);
  dst.set(out);
  if (ctx.mode === 'cbc' && iv && input.length) iv.set((decrypt ? input : out).subarray(input.length - BLOCK, input.length));
}

function crypt(decrypt: boolean): NativeFunction {
  return (m, ctxPtr, srcPtr, dstPtr, sivPtr) => {
    const ctx = m.memory.object(ctxPtr, 'bpf_crypto_ctx', isCryptoContext);
    const src = loadDynptr(m, srcPtr);
    const dst = loadDynptr(m, dstPtr);
    const siv = sivPtr ? loadDynptr(m, sivPtr) : undefined;
    if (dst.rdonly) return -Errno.EINVAL;
    const sivLen = siv && siv.data ? siv.size : 0;
    if (!src.size || !dst.size || src.size > dst.size) return -Errno.EINVAL;
    if (sivLen !== ctx.sivLen) return -Errno.EINVAL;
    const input = dynptrView(m, src, 0, src.size, false);
    if (!input) return -Errno.EINVAL;
    const output = dynptrView(m, dst, 0, dst.size, true);
    if (!output) return -Errno.EINVAL;
    const iv = sivLen ? dynptrView(m, siv!, 0, sivLen, true) : undefined;
    if (sivLen && !iv) return -Errno.EINVAL;
    const whole = input.length - (input.length % BLOCK);
    aes(ctx, decrypt, input.subarray(0, whole), output, iv);
    return whole === input.length ? 0 : -Errno.EINVAL;
  };
}

export const cryptoKfuncs: [string, NativeFunction][] = [
  ['bpf_crypto_ctx_create', create as NativeFunction],
  ['bpf_crypto_ctx_acquire', acquire as NativeFunction],
  ['bpf_crypto_ctx_release', release as NativeFunction],
  ['bpf_crypto_encrypt', crypt(false)],
  ['bpf_crypto_decrypt', crypt(true)],
];
