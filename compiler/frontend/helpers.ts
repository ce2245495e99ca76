// BPF helpers the compiler calls, by name. Ids come from the generated kernel constants
// (runtime/sys/constants.ts), so there is one source for helper numbers in the project.

import { helperIds } from '../../runtime/sys/constants.ts';

export function helper(name: string): { helper: number; name: string } {
  const id = helperIds[name];
  if (id === undefined) throw new Error(`unknown BPF helper ${name}`);
  return { helper: id, name: `bpf_${name}` };
}
