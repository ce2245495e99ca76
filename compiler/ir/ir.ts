// The intermediate representation: a control-flow graph of basic blocks over virtual registers.
//
// Every register is 64 bits wide. Registers 0–10 are the machine registers r0–r10 (used for the
// calling convention and the frame pointer); registers from FIRST_VIRTUAL up are virtual and get
// a machine register or a stack slot from the register allocator. Instructions are three-address
// (`dst = a op b`); the selector turns them into BPF's two-address form. Each instruction carries
// the source location it came from, which becomes line info.

import type { SourceLocation } from '../asm/instruction.ts';

export type Reg = number;
export const FIRST_VIRTUAL = 16;
export const FP = 10;
export const isVirtual = (r: Reg): boolean => r >= FIRST_VIRTUAL;

export type AluName = 'add' | 'sub' | 'mul' | 'udiv' | 'sdiv' | 'umod' | 'smod' | 'or' | 'and' | 'xor' | 'lsh' | 'rsh' | 'arsh';
export type CmpName = 'eq' | 'ne' | 'ugt' | 'uge' | 'ult' | 'ule' | 'sgt' | 'sge' | 'slt' | 'sle' | 'set';
export type Width = 32 | 64;
export type Size = 1 | 2 | 4 | 8;
/** An operand: a register or a constant. Constants are 64-bit patterns; legalisation keeps them in range. */
export type Operand = { reg: Reg } | { imm: bigint };

/** A stack object: its offset below r10 is fixed by frame layout after register allocation. */
export interface Slot {
  id: number;
  size: number;
  align: number;
  /** Filled in by frame layout: the object starts at r10 - offset. */
  offset?: number;
  what: string;
}

/** A memory base: a register, or a stack slot (r10-relative once laid out). */
export type Base = { reg: Reg } | { slot: number };

export type Insn = (
  | { op: 'const'; dst: Reg; value: bigint }
  | { op: 'mov'; dst: Reg; src: Reg }
  | { op: 'alu'; alu: AluName; width: Width; dst: Reg; a: Reg; b: Operand }
  | { op: 'neg'; width: Width; dst: Reg; a: Reg }
  /** Sign-extend the low `bits` of a to 64 bits (MOVSX). */
  | { op: 'sext'; bits: 8 | 16 | 32; dst: Reg; a: Reg }
  /** Zero-extend the low 32 bits (MOV32). */
  | { op: 'zext32'; dst: Reg; a: Reg }
  /** Byte swap of the low `bits`, zero-extended (host little-endian ↔ big-endian). */
  | { op: 'bswap'; bits: 16 | 32 | 64; dst: Reg; a: Reg }
  | { op: 'load'; size: Size; signed: boolean; dst: Reg; base: Base; off: number }
  | { op: 'store'; size: Size; base: Base; off: number; value: Operand }
  /** dst = address of a stack slot. */
  | { op: 'addr'; dst: Reg; slot: number }
  /** dst = map pointer (LD_IMM64 pseudo map fd). */
  | { op: 'map'; dst: Reg; map: string }
  /** dst = address of a global variable (LD_IMM64 pseudo map value). */
  | { op: 'global'; dst: Reg; section: string; offset: number }
  /** Helper call with arguments already in r1..r5; defines r0, clobbers r1–r5. */
  | { op: 'call'; helper: number; name: string; argc: number }
  /** Atomic add to memory (lock xadd). */
  | { op: 'atomic_add'; size: 4 | 8; base: Base; off: number; value: Reg }
  /** Atomic fetch-and-add: dst = old [base+off]; [base+off] += value. After legalisation dst === value
   *  (BPF_ATOMIC | BPF_FETCH writes the old value into the source register). */
  | { op: 'fetch_add'; size: 4 | 8; dst: Reg; base: Base; off: number; value: Reg }
  /** BPF-to-BPF call of a .text function, arguments in r1..r5; defines r0, clobbers r1–r5. */
  | { op: 'call_local'; name: string; argc: number }
  /** Kernel function call (CALL src=2, by name), arguments in r1..r5; defines r0, clobbers r1–r5. */
  | { op: 'call_kfunc'; name: string; argc: number }
  /** dst = address of a .text function (LD_IMM64 src=FUNC): a bpf_loop callback. */
  | { op: 'func_addr'; dst: Reg; name: string }
) & { loc?: SourceLocation };

export type Terminator = (
  | { op: 'br'; cmp: CmpName; width: Width; a: Reg; b: Operand; then: Block; else: Block }
  | { op: 'jmp'; target: Block }
  | { op: 'ret'; value: Reg }
) & { loc?: SourceLocation };

