// dynptrFromMem(view, len) (G7): bpf_crypto_encrypt over the first `len` bytes of a map value,
// len from the packet length (16, 32, 48 or 64 bytes: the verifier sees the bound through a
// never-taken clamp), a length that is not whole blocks (-EINVAL after the whole blocks, as
// lskcipher does) and an empty one (-EINVAL). Bytes past len stay as they were. Node
// (node:crypto), the VM and the kernel must agree byte for byte. dynptrAdjust (kfunc
// bpf_dynptr_adjust) narrows a whole-buffer dynptr to a window: encrypted in place, and its
// -ERANGE / -EINVAL results.
import {
  type i32,
  type u32,
  i32 as I32,
  u8,
  u32 as U32,
  CryptoCtx,
  CryptoParams,
  SyscallContext,
  TC_ACT_OK,
  TC_ACT_SHOT,
  TcContext,
  array,
  arrayMap,
  cryptoCtxCreate,
  cryptoCtxRelease,
  cryptoEncrypt,
  dynptrAdjust,
  dynptrFromMem,
  kptr,
  kptrXchg,
  loadBytes,
  local,
  struct,
} from '../../../compiler/dsl/index.ts';

export const Holder = struct({ ctx: kptr(CryptoCtx), created: U32 }, { name: 'holder' });
export const holders = arrayMap({ value: Holder, maxEntries: 1 });
export const Buf = struct({ data: array(u8, 64) }, { name: 'buf' });
export const bufs = arrayMap({ value: Buf, maxEntries: 4 });
export const status = arrayMap({ value: I32, maxEntries: 8 });
const Args = struct({ key: array(u8, 16), pad: array(u8, 48) });

export function setup(ctx: SyscallContext): i32 {
  const args = ctx.args(Args);
  const params = local(CryptoParams, { type: 'skcipher', algo: 'ecb(aes)', key_len: 16 });
  params.key[0] = args.key[0];
  params.key[5] = args.key[5];
  params.key[15] = args.key[15];
  const err = local(I32);
  const c = cryptoCtxCreate(params, err);
  if (c === null) return err.value;
  const h = holders.lookup(0);
  if (h === null) {
    cryptoCtxRelease(c);
    return -2;
  }
  const old = kptrXchg(h, 'ctx', c);
  if (old !== null) cryptoCtxRelease(old);
  return 0;
}

export function encrypt(skb: TcContext): i32 {
  const h = holders.lookup(0);
  if (h === null) return TC_ACT_SHOT;
  const c = h.ctx;
  if (c === null) return TC_ACT_SHOT;
  const src = bufs.lookup(0);
  const dst = bufs.lookup(1);
  const odd = bufs.lookup(2);
  if (src === null || dst === null || odd === null) return TC_ACT_SHOT;
  loadBytes(skb, 0, src);
  const blocks: u32 = Math.min(skb.len >>> 4, 4);
  const n: u32 = blocks * 16;
  const r = cryptoEncrypt(c, dynptrFromMem(src, n), dynptrFromMem(dst, n), null);
  const bad = cryptoEncrypt(c, dynptrFromMem(src, (n + 4) & 63), dynptrFromMem(odd, n), null);
  const empty = cryptoEncrypt(c, dynptrFromMem(src, 0), dynptrFromMem(odd, 0), null);
  status.update(0, r);
  status.update(1, bad);
  status.update(2, empty);
  status.update(3, n);
  // A window of bufs[3]: bytes 16..16+n/2 (whole blocks when n is 32 or 64), encrypted in place.
  const w = bufs.lookup(3);
  if (w === null) return TC_ACT_SHOT;
  w.data[20] = skb.len & 0xff;
  const win = dynptrFromMem(w);
  const adj = dynptrAdjust(win, 16, 16 + (n >>> 1));
  const inPlace = cryptoEncrypt(c, win, win, null);
  status.update(4, adj);
  status.update(5, inPlace);
  status.update(6, dynptrAdjust(dynptrFromMem(w), 8, 80)); // past the end: -ERANGE
  status.update(7, dynptrAdjust(dynptrFromMem(w), 40, 20)); // start > end: -EINVAL
  return r === 0 ? TC_ACT_OK : 3;
}
