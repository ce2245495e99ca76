// A validated program in the shape the interpreter runs: one entry per 8-byte slot in typed
// arrays (jumps are slot-relative), 64-bit immediates already resolved to guest values, and
// every call site already bound to its helper, kfunc or local target — so the hot loop does
// no lookups by name or id.

import { CallSrc, Class, JmpOp } from '../../compiler/asm/opcode.ts';
import { isWide, slotOffsets, type Instruction } from '../../compiler/asm/instruction.ts';
import type { Machine } from './machine.ts';
import { address, type Region } from './memory.ts';
import { validate } from './validate.ts';

/** A helper or kfunc: r1–r5 in, r0 out (a negative number is a negative errno, sign-extended). */
export type NativeFunction = (m: Machine, r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint) => bigint | number;

export interface Code {
  readonly name: string;
  readonly insns: readonly Instruction[];
  /** Slot of each instruction. */
  readonly offs: readonly number[];
  /** Instruction index of each slot; -1 for the second slot of a lddw. */
  readonly insnAt: Int32Array;
  readonly op: Uint8Array;
  readonly dst: Uint8Array;
  readonly src: Uint8Array;
  readonly off: Int16Array;
  readonly imm: Int32Array;
  /** LD|IMM|DW: the resolved 64-bit value, split in halves. */
  readonly wideLo: Uint32Array;
  readonly wideHi: Uint32Array;
  /** CALL src 0/2: the bound helper or kfunc. */
  readonly natives: (NativeFunction | undefined)[];
  /** Function pointers (LD_IMM64 src=4) point into this region: offset = slot. */
  readonly region: Region;
}

export interface LinkResolver {
  /** The value of a LD_IMM64 that refers to something (map, global, BTF id), a reason it cannot be resolved, or undefined for a plain constant. */
  wide(insn: Instruction, index: number): bigint | string | undefined;
  helper(id: number): NativeFunction | undefined;
  /** A kfunc call (src 2): by insn.reference (the name), or a reason. */
  kfunc(insn: Instruction, index: number): NativeFunction | string;
}

export function buildCode(m: Machine, name: string, insns: readonly Instruction[], resolve: LinkResolver): Code {
  const offs = slotOffsets(insns);
  const total = offs[insns.length]!;
  const code = {
    name,
    insns,
    offs,
    insnAt: new Int32Array(total).fill(-1),
    op: new Uint8Array(total),
    dst: new Uint8Array(total),
    src: new Uint8Array(total),
    off: new Int16Array(total),
    imm: new Int32Array(total),
    wideLo: new Uint32Array(total),
    wideHi: new Uint32Array(total),
    natives: new Array<NativeFunction | undefined>(total),
    region: undefined as unknown as Region,
  };
  code.region = m.memory.addObject(`code of ${name}`, code, 'code');

  validate(insns, (insn, i) => {
    const pc = offs[i]!;
    if (isWide(insn)) {
      // A relocation (map, global) wins over the constant; src=4 is a local function.
      let value: bigint | string | undefined = insn.src === 4 ? address(code.region, pc + insn.imm + 1) : resolve.wide(insn, i);
      if (value === undefined) value = (BigInt(insn.imm2 ?? 0) << 32n) | BigInt(insn.imm >>> 0);
      if (typeof value === 'string') return value;
      const v = BigInt.asUintN(64, value);
      code.wideLo[pc] = Number(v & 0xffffffffn);
      code.wideHi[pc] = Number(v >> 32n);
    } else if ((insn.opcode & 0x07) === Class.JMP && (insn.opcode & 0xf0) === JmpOp.CALL) {
      if (insn.src === CallSrc.HELPER) {
        const fn = resolve.helper(insn.imm);
        if (!fn) return `unknown helper function ${insn.imm}`;
        code.natives[pc] = fn;
      } else if (insn.src === CallSrc.KFUNC) {
        const fn = resolve.kfunc(insn, i);
        if (typeof fn === 'string') return fn;
        code.natives[pc] = fn;
      }
    }
    return undefined;
  });

  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i]!;
    const pc = offs[i]!;
    code.insnAt[pc] = i;
    code.op[pc] = insn.opcode;
    code.dst[pc] = insn.dst;
    code.src[pc] = insn.src;
    code.off[pc] = insn.offset;
    code.imm[pc] = insn.imm;
  }
  return code;
}
