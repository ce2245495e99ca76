// Pointer origins for alias analysis. A register defined once whose value is the result of
// bpf_map_lookup_elem on map M (r1 set from `map M` in the same block), the address of a global
// section, or a stack slot address, or a pointer derived from one by moves and adding scalars,
// points into that object: the verifier keeps every access through it inside the map value or
// section. Different objects never overlap, so a store through one cannot change what a load
// through another reads. Unknown origin means "may alias anything".

import { type IrFunction, type Reg, defs, isVirtual } from '../ir/ir.ts';

const MAP_LOOKUP_ELEM = 1;

export function pointerOrigins(f: IrFunction): Map<Reg, string> {
  const defCount = new Int32Array(f.regCount);
  for (const b of f.blocks) for (const i of b.insns) for (const d of defs(i)) defCount[d]!++;
  const origin = new Map<Reg, string>();
  const single = (r: Reg): boolean => isVirtual(r) && defCount[r] === 1;
  for (const b of f.reversePostOrder()) {
    let r1Map: string | undefined;
    let r0Origin: string | undefined;
    for (const i of b.insns) {
      let o: string | undefined;
      if (i.op === 'mov') o = i.src === 0 ? r0Origin : origin.get(i.src);
      else if (i.op === 'global') o = `map:${i.section}`;
      else if (i.op === 'addr') o = 'stack';
      else if (i.op === 'map' && i.dst === 1) r1Map = i.map;
      else if (i.op === 'alu' && i.width === 64 && (i.alu === 'add' || i.alu === 'sub') && origin.has(i.a) && ('imm' in i.b || !origin.has(i.b.reg))) o = origin.get(i.a);
      else if (i.op === 'alu' && i.width === 64 && i.alu === 'add' && 'reg' in i.b && origin.has(i.b.reg) && !origin.has(i.a)) o = origin.get(i.b.reg);
      if (i.op === 'call') {
        r0Origin = i.helper === MAP_LOOKUP_ELEM && r1Map !== undefined ? `map:${r1Map}` : undefined;
        r1Map = undefined;
        continue;
      }
      const ds = defs(i);
      if (ds.includes(0)) r0Origin = undefined;
      if (ds.includes(1) && !(i.op === 'map' && i.dst === 1)) r1Map = undefined;
      if (o !== undefined && ds.length === 1 && single(ds[0]!)) origin.set(ds[0]!, o);
    }
  }
  return origin;
}

/** Whether memory through base registers with these origins may overlap. */
export const mayAlias = (a: string | undefined, b: string | undefined): boolean => a === undefined || b === undefined || a === b;
