// The one table of BPF helpers the DSL exposes (and the helper ids the compiler itself calls).
// Ids come from the generated kernel constants (runtime/sys/constants.ts); each entry gives the
// DSL function (compiler/dsl/index.ts, which holds its Node semantics), the kernel helper, how
// each DSL argument is passed, and the result's type and range as the kernel defines it.
//
// Argument kinds:
//	ctx      the program context (r1 at entry)
//	u32 …    an integer that must fit the type (checked like an assignment)
//	buf      a view (struct, array, Cell) or a local(): passed as pointer, sizeof appended
//	           as the next argument when `sized`
// A trailing argument with a `default` may be omitted.

import { helperIds } from '../../runtime/sys/constants.ts';
import * as dsl from '../dsl/index.ts';
import { type ContextKind, type IntType, type Range, exact, typeRange } from './types.ts';

export function helper(name: string): { helper: number; name: string } {
  const id = helperIds[name];
  if (id === undefined) throw new Error(`unknown BPF helper ${name}`);
  return { helper: id, name: `bpf_${name}` };
}

export type HelperArg =
  | { kind: 'ctx' }
  | { kind: 'int'; type: IntType; default?: bigint }
  | { kind: 'buf'; sized: boolean }
  /** The `null` literal (an optional pointer argument left out): 0. */
  | { kind: 'null' }
  /** A module map of this kind: its address (LD_IMM64 of the map). */
  | { kind: 'map'; map: 'ringbuf' };

export interface HelperEntry {
  /** The kernel helper, without the bpf_ prefix. */
  kernel: string;
  args: HelperArg[];
  /** The DSL result: a number (8–32-bit type) or bigint (u64/i64), with the kernel's range. */
  result: { type: IntType; range: Range };
  /** Program contexts that may call it (the verifier's per-program-type helper lists). */
  contexts: ContextKind[];
}

const ctx: HelperArg = { kind: 'ctx' };
const int = (type: IntType, def?: bigint): HelperArg => ({ kind: 'int', type, default: def });
const buf: HelperArg = { kind: 'buf', sized: true };
/** 0 or a negative errno, as an i32. */
const status = { type: dsl.i32, range: exact(false, -4095n, 0n) };
const skb: ContextKind[] = ['tc'];
const any: ContextKind[] = ['tc', 'xdp', 'syscall'];

export const HELPERS: Record<string, HelperEntry> = {
  ktimeGetNs: { kernel: 'ktime_get_ns', args: [], result: { type: dsl.u64, range: typeRange(dsl.u64) }, contexts: any },
  getPrandomU32: { kernel: 'get_prandom_u32', args: [], result: { type: dsl.u32, range: typeRange(dsl.u32) }, contexts: any },
  loadBytes: { kernel: 'skb_load_bytes', args: [ctx, int(dsl.u32), buf], result: status, contexts: skb },
  storeBytes: { kernel: 'skb_store_bytes', args: [ctx, int(dsl.u32), buf, int(dsl.u64, 0n)], result: status, contexts: skb },
  csumDiff: { kernel: 'csum_diff', args: [buf, buf, int(dsl.u32)], result: { type: dsl.i64, range: exact(true, -4095n, 0xffffn) }, contexts: any },
  l3CsumReplace: { kernel: 'l3_csum_replace', args: [ctx, int(dsl.u32), int(dsl.u32), int(dsl.u32), int(dsl.u64)], result: status, contexts: skb },
  l4CsumReplace: { kernel: 'l4_csum_replace', args: [ctx, int(dsl.u32), int(dsl.u32), int(dsl.u32), int(dsl.u64)], result: status, contexts: skb },
  changeTail: { kernel: 'skb_change_tail', args: [ctx, int(dsl.u32), int(dsl.u64, 0n)], result: status, contexts: skb },
  pullData: { kernel: 'skb_pull_data', args: [ctx, int(dsl.u32)], result: status, contexts: skb },
  adjustRoom: { kernel: 'skb_adjust_room', args: [ctx, int(dsl.i32), int(dsl.u32), int(dsl.u64)], result: status, contexts: skb },
  redirectNeigh: { kernel: 'redirect_neigh', args: [int(dsl.u32), { kind: 'null' }, int(dsl.u32), int(dsl.u64, 0n)], result: { type: dsl.i32, range: exact(false, 0n, 7n) }, contexts: skb },
  ringbufOutput: { kernel: 'ringbuf_output', args: [{ kind: 'map', map: 'ringbuf' }, buf, int(dsl.u64, 0n)], result: status, contexts: any },
  redirect: { kernel: 'redirect', args: [int(dsl.u32), int(dsl.u64, 0n)], result: { type: dsl.i32, range: exact(false, 0n, 7n) }, contexts: skb },
};

// ---------------------------------------------------------------------------------------------
// Calls that take or return kernel objects and dynptrs: kfuncs (CALL src=2, by name) and the
// dynptr helper. Argument kinds beyond HelperArg:
//	kptr       a kernel object (kptr field read after its NULL check, or a kfunc result);
//	             `release`: the reference is consumed (the value must be an owned one)
//	dynptr     a dynptr value (its stack slot is passed); `nullable` accepts `null`
//	newDynptr  no DSL argument: a fresh 16-byte stack slot the call initialises (the result)
//	errCell    a Cell<i32> (local(i32), an i32 map value or global): where the errno goes
//	zero       no DSL argument: the constant 0 (flags)
// `sleepable`: the verifier allows the call only in sleepable programs (KF_SLEEPABLE).