export class Block {
  readonly id: number;
  insns: Insn[] = [];
  term: Terminator | undefined;
  constructor(id: number) {
    this.id = id;
  }
  successors(): Block[] {
    const t = this.term;
    if (!t) return [];
    if (t.op === 'br') return t.then === t.else ? [t.then] : [t.then, t.else];
    if (t.op === 'jmp') return [t.target];
    return [];
  }
}

export class IrFunction {
  readonly name: string;
  readonly blocks: Block[] = [];
  readonly slots: Slot[] = [];
  entry: Block;
  private nextReg = FIRST_VIRTUAL;
  private nextBlock = 0;
  constructor(name: string) {
    this.name = name;
    this.entry = this.newBlock();
  }
  newReg(): Reg {
    return this.nextReg++;
  }
  get regCount(): number {
    return this.nextReg;
  }
  newBlock(): Block {
    const b = new Block(this.nextBlock++);
    this.blocks.push(b);
    return b;
  }
  newSlot(size: number, align: number, what: string): number {
    const id = this.slots.length;
    // Zeroing and copies use the widest store the size allows, so align the slot for it
    // (the verifier refuses misaligned stack access).
    const widest = size >= 8 ? 8 : size >= 4 ? 4 : size >= 2 ? 2 : 1;
    this.slots.push({ id, size, align: Math.min(8, Math.max(1, align, widest)), what });
    return id;
  }
  /** Blocks reachable from the entry, in reverse post-order. */
  reversePostOrder(): Block[] {
    const seen = new Set<Block>();
    const post: Block[] = [];
    const visit = (b: Block): void => {
      // Iterative DFS: programs with long straight-line unrolled code would overflow recursion.
      const stack: [Block, number][] = [[b, 0]];
      seen.add(b);
      while (stack.length) {
        const top = stack[stack.length - 1]!;
        const succ = top[0].successors();
        if (top[1] < succ.length) {
          const s = succ[top[1]++]!;
          if (!seen.has(s)) {
            seen.add(s);
            stack.push([s, 0]);
          }
        } else {
          post.push(top[0]);
          stack.pop();
        }
      }
    };
    visit(this.entry);
    return post.reverse();
  }
  /** Drop unreachable blocks. */
  prune(): void {
    const live = new Set(this.reversePostOrder());
    for (let i = this.blocks.length - 1; i >= 0; i--) if (!live.has(this.blocks[i]!)) this.blocks.splice(i, 1);
  }
}

/** Registers an instruction reads. */
export function uses(i: Insn | Terminator): Reg[] {
  const base = (b: Base): Reg[] => ('reg' in b ? [b.reg] : []);
  const opnd = (o: Operand): Reg[] => ('reg' in o ? [o.reg] : []);
  switch (i.op) {
    case 'const':
    case 'addr':
    case 'map':
    case 'global':
    case 'jmp':
      return [];
    case 'mov':
      return [i.src];
    case 'alu':
      return [i.a, ...opnd(i.b)];
    case 'neg':
    case 'sext':
    case 'zext32':
    case 'bswap':
      return [i.a];
    case 'load':
      return base(i.base);
    case 'store':
      return [...base(i.base), ...opnd(i.value)];
    case 'atomic_add':
    case 'fetch_add':
      return [...base(i.base), i.value];
    case 'call':
    case 'call_local':
    case 'call_kfunc':
      return [1, 2, 3, 4, 5].slice(0, i.argc);
    case 'func_addr':
      return [];
    case 'br':
      return [i.a, ...opnd(i.b)];
    case 'ret':
      return [i.value];
  }
}

/** Registers an instruction writes (a call clobbers r0–r5). */
export function defs(i: Insn | Terminator): Reg[] {
  switch (i.op) {
    case 'store':
    case 'atomic_add':
    case 'br':
    case 'jmp':
    case 'ret':
      return [];
    case 'call':
    case 'call_local':
    case 'call_kfunc':
      return [0, 1, 2, 3, 4, 5];
    default:
      return [i.dst];
  }
}

