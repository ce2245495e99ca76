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
  | { kind: 'buf'; sized: boolean };

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
const any: ContextKind[] = ['tc', 'xdp'];

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
  redirect: { kernel: 'redirect', args: [int(dsl.u32), int(dsl.u64, 0n)], result: { type: dsl.i32, range: exact(false, 0n, 7n) }, contexts: skb },
};
