// A typed instruction builder in the style of cilium/ebpf's asm package:
//
//	Alu64.add.imm(R1, 22)          r1 += 0x16
//	Alu32.sdiv.reg(R1, R2)         w1 s/= w2
//	Jmp.jeq.imm(R1, 0, 'out')      if r1 == 0x0 goto out   (a label, see labels.ts)
//	ldx(Size.W, R0, R1, 8)         w0 = *(u32 *)(r1 + 0x8)
//	ldMapFd(R1, 'sa_map')          ld_pseudo r1, 0x1, 0x0 with reference "sa_map"
//
// Every function returns a plain Instruction. Where a target may be a label, a string puts the
// label in `reference`; link()/resolve() turn it into an offset.

import { splitWide, type Instruction } from './instruction.ts';
import { AluOp, AtomicOp, CallSrc, Class, JmpOp, Mode, PseudoSrc, Size, Source, type Register } from './opcode.ts';

export { label, link, resolve } from './labels.ts';
export const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R8 = 8, R9 = 9, R10 = 10, FP = 10;

type SizeValue = (typeof Size)[keyof typeof Size];
/** A jump target: a relative offset in slots, or a label. */
export type Target = number | string;

function insn(opcode: number, dst: Register, src: Register, offset: number, imm: number): Instruction {
  return { opcode, dst, src, offset, imm };
}

/** Jump with `target` in offset (or imm, for gotol and local calls). */
function jumpTo(base: Instruction, target: Target, field: 'offset' | 'imm' = 'offset'): Instruction {
  if (typeof target === 'number') return { ...base, [field]: target };
  return { ...base, reference: target };
}

interface AluBinary {
  imm(dst: Register, imm: number): Instruction;
  reg(dst: Register, src: Register): Instruction;
}

function aluBinary(cls: number, op: number, offset = 0): AluBinary {
  return {
    imm: (dst, imm) => insn(cls | Source.K | op, dst, 0, offset, imm),
    reg: (dst, src) => insn(cls | Source.X | op, dst, src, offset, 0),
  };
}

function aluClass(cls: typeof Class.ALU | typeof Class.ALU64) {
  return {
    add: aluBinary(cls, AluOp.ADD),
    sub: aluBinary(cls, AluOp.SUB),
    mul: aluBinary(cls, AluOp.MUL),
    div: aluBinary(cls, AluOp.DIV),
    sdiv: aluBinary(cls, AluOp.DIV, 1),
    or: aluBinary(cls, AluOp.OR),
    and: aluBinary(cls, AluOp.AND),
    lsh: aluBinary(cls, AluOp.LSH),
    rsh: aluBinary(cls, AluOp.RSH),
    mod: aluBinary(cls, AluOp.MOD),
    smod: aluBinary(cls, AluOp.MOD, 1),
    xor: aluBinary(cls, AluOp.XOR),
    arsh: aluBinary(cls, AluOp.ARSH),
    mov: aluBinary(cls, AluOp.MOV),
    neg: (dst: Register): Instruction => insn(cls | Source.K | AluOp.NEG, dst, 0, 0, 0),
  };
}

/** 64-bit ALU: `Alu64.add.imm(R1, 22)`, `Alu64.sdiv.reg(R1, R2)`, `Alu64.neg(R1)`. */
export const Alu64 = aluClass(Class.ALU64);
/** 32-bit ALU (w registers; the result is zero-extended). */
export const Alu32 = aluClass(Class.ALU);
/** Moves, the most common ALU form. */
export const Mov64 = Alu64.mov;
export const Mov32 = Alu32.mov;

/** dst = (s8|s16|s32) src, sign-extended to 64 bits (cpu v4). */
export const movsx64 = (dst: Register, src: Register, width: 8 | 16 | 32): Instruction => insn(Class.ALU64 | Source.X | AluOp.MOV, dst, src, width, 0);
/** w_dst = (s8|s16) w_src, sign-extended to 32 bits, upper half zeroed (cpu v4). */
export const movsx32 = (dst: Register, src: Register, width: 8 | 16): Instruction => insn(Class.ALU | Source.X | AluOp.MOV, dst, src, width, 0);

