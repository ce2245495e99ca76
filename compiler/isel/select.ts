// Instruction selection: allocated, legalised IR → BPF instructions, with relocations for maps
// and globals, jump offsets resolved over the final block order, and each instruction's source
// location kept for line info. Blocks are laid out in reverse post-order so most branches fall
// through; a branch whose `then` block comes next is inverted.

import type { Instruction, SourceLocation } from '../asm/instruction.ts';
import { slotOffsets } from '../asm/instruction.ts';
import { AluOp, AtomicOp, CallSrc, Class, JmpOp, Mode, PseudoSrc, Size, Source } from '../asm/opcode.ts';
import type { Relocation } from '../elf/spec.ts';
import { type AluName, type Base, type Block, type CmpName, type Insn, type IrFunction, type Operand, FP, type Terminator } from '../ir/ir.ts';

const ALU: Record<AluName, { op: number; offset: number }> = {
  add: { op: AluOp.ADD, offset: 0 },
  sub: { op: AluOp.SUB, offset: 0 },
  mul: { op: AluOp.MUL, offset: 0 },
  udiv: { op: AluOp.DIV, offset: 0 },
  sdiv: { op: AluOp.DIV, offset: 1 },
  umod: { op: AluOp.MOD, offset: 0 },
  smod: { op: AluOp.MOD, offset: 1 },
  or: { op: AluOp.OR, offset: 0 },
  and: { op: AluOp.AND, offset: 0 },
  xor: { op: AluOp.XOR, offset: 0 },
  lsh: { op: AluOp.LSH, offset: 0 },
  rsh: { op: AluOp.RSH, offset: 0 },
  arsh: { op: AluOp.ARSH, offset: 0 },
};
const JMP: Record<CmpName, number> = {
  eq: JmpOp.JEQ,
  ne: JmpOp.JNE,
  ugt: JmpOp.JGT,
  uge: JmpOp.JGE,
  ult: JmpOp.JLT,
  ule: JmpOp.JLE,
  sgt: JmpOp.JSGT,
  sge: JmpOp.JSGE,
  slt: JmpOp.JSLT,
  sle: JmpOp.JSLE,
  set: JmpOp.JSET,
};
const INVERSE: Partial<Record<CmpName, CmpName>> = { eq: 'ne', ne: 'eq', ugt: 'ule', uge: 'ult', ult: 'uge', ule: 'ugt', sgt: 'sle', sge: 'slt', slt: 'sge', sle: 'sgt' };
const SIZE: Record<number, number> = { 1: Size.B, 2: Size.H, 4: Size.W, 8: Size.DW };

export interface Selected {
  instructions: Instruction[];
  relocations: Relocation[];
}

interface Pending {
  insn: Instruction;
  target?: Block;
}

