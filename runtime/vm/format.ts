// One instruction as text for VM messages: the project's LLVM-syntax disassembler, plus the raw
// fields when it cannot name the form (an invalid instruction is exactly what a message is about).

import type { Instruction } from '../../compiler/asm/instruction.ts';
import { formatInstruction as disassemble } from '../../compiler/asm/disassembler.ts';

export function formatInstruction(insn: Instruction, pc?: number): string {
  const text = disassemble(insn, pc === undefined ? {} : { pc });
  if (text !== '<unknown>') return text;
  const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;
  const wide = insn.imm2 !== undefined ? ` imm2=${hex(insn.imm2)}` : '';
  return `<unknown> opcode=0x${insn.opcode.toString(16).padStart(2, '0')} dst=r${insn.dst} src=r${insn.src} off=${insn.offset} imm=${insn.imm}${wide}`;
}
