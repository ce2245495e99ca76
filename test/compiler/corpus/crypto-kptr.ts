// bpf_crypto end to end: a sleepable syscall program stores the AES key it is given in a map,
// creates an ecb(aes) context from it and keeps the context as a kptr (kptrXchg, releasing any
// previous one); the tc program reads the kptr under RCU, encrypts 48 bytes of the packet (three
// blocks) from a map buffer into another, and records what a 20-byte (not whole blocks) request
// returns. Node (node:crypto), the VM and the kernel must agree byte for byte.
import {
  type i32,
  i32 as I32,
  u8,
  u32,
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
  dynptrFromMem,
  kptr,
  kptrXchg,
  loadBytes,
  local,
    struct,
} from '../../../compiler/dsl/index.ts';

export const Holder = struct({ ctx: kptr(CryptoCtx), created: u32 }, { name: 'holder' });
export const holders = arrayMap({ value: Holder, maxEntries: 1 });
export const Key = struct({ bytes: array(u8, 16) }, { name: 'aes_key' });
export const keys = arrayMap({ value: Key, maxEntries: 1 });
export const Plain = struct({ data: array(u8, 48) }, { name: 'plain' });
export const Cipher = struct({ data: array(u8, 64) }, { name: 'cipher' });
export const Odd = struct({ data: array(u8, 20) }, { name: 'odd' });
export const plain = arrayMap({ value: Plain, maxEntries: 1 });
export const cipher = arrayMap({ value: Cipher, maxEntries: 1 });
export const odd = arrayMap({ value: Odd, maxEntries: 1 });
export const status = arrayMap({ value: I32, maxEntries: 4 });
const Args = struct({ key: array(u8, 16), pad: array(u8, 48) });

export function setup(ctx: SyscallContext): i32 {
  const args = ctx.args(Args);
  const k = keys.lookup(0);
  if (k === null) return -1;
  k.bytes = args.key; // the buffer is read at constant offsets only
  const params = local(CryptoParams, { type: 'skcipher', algo: 'ecb(aes)', key_len: 16 });
  for (let i = 0; i < 16; i++) params.key[i] = k.bytes[i];
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
  h.created = (h.created + 1) >>> 0;
  args.pad[0] = 0xee; // written back to the caller's buffer
  return 0;
}

export function encrypt(skb: TcContext): i32 {
  const h = holders.lookup(0);
  if (h === null) return TC_ACT_SHOT;
  const c = h.ctx;
  if (c === null) return TC_ACT_SHOT;
  const src = plain.lookup(0);
  const dst = cipher.lookup(0);
  const st = status.lookup(0);
  if (src === null || dst === null || st === null) return TC_ACT_SHOT;
  st.value = loadBytes(skb, 0, src);
  const r = cryptoEncrypt(c, dynptrFromMem(src), dynptrFromMem(dst), null);
  const o = odd.lookup(0);
  if (o === null) return TC_ACT_SHOT;
  const bad = cryptoEncrypt(c, dynptrFromMem(o), dynptrFromMem(dst), null);
  status.update(1, r);
  status.update(2, bad);
  return r === 0 ? TC_ACT_OK : 3;
}