// Byte order. le/be convert host order to the named order (a no-op or a swap, truncating to the
// width); bswap always swaps (cpu v4).
const end = (opcode: number, width: 16 | 32 | 64) => (dst: Register): Instruction => insn(opcode, dst, 0, 0, width);
export const le16 = end(Class.ALU | Source.K | AluOp.END, 16);
export const le32 = end(Class.ALU | Source.K | AluOp.END, 32);
export const le64 = end(Class.ALU | Source.K | AluOp.END, 64);
export const be16 = end(Class.ALU | Source.X | AluOp.END, 16);
export const be32 = end(Class.ALU | Source.X | AluOp.END, 32);
export const be64 = end(Class.ALU | Source.X | AluOp.END, 64);
export const bswap16 = end(Class.ALU64 | Source.K | AluOp.END, 16);
export const bswap32 = end(Class.ALU64 | Source.K | AluOp.END, 32);
export const bswap64 = end(Class.ALU64 | Source.K | AluOp.END, 64);

interface JmpCondition {
  imm(dst: Register, imm: number, target: Target): Instruction;
  reg(dst: Register, src: Register, target: Target): Instruction;
}

function jmpCondition(cls: number, op: number): JmpCondition {
  return {
    imm: (dst, imm, target) => jumpTo(insn(cls | Source.K | op, dst, 0, 0, imm), target),
    reg: (dst, src, target) => jumpTo(insn(cls | Source.X | op, dst, src, 0, 0), target),
  };
}

function jmpClass(cls: typeof Class.JMP | typeof Class.JMP32) {
  return {
    jeq: jmpCondition(cls, JmpOp.JEQ),
    jgt: jmpCondition(cls, JmpOp.JGT),
    jge: jmpCondition(cls, JmpOp.JGE),
    jset: jmpCondition(cls, JmpOp.JSET),
    jne: jmpCondition(cls, JmpOp.JNE),
    jsgt: jmpCondition(cls, JmpOp.JSGT),
    jsge: jmpCondition(cls, JmpOp.JSGE),
    jlt: jmpCondition(cls, JmpOp.JLT),
    jle: jmpCondition(cls, JmpOp.JLE),
    jslt: jmpCondition(cls, JmpOp.JSLT),
    jsle: jmpCondition(cls, JmpOp.JSLE),
  };
}

/** Conditional jumps on 64-bit registers: `Jmp.jeq.imm(R1, 0, 'out')`. */
export const Jmp = jmpClass(Class.JMP);
/** Conditional jumps on the low 32 bits. */
export const Jmp32 = jmpClass(Class.JMP32);

/** goto: 16-bit offset. */
export const ja = (target: Target): Instruction => jumpTo(insn(Class.JMP | JmpOp.JA, 0, 0, 0, 0), target);
/** gotol: 32-bit offset in imm (cpu v4). */
export const gotol = (target: Target): Instruction => jumpTo(insn(Class.JMP32 | JmpOp.JA, 0, 0, 0, 0), target, 'imm');

const CALL = Class.JMP | Source.K | JmpOp.CALL;
export const call = {
  /** A helper by id. */
  helper: (id: number): Instruction => insn(CALL, 0, CallSrc.HELPER, 0, id),
  /** A kernel function by BTF id; btfFdIndex selects a module BTF in fd_array (0: vmlinux). */
  kfunc: (btfId: number, btfFdIndex = 0): Instruction => insn(CALL, 0, CallSrc.KFUNC, btfFdIndex, btfId),
  /** A BPF-to-BPF call: relative offset in imm, or a function name. */
  local: (target: Target): Instruction => jumpTo(insn(CALL, 0, CallSrc.LOCAL, 0, 0), target, 'imm'),
};
export const exit = (): Instruction => insn(Class.JMP | JmpOp.EXIT, 0, 0, 0, 0);

/** dst = *(size *)(src + off), zero-extended. */
export const ldx = (size: SizeValue, dst: Register, src: Register, off: number): Instruction => insn(Class.LDX | Mode.MEM | size, dst, src, off, 0);
/** dst = *(s8/s16/s32 *)(src + off), sign-extended (cpu v4). */
export const ldxsx = (size: typeof Size.B | typeof Size.H | typeof Size.W, dst: Register, src: Register, off: number): Instruction =>
  insn(Class.LDX | Mode.MEMSX | size, dst, src, off, 0);
