// Legalisation before register allocation: the IR's three-address ALU operations become BPF's
// two-address form (`dst = a; dst op= b`), and constants that do not fit an instruction's 32-bit
// immediate move into registers. After this pass every instruction maps to one BPF instruction
// (or a fixed short sequence) with no scratch register needed.

import { type Insn, type IrFunction, type Operand } from '../ir/ir.ts';

const fitsImm = (v: bigint): boolean => v >= -(1n << 31n) && v < 1n << 31n;

export function legalize(f: IrFunction): void {
  for (const b of f.blocks) {
    const out: Insn[] = [];
    const imm = (o: Operand, width: 32 | 64, loc: Insn['loc']): Operand => {
      if (!('imm' in o)) return o;
      if (width === 32) return { imm: BigInt.asIntN(32, o.imm) }; // 32-bit ops read the low word only
      if (fitsImm(o.imm)) return o;
      const r = f.newReg();
      out.push({ op: 'const', dst: r, value: o.imm, loc });
      return { reg: r };
    };
    for (const i of b.insns) {
      if (i.op === 'alu') {
        const rhs = imm(i.b, i.width, i.loc);
        if (i.dst !== i.a) out.push({ op: 'mov', dst: i.dst, src: i.a, loc: i.loc });
        out.push({ ...i, a: i.dst, b: rhs });
      } else if (i.op === 'neg' || i.op === 'bswap') {
        if (i.dst !== i.a) out.push({ op: 'mov', dst: i.dst, src: i.a, loc: i.loc });
        out.push({ ...i, a: i.dst });
      } else if (i.op === 'fetch_add') {
        // The old value comes back in the source register.
        if (i.dst !== i.value) out.push({ op: 'mov', dst: i.dst, src: i.value, loc: i.loc });
        out.push({ ...i, value: i.dst });
      } else if (i.op === 'store') {
        // ST takes a sign-extended imm32; anything else goes through a register.
        const v = i.value;
        if ('imm' in v) {
          const narrow = i.size < 8 ? BigInt.asIntN(32, BigInt.asUintN(i.size * 8, v.imm)) : v.imm;
          if (fitsImm(narrow)) out.push({ ...i, value: { imm: narrow } });
          else {
            const r = f.newReg();
            out.push({ op: 'const', dst: r, value: v.imm, loc: i.loc });
            out.push({ ...i, value: { reg: r } });
          }
        } else out.push(i);
      } else out.push(i);
    }
    if (b.term?.op === 'br') {
      const t = b.term;
      b.term = { ...t, b: imm(t.b, t.width, t.loc) };
    }
    b.insns = out;
  }
}