export function select(f: IrFunction): Selected {
  const order = f.reversePostOrder();
  const out: Pending[] = [];
  const relocations: Relocation[] = [];
  const blockStart = new Map<Block, number>();
  const push = (insn: Instruction, loc: SourceLocation | undefined, target?: Block): void => {
    out.push({ insn: loc ? { ...insn, source: loc } : insn, target });
  };
  const mem = (base: Base, off: number): { reg: number; off: number } => {
    if ('reg' in base) return { reg: base.reg, off };
    const slot = f.slots[base.slot]!;
    return { reg: FP, off: off - slot.offset! };
  };
  const i64 = (v: bigint): number => Number(BigInt.asIntN(32, v));

  const insn = (i: Insn): void => {
    const loc = i.loc;
    switch (i.op) {
      case 'const': {
        const v = BigInt.asIntN(64, i.value);
        if (v >= -(1n << 31n) && v < 1n << 31n) push({ opcode: Class.ALU64 | AluOp.MOV | Source.K, dst: i.dst, src: 0, offset: 0, imm: Number(v) }, loc);
        else if (v >= 0n && v < 1n << 32n) push({ opcode: Class.ALU | AluOp.MOV | Source.K, dst: i.dst, src: 0, offset: 0, imm: i64(v) }, loc);
        else {
          const u = BigInt.asUintN(64, v);
          push({ opcode: Class.LD | Mode.IMM | Size.DW, dst: i.dst, src: 0, offset: 0, imm: i64(u & 0xffffffffn), imm2: i64(u >> 32n) }, loc);
        }
        return;
      }
      case 'mov':
        push({ opcode: Class.ALU64 | AluOp.MOV | Source.X, dst: i.dst, src: i.src, offset: 0, imm: 0 }, loc);
        return;
      case 'alu': {
        const cls = i.width === 64 ? Class.ALU64 : Class.ALU;
        const { op, offset } = ALU[i.alu];
        if (i.a !== i.dst) throw new Error(`isel: ${f.name}: ALU not in two-address form`);
        const b: Operand = i.b;
        if ('imm' in b) push({ opcode: cls | op | Source.K, dst: i.dst, src: 0, offset, imm: i64(b.imm) }, loc);
        else push({ opcode: cls | op | Source.X, dst: i.dst, src: b.reg, offset, imm: 0 }, loc);
        return;
      }
      case 'neg':
        // NEG is deprecated in the ISA spec; 0 - x via SUB needs a scratch, so keep NEG (all kernels accept it).
        push({ opcode: (i.width === 64 ? Class.ALU64 : Class.ALU) | AluOp.NEG | Source.K, dst: i.dst, src: 0, offset: 0, imm: 0 }, loc);
        return;
      case 'sext':
        push({ opcode: Class.ALU64 | AluOp.MOV | Source.X, dst: i.dst, src: i.a, offset: i.bits, imm: 0 }, loc);
        return;
      case 'zext32':
        push({ opcode: Class.ALU | AluOp.MOV | Source.X, dst: i.dst, src: i.a, offset: 0, imm: 0 }, loc);
        return;
      case 'bswap':
        // BPF_END | BPF_TO_BE on a little-endian host: swap the low `bits`, zero the rest.
        push({ opcode: Class.ALU | AluOp.END | Source.X, dst: i.dst, src: 0, offset: 0, imm: i.bits }, loc);
        return;
      case 'load': {
        const m = mem(i.base, i.off);
        push({ opcode: Class.LDX | (i.signed ? Mode.MEMSX : Mode.MEM) | SIZE[i.size]!, dst: i.dst, src: m.reg, offset: m.off, imm: 0 }, loc);
        return;
      }
      case 'store': {
        const m = mem(i.base, i.off);
        if ('imm' in i.value) push({ opcode: Class.ST | Mode.MEM | SIZE[i.size]!, dst: m.reg, src: 0, offset: m.off, imm: i64(i.value.imm) }, loc);
        else push({ opcode: Class.STX | Mode.MEM | SIZE[i.size]!, dst: m.reg, src: i.value.reg, offset: m.off, imm: 0 }, loc);
        return;
      }
      case 'atomic_add': {
        const m = mem(i.base, i.off);
        push({ opcode: Class.STX | Mode.ATOMIC | SIZE[i.size]!, dst: m.reg, src: i.value, offset: m.off, imm: AtomicOp.ADD }, loc);
        return;
      }
      case 'fetch_add': {
        if (i.dst !== i.value) throw new Error(`isel: ${f.name}: fetch_add not in two-address form`);
        const m = mem(i.base, i.off);
        push({ opcode: Class.STX | Mode.ATOMIC | SIZE[i.size]!, dst: m.reg, src: i.value, offset: m.off, imm: AtomicOp.ADD | AtomicOp.FETCH }, loc);
        return;
      }
      case 'call_local':
        relocations.push({ insn: out.length, kind: 'call', symbol: i.name });
        push({ opcode: Class.JMP | JmpOp.CALL, dst: 0, src: CallSrc.LOCAL, offset: 0, imm: -1, reference: i.name }, loc);
        return;
      case 'call_kfunc':
        relocations.push({ insn: out.length, kind: 'kfunc', symbol: i.name });
        push({ opcode: Class.JMP | JmpOp.CALL, dst: 0, src: CallSrc.KFUNC, offset: 0, imm: 0, reference: i.name }, loc);
        return;
      case 'func_addr':
        relocations.push({ insn: out.length, kind: 'func_addr', symbol: i.name });
        push({ opcode: Class.LD | Mode.IMM | Size.DW, dst: i.dst, src: PseudoSrc.FUNC, offset: 0, imm: 0, imm2: 0, reference: i.name }, loc);
        return;
      case 'addr': {
        const slot = f.slots[i.slot]!;
        push({ opcode: Class.ALU64 | AluOp.MOV | Source.X, dst: i.dst, src: FP, offset: 0, imm: 0 }, loc);
        push({ opcode: Class.ALU64 | AluOp.ADD | Source.K, dst: i.dst, src: 0, offset: 0, imm: -slot.offset! }, loc);
        return;
      }
      case 'map':
        relocations.push({ insn: out.length, kind: 'map', symbol: i.map });
        push({ opcode: Class.LD | Mode.IMM | Size.DW, dst: i.dst, src: PseudoSrc.MAP_FD, offset: 0, imm: 0, imm2: 0, reference: i.map }, loc);
        return;
      case 'global':
        relocations.push({ insn: out.length, kind: 'global', symbol: i.section, offset: i.offset });
        push({ opcode: Class.LD | Mode.IMM | Size.DW, dst: i.dst, src: PseudoSrc.MAP_VALUE, offset: 0, imm: 0, imm2: i.offset, reference: i.section }, loc);
        return;
      case 'call':
        push({ opcode: Class.JMP | JmpOp.CALL, dst: 0, src: 0, offset: 0, imm: i.helper, reference: i.name }, loc);
        return;
    }
  };

  const term = (t: Terminator, next: Block | undefined): void => {
    const loc = t.loc;
    if (t.op === 'ret') {
      if (t.value !== 0) push({ opcode: Class.ALU64 | AluOp.MOV | Source.X, dst: 0, src: t.value, offset: 0, imm: 0 }, loc);
      push({ opcode: Class.JMP | JmpOp.EXIT, dst: 0, src: 0, offset: 0, imm: 0 }, loc);
      return;
    }
    if (t.op === 'jmp') {
      if (t.target !== next) push({ opcode: Class.JMP | JmpOp.JA, dst: 0, src: 0, offset: 0, imm: 0 }, loc, t.target);
      return;
    }
    let cmp = t.cmp;
    let taken = t.then;
    let fall = t.else;
    if (taken === next && INVERSE[cmp]) {
      cmp = INVERSE[cmp]!;
      [taken, fall] = [fall, taken];
    }
    const cls = t.width === 64 ? Class.JMP : Class.JMP32;
    if ('imm' in t.b) push({ opcode: cls | JMP[cmp] | Source.K, dst: t.a, src: 0, offset: 0, imm: i64(t.b.imm) }, loc, taken);
    else push({ opcode: cls | JMP[cmp] | Source.X, dst: t.a, src: t.b.reg, offset: 0, imm: 0 }, loc, taken);
    if (fall !== next) push({ opcode: Class.JMP | JmpOp.JA, dst: 0, src: 0, offset: 0, imm: 0 }, loc, fall);
  };

  order.forEach((b, k) => {
    blockStart.set(b, out.length);
    for (const i of b.insns) insn(i);
    if (b.term) term(b.term, order[k + 1]);
  });

  const instructions = out.map((p) => p.insn);
  const slots = slotOffsets(instructions);
  out.forEach((p, k) => {
    if (!p.target) return;
    const offset = slots[blockStart.get(p.target)!]! - (slots[k]! + 1);
    if (offset < -32768 || offset > 32767) throw new Error(`isel: ${f.name}: jump out of 16-bit range`);
    p.insn.offset = offset;
  });
  return { instructions, relocations };
}
