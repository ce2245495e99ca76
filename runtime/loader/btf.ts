// The BTF the loader hands the kernel: the object's own (ours or clang's) plus what the kernel
// needs that an object file does not carry, with the kernel-unfriendly parts sanitised the way
// libbpf's bpf_object__sanitize_btf does. Type ids never change (we only append and patch in
// place), so map key/value ids and func_info ids of the spec stay valid.
//   - a FUNC for every program/function without func_info (the kernel wants all or none);
//   - extern FUNCs (kfunc declarations) become static with named parameters: the kernel's BTF
//     checker refuses extern linkage and unnamed arguments in program BTF, and the verifier
//     resolves kfuncs against vmlinux anyway;
//   - DATASEC .ksyms/.kconfig list FUNCs (or nothing) with size 0: their entries become dummy
//     int VARs at distinct offsets, as libbpf does, since a DATASEC may only hold VARs.
// Line info strings (file names, source lines) live in the same string section, so the BTF is
// encoded together with them.
import { Btf } from '../../compiler/btf/btf.ts';
import { addInt } from '../../compiler/btf/builders.ts';
import { StringTable } from '../../compiler/btf/strings.ts';
import { Linkage } from '../../compiler/btf/types.ts';
import { encodeSections } from '../../compiler/btf/wire.ts';
import { syntheticFunc } from '../../compiler/elf/object-btf.ts';
import type { ObjectSpec } from '../../compiler/elf/spec.ts';

export interface LoaderBtf {
  btf: Btf;
  /** The FUNC id synthesised for code without func_info, by program/function name. */
  syntheticFuncs: Map<string, number>;
}

export function loaderBtf(spec: ObjectSpec): LoaderBtf | undefined {
  if (!spec.btf) return undefined;
  const btf = spec.btf.clone();
  const syntheticFuncs = new Map<string, number>();
  for (const p of spec.programs) if (p.funcInfo.length === 0) syntheticFuncs.set(p.name, syntheticFunc(btf, p.name, true));
  for (const f of spec.functions) if (f.funcInfo.length === 0) syntheticFuncs.set(f.name, syntheticFunc(btf, f.name, false));
  sanitize(btf);
  return { btf, syntheticFuncs };
}

function sanitize(btf: Btf): void {
  let dummyInt = 0;
  const count = btf.types.length;
  for (let id = 1; id < count; id++) {
    const t = btf.types[id]!;
    if (t.kind === 'func' && t.linkage === Linkage.EXTERN) {
      t.linkage = Linkage.STATIC;
      // clang emits extern prototypes without parameter names; the checker wants names
      // ("Invalid arg#1"). libbpf names them after its dummy var; any name does.
      const proto = btf.get(t.type);
      if (proto.kind === 'func_proto') proto.params.forEach((param, i) => param.name ||= `arg${i}`);
    }
    if (t.kind !== 'datasec') continue;
    const bad = t.vars.some((v) => btf.get(v.type).kind !== 'var') || (t.size === 0 && t.vars.length > 0);
    if (!bad) continue;
    dummyInt ||= addInt(btf, 'int', 4, true);
    t.vars = t.vars.map((v, i) => {
      const name = `__loader_${t.name.replace(/[^A-Za-z0-9_]/g, '')}_${i}`;
      const varId = btf.add({ kind: 'var', name, type: dummyInt, linkage: Linkage.GLOBAL });
      return { type: varId, offset: 4 * i, size: 4 };
    });
    t.size = 4 * t.vars.length;
  }
}

/** A string table for line info, then the blob: types and strings encoded together. */
export class BtfEncoder {
  readonly strings = new StringTable();
  readonly #types: Buffer;

  constructor(btf: Btf) {
    this.#types = btf.encodeTypes(this.strings);
  }

  add = (s: string): number => this.strings.add(s);

  encode(): Buffer {
    return encodeSections(this.#types, this.strings.encode());
  }
}