/** Rewrite the registers of an instruction through `use` and `def`. */
export function mapRegs<T extends Insn | Terminator>(i: T, use: (r: Reg) => Reg, def: (r: Reg) => Reg): T {
  const base = (b: Base): Base => ('reg' in b ? { reg: use(b.reg) } : b);
  const opnd = (o: Operand): Operand => ('reg' in o ? { reg: use(o.reg) } : o);
  const x = i as Insn | Terminator;
  switch (x.op) {
    case 'const':
    case 'addr':
    case 'map':
    case 'global':
      return { ...x, dst: def(x.dst) } as T;
    case 'mov':
      return { ...x, src: use(x.src), dst: def(x.dst) } as T;
    case 'alu':
      return { ...x, a: use(x.a), b: opnd(x.b), dst: def(x.dst) } as T;
    case 'neg':
    case 'sext':
    case 'zext32':
    case 'bswap':
      return { ...x, a: use(x.a), dst: def(x.dst) } as T;
    case 'load':
      return { ...x, base: base(x.base), dst: def(x.dst) } as T;
    case 'store':
      return { ...x, base: base(x.base), value: opnd(x.value) } as T;
    case 'atomic_add':
      return { ...x, base: base(x.base), value: use(x.value) } as T;
    case 'fetch_add':
      return { ...x, base: base(x.base), value: use(x.value), dst: def(x.dst) } as T;
    case 'func_addr':
      return { ...x, dst: def(x.dst) } as T;
    case 'call_local':
    case 'call_kfunc':
      return x as T;
    case 'br':
      return { ...x, a: use(x.a), b: opnd(x.b) } as T;
    case 'ret':
      return { ...x, value: use(x.value) } as T;
    case 'call':
    case 'jmp':
      return x as T;
  }
}

/** Whether removing the instruction (when its result is unused) changes nothing. */
export const isPure = (i: Insn): boolean =>
  !(i.op === 'store' || i.op === 'call' || i.op === 'call_local' || i.op === 'call_kfunc' || i.op === 'atomic_add' || i.op === 'fetch_add');

const regName = (r: Reg): string => (r === FP ? 'fp' : r < FIRST_VIRTUAL ? `r${r}` : `%${r - FIRST_VIRTUAL}`);
const opndText = (o: Operand): string => ('reg' in o ? regName(o.reg) : String(o.imm));
const baseText = (b: Base): string => ('reg' in b ? regName(b.reg) : `slot${b.slot}`);

export function formatInsn(i: Insn | Terminator): string {
  switch (i.op) {
    case 'const':
      return `${regName(i.dst)} = ${i.value}`;
    case 'mov':
      return `${regName(i.dst)} = ${regName(i.src)}`;
    case 'alu':
      return `${regName(i.dst)} = ${i.alu}${i.width} ${regName(i.a)}, ${opndText(i.b)}`;
    case 'neg':
      return `${regName(i.dst)} = neg${i.width} ${regName(i.a)}`;
    case 'sext':
      return `${regName(i.dst)} = sext${i.bits} ${regName(i.a)}`;
    case 'zext32':
      return `${regName(i.dst)} = zext32 ${regName(i.a)}`;
    case 'bswap':
      return `${regName(i.dst)} = bswap${i.bits} ${regName(i.a)}`;
    case 'load':
      return `${regName(i.dst)} = load${i.signed ? 's' : ''}${i.size * 8} [${baseText(i.base)}${i.off >= 0 ? '+' : ''}${i.off}]`;
    case 'store':
      return `store${i.size * 8} [${baseText(i.base)}${i.off >= 0 ? '+' : ''}${i.off}], ${opndText(i.value)}`;
    case 'atomic_add':
      return `atomic_add${i.size * 8} [${baseText(i.base)}+${i.off}], ${regName(i.value)}`;
    case 'fetch_add':
      return `${regName(i.dst)} = fetch_add${i.size * 8} [${baseText(i.base)}+${i.off}], ${regName(i.value)}`;
    case 'call_local':
      return `call ${i.name} (${i.argc} args)`;
    case 'call_kfunc':
      return `call kfunc ${i.name} (${i.argc} args)`;
    case 'func_addr':
      return `${regName(i.dst)} = &${i.name}`;
    case 'addr':
      return `${regName(i.dst)} = &slot${i.slot}`;
    case 'map':
      return `${regName(i.dst)} = map ${i.map}`;
    case 'global':
      return `${regName(i.dst)} = &${i.section}+${i.offset}`;
    case 'call':
      return `call ${i.name}#${i.helper} (${i.argc} args)`;
    case 'br':
      return `br ${i.cmp}${i.width} ${regName(i.a)}, ${opndText(i.b)} ? b${i.then.id} : b${i.else.id}`;
    case 'jmp':
      return `jmp b${i.target.id}`;
    case 'ret':
      return `ret ${regName(i.value)}`;
  }
}

/** Text listing of a function, for tests and `--ir` dumps. */
export function formatFunction(f: IrFunction): string {
  const lines = [`function ${f.name}:`];
  for (const b of f.blocks) {
    lines.push(`b${b.id}:`);
    for (const i of b.insns) lines.push(`  ${formatInsn(i)}`);
    if (b.term) lines.push(`  ${formatInsn(b.term)}`);
  }
  return lines.join('\n');
}
