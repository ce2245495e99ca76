// Load-time validation (ubpf's `validate`): everything that can be checked without running the
// program is checked once here, so the interpreter's hot loop trusts its input.
//
// Passes: (1) each instruction's fields against the opcode table (compiler/asm/table.ts: the
// verifier's per-instruction rules, reserved fields, r10 never written), (2) control flow — jump
// and call targets inside the program and never into the second slot of a 64-bit immediate
// load, no fall-through past the last instruction.

import { CallSrc, Class, JmpOp } from '../../compiler/asm/opcode.ts';
import { isWide, slotOffsets, type Instruction } from '../../compiler/asm/instruction.ts';
import { validate as checkFields } from '../../compiler/asm/table.ts';
import { VmLoadError } from './errors.ts';
import { formatInstruction } from './format.ts';

/**
 * Validate a program: fields, jump and call targets, no fall-through. `extraChecks` returns a
 * reason for instructions only the caller can judge (unknown helper, unresolved kfunc).
 */
export function validate(insns: readonly Instruction[], extraChecks?: (insn: Instruction, index: number) => string | undefined): void {
  if (insns.length === 0) throw new VmLoadError('program is empty');
  const offs = slotOffsets(insns);
  const total = offs[insns.length]!;
  // Slots that start an instruction; the second half of a lddw is not one.
  const starts = new Uint8Array(total + 1);
  for (let i = 0; i < insns.length; i++) starts[offs[i]!] = 1;
  const fail = (i: number, why: string): never => {
    throw new VmLoadError(`${why} at PC ${offs[i]}: ${formatInstruction(insns[i]!, offs[i])}`, offs[i]);
  };
  const checkTarget = (i: number, target: number, what: string): void => {
    if (target < 0 || target >= total) fail(i, `${what} out of bounds (to PC ${target})`);
    if (!starts[target]) fail(i, `${what} into the middle of a 64-bit immediate load (to PC ${target})`);
  };

  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i]!;
    const why = checkFields(insn) ?? extraChecks?.(insn, i);
    if (why) fail(i, why);
    const pc = offs[i]!;
    const cls = insn.opcode & 0x07;
    const op = insn.opcode & 0xf0;
    let fallsThrough = true;
    if (cls === Class.JMP || cls === Class.JMP32) {
      if (op === JmpOp.EXIT) fallsThrough = false;
      else if (op === JmpOp.CALL) {
        if (insn.src === CallSrc.LOCAL) checkTarget(i, pc + insn.imm + 1, 'call');
      } else {
        const delta = cls === Class.JMP32 && op === JmpOp.JA ? insn.imm : insn.offset;
        checkTarget(i, pc + delta + 1, 'jump');
        if (op === JmpOp.JA) fallsThrough = false;
      }
    } else if (isWide(insn) && insn.src === 4) {
      checkTarget(i, pc + insn.imm + 1, 'function pointer');
    }
    if (fallsThrough && offs[i + 1]! >= total) fail(i, 'program falls off the end');
  }
}
