// Sample instructions for every form of the table: three per form, from typical values to the
// edges of each field (r10 as a source, offsets ±32 KiB, imm at INT32_MIN/MAX).
import type { Instruction } from '../../compiler/asm/instruction.ts';
import { FORMS, type FieldSpec, type Form } from '../../compiler/asm/table.ts';

const POOLS: Record<string, { dst: number[]; src: number[]; value: number[] }> = {
  reg: { dst: [1, 10, 0], src: [2, 0, 10], value: [] },
  wreg: { dst: [1, 9, 0], src: [2, 0, 9], value: [] },
  imm: { dst: [], src: [], value: [5, -0x80000000, 0x7fffffff] },
  off: { dst: [], src: [], value: [8, -0x8000, 0x7fff] },
  nonzero: { dst: [], src: [], value: [7, -1, 0x7fffffff] },
  shift32: { dst: [], src: [], value: [3, 0, 31] },
  shift64: { dst: [], src: [], value: [3, 0, 63] },
};
const IMM2 = [0x12345678, -1, 0];

function pick(spec: FieldSpec, k: number, pool: 'dst' | 'src' | 'value'): number {
  if (typeof spec === 'number') return spec;
  const p = POOLS[spec]!;
  const list = p[pool].length ? p[pool] : p.value;
  return list[k]!;
}

export function samplesOf(form: Form): Instruction[] {
  const out: Instruction[] = [];
  for (let k = 0; k < 3; k++) {
    const insn: Instruction = {
      opcode: form.opcode,
      dst: pick(form.dst, k, 'dst'),
      src: pick(form.src, k, 'src'),
      offset: pick(form.offset, k, 'value'),
      imm: pick(form.imm, k, 'value'),
    };
    if (form.opcode === 0x18) insn.imm2 = typeof form.imm2 === 'number' ? form.imm2 : IMM2[k]!;
    out.push(insn);
  }
  return out;
}

/** [form, sample] for every form. */
export const SAMPLES: ReadonlyArray<[Form, Instruction]> = FORMS.flatMap((f) => samplesOf(f).map((s) => [f, s] as [Form, Instruction]));