export type KernelArg =
  | HelperArg
  | { kind: 'kptr'; target: string; release?: boolean }
  /** A map value or writable global (bpf_dynptr_from_mem refuses stack memory: "Unsupported reg type fp"). */
  | { kind: 'mapMemory'; length?: boolean }
  | { kind: 'dynptr'; nullable?: boolean }
  | { kind: 'newDynptr' }
  | { kind: 'errCell' }
  | { kind: 'zero' };

export interface KernelCallEntry {
  /** kfunc name, or the helper name without bpf_ (helper: true). */
  kernel: string;
  helper?: boolean;
  args: KernelArg[];
  result:
    | { kind: 'int'; type: IntType; range: Range }
    | { kind: 'kptr'; target: string; owned: boolean }
    | { kind: 'void' }
    /** The dynptr the call initialised (its status is dropped: it cannot fail for a whole view). */
    | { kind: 'dynptr' }
    /** A view of T (the descriptor argument) or null: bpf_dynptr_slice. */
    | { kind: 'slice' };
  contexts: ContextKind[];
  sleepable?: boolean;
}

const CRYPTO = 'bpf_crypto_ctx';
const crypt = (kernel: string): KernelCallEntry => ({
  kernel,
  args: [{ kind: 'kptr', target: CRYPTO }, { kind: 'dynptr' }, { kind: 'dynptr' }, { kind: 'dynptr', nullable: true }],
  result: { kind: 'int', type: dsl.i32, range: exact(false, -4095n, 0n) },
  // crypt_kfunc_set is registered for SCHED_CLS, SCHED_ACT and XDP (kernel/bpf/crypto.c).
  contexts: ['tc', 'xdp'],
});

export const KERNEL_CALLS: Record<string, KernelCallEntry> = {
  cryptoCtxCreate: {
    kernel: 'bpf_crypto_ctx_create',
    args: [{ kind: 'buf', sized: true }, { kind: 'errCell' }],
    result: { kind: 'kptr', target: CRYPTO, owned: true },
    contexts: ['syscall'],
    sleepable: true,
  },
  // crypt_init_kfunc_set: registered for BPF_PROG_TYPE_SYSCALL only.
  cryptoCtxAcquire: { kernel: 'bpf_crypto_ctx_acquire', args: [{ kind: 'kptr', target: CRYPTO }], result: { kind: 'kptr', target: CRYPTO, owned: true }, contexts: ['syscall'] },
  cryptoCtxRelease: { kernel: 'bpf_crypto_ctx_release', args: [{ kind: 'kptr', target: CRYPTO, release: true }], result: { kind: 'void' }, contexts: ['syscall'] },
  cryptoEncrypt: crypt('bpf_crypto_encrypt'),
  cryptoDecrypt: crypt('bpf_crypto_decrypt'),
  // dynptrFromMem(buf, len?): len (default sizeof buf) must be provably ≤ sizeof buf.
  dynptrFromMem: { kernel: 'dynptr_from_mem', helper: true, args: [{ kind: 'mapMemory', length: true }, { kind: 'zero' }, { kind: 'newDynptr' }], result: { kind: 'dynptr' }, contexts: any },
  dynptrFromSkb: { kernel: 'bpf_dynptr_from_skb', args: [ctx, { kind: 'zero' }, { kind: 'newDynptr' }], result: { kind: 'dynptr' }, contexts: skb },
  dynptrAdjust: { kernel: 'bpf_dynptr_adjust', args: [{ kind: 'dynptr' }, int(dsl.u32), int(dsl.u32)], result: { kind: 'int', type: dsl.i32, range: exact(false, -34n, 0n) }, contexts: any },
  dynptrSlice: { kernel: 'bpf_dynptr_slice_rdwr', args: [{ kind: 'dynptr' }, int(dsl.u32), { kind: 'zero' }], result: { kind: 'slice' }, contexts: any },
};

/** The kfunc prototypes for BTF (extern FUNCs in .ksyms): the kernel matches kfuncs by name, and
 *  libbpf compares only kinds, so pointer arguments are `struct <name> *` and scalars ints. */
export const KFUNC_PROTOTYPES: Record<string, { returns: string; params: [string, string][] }> = {
  bpf_crypto_ctx_create: { returns: 'struct bpf_crypto_ctx *', params: [['params', 'struct bpf_crypto_params *'], ['params__sz', 'u32'], ['err', 'int *']] },
  bpf_crypto_ctx_acquire: { returns: 'struct bpf_crypto_ctx *', params: [['ctx', 'struct bpf_crypto_ctx *']] },
  bpf_crypto_ctx_release: { returns: 'void', params: [['ctx', 'struct bpf_crypto_ctx *']] },
  bpf_crypto_encrypt: { returns: 'int', params: [['ctx', 'struct bpf_crypto_ctx *'], ['src', 'struct bpf_dynptr *'], ['dst', 'struct bpf_dynptr *'], ['siv__nullable', 'struct bpf_dynptr *']] },
  bpf_crypto_decrypt: { returns: 'int', params: [['ctx', 'struct bpf_crypto_ctx *'], ['src', 'struct bpf_dynptr *'], ['dst', 'struct bpf_dynptr *'], ['siv__nullable', 'struct bpf_dynptr *']] },
  bpf_dynptr_from_skb: { returns: 'int', params: [['s', 'struct __sk_buff *'], ['flags', 'u64'], ['ptr__uninit', 'struct bpf_dynptr *']] },
  bpf_dynptr_adjust: { returns: 'int', params: [['p', 'struct bpf_dynptr *'], ['start', 'u32'], ['end', 'u32']] },
  bpf_dynptr_slice_rdwr: { returns: 'void *', params: [['p', 'struct bpf_dynptr *'], ['offset', 'u32'], ['buffer__opt', 'void *'], ['buffer__szk', 'u32']] },
};
