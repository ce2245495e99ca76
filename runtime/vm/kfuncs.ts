// Kernel functions (CALL src 2) the VM provides, by name: a kfunc call is bound through its
// relocation's symbol, since BTF ids differ from kernel to kernel.

import { cryptoKfuncs } from './crypto.ts';
import { dynptrKfuncs } from './dynptr.ts';
import type { NativeFunction } from './program.ts';

export const kfuncs: ReadonlyMap<string, NativeFunction> = new Map<string, NativeFunction>([
  ...dynptrKfuncs,
  ...cryptoKfuncs,
  // RCU sections around kptr access: the VM is single-threaded, so there is nothing to lock.
  ['bpf_rcu_read_lock', () => 0],
  ['bpf_rcu_read_unlock', () => 0],
]);

