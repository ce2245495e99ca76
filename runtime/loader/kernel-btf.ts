// The running kernel's BTF (/sys/kernel/btf/vmlinux), decoded once per process: kfunc ids for
// CALL src=2 come from here. Tests without a kernel inject a Btf with setKernelBtf().
import { readFileSync } from 'node:fs';
import { Btf } from '../../compiler/btf/btf.ts';
import { LoaderError } from './errors.ts';

export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';

let cached: Btf | undefined;

export function kernelBtf(): Btf {
  if (!cached) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(VMLINUX_BTF);
    } catch {
      throw new LoaderError(`kernel BTF ${VMLINUX_BTF} is not readable (needs CONFIG_DEBUG_INFO_BTF=y); it is required to resolve kfuncs`);
    }
    cached = Btf.decode(bytes);
  }
  return cached;
}

/** Use `btf` as the kernel's BTF (tests); undefined goes back to reading vmlinux. */
export function setKernelBtf(btf: Btf | undefined): void {
  cached = btf;
}

/** The vmlinux BTF id of kfunc `name`, or a one-line error that says what is missing. */
export function kfuncId(name: string, kernel: Btf = kernelBtf()): number {
  const id = kernel.findFunc(name);
  if (id === undefined) throw new LoaderError(`kfunc ${name} is not in the kernel's BTF (kernel too old, or the function lives in a module)`);
  return id;
}