/** *(size *)(dst + off) = imm. */
export const st = (size: SizeValue, dst: Register, off: number, imm: number): Instruction => insn(Class.ST | Mode.MEM | size, dst, 0, off, imm);
/** *(size *)(dst + off) = src. */
export const stx = (size: SizeValue, dst: Register, src: Register, off: number): Instruction => insn(Class.STX | Mode.MEM | size, dst, src, off, 0);

type AtomicSize = typeof Size.W | typeof Size.DW;
const atomicOp = (op: number) => (size: AtomicSize, dst: Register, src: Register, off: number): Instruction =>
  insn(Class.STX | Mode.ATOMIC | size, dst, src, off, op);
/**
 * Atomic read-modify-write of *(size *)(dst + off) with src. The fetch variants return the old
 * value in src; xchg stores src and returns the old value in src; cmpxchg stores src if the
 * value equals r0 and returns the old value in r0.
 */
export const Atomic = {
  add: atomicOp(AtomicOp.ADD),
  or: atomicOp(AtomicOp.OR),
  and: atomicOp(AtomicOp.AND),
  xor: atomicOp(AtomicOp.XOR),
  fetchAdd: atomicOp(AtomicOp.ADD | AtomicOp.FETCH),
  fetchOr: atomicOp(AtomicOp.OR | AtomicOp.FETCH),
  fetchAnd: atomicOp(AtomicOp.AND | AtomicOp.FETCH),
  fetchXor: atomicOp(AtomicOp.XOR | AtomicOp.FETCH),
  xchg: atomicOp(AtomicOp.XCHG),
  cmpxchg: atomicOp(AtomicOp.CMPXCHG),
};

const LDDW = Class.LD | Mode.IMM | Size.DW;
function ldPseudo(dst: Register, src: number, imm: number | string, imm2 = 0): Instruction {
  const base: Instruction = { opcode: LDDW, dst, src, offset: 0, imm: typeof imm === 'number' ? imm : 0, imm2 };
  return typeof imm === 'string' ? { ...base, reference: imm } : base;
}

/** dst = a 64-bit constant (two slots). */
export const lddw = (dst: Register, value: bigint | number): Instruction => ({ opcode: LDDW, dst, src: PseudoSrc.IMM64, offset: 0, ...splitWide(BigInt(value)) });
/** dst = the map with this fd, or the map named by a symbol (the loader fills in the fd). */
export const ldMapFd = (dst: Register, map: number | string): Instruction => ldPseudo(dst, PseudoSrc.MAP_FD, map);
/** dst = address of the map's value at offset off (array maps with one element: globals). */
export const ldMapValue = (dst: Register, map: number | string, off = 0): Instruction => ldPseudo(dst, PseudoSrc.MAP_VALUE, map, off);
/** dst = address of a kernel variable by BTF id; btfFd names a module BTF (0: vmlinux). */
export const ldBtfId = (dst: Register, btfId: number, btfFd = 0): Instruction => ldPseudo(dst, PseudoSrc.BTF_ID, btfId, btfFd);
/** dst = address of a BPF function: relative offset in imm, or the function's name. */
export const ldFunc = (dst: Register, target: Target): Instruction => ldPseudo(dst, PseudoSrc.FUNC, target);
/** dst = the map at this index of fd_array. */
export const ldMapIdx = (dst: Register, index: number): Instruction => ldPseudo(dst, PseudoSrc.MAP_IDX, index);
/** dst = address of the value at offset off of the map at this index of fd_array. */
export const ldMapIdxValue = (dst: Register, index: number, off = 0): Instruction => ldPseudo(dst, PseudoSrc.MAP_IDX_VALUE, index, off);

type PacketSize = typeof Size.B | typeof Size.H | typeof Size.W;
/** Legacy: r0 = ntoh(*(size *)(skb->data + imm)); r6 must hold the skb. */
export const ldAbs = (size: PacketSize, imm: number): Instruction => insn(Class.LD | Mode.ABS | size, 0, 0, 0, imm);
/** Legacy: r0 = ntoh(*(size *)(skb->data + src + imm)). */
export const ldInd = (size: PacketSize, src: Register, imm = 0): Instruction => insn(Class.LD | Mode.IND | size, 0, src, 0, imm);

/** Give insn a symbol (a function name or label) without a Label marker. */
export const withSymbol = (name: string, i: Instruction): Instruction => ({ ...i, symbol: name });
