// Labels: symbolic jump targets resolved to relative offsets once the layout is known.
//
// A jump written against a label carries the label in `reference` and a zero offset. resolve()
// measures the distance in slots (a 64-bit load is two) and writes it into the field the form
// jumps by: offset for goto/if, imm for gotol, local calls and ld_pseudo func loads.
// Jumps never leave their function, so an unknown label on a jump is an error; a local call or
// a function address may name a function elsewhere, so those stay symbolic for the linker.

import { slotOffsets, type Instruction } from './instruction.ts';
import { matchForm } from './table.ts';

/** A position marker in a list of instructions; see link(). */
export interface Label {
  label: string;
}

export const label = (name: string): Label => ({ label: name });
export const isLabel = (item: Instruction | Label): item is Label => 'label' in item;

export class LinkError extends Error {
  constructor(
    readonly index: number,
    readonly reason: string,
  ) {
    super(`insn ${index}: ${reason}`);
  }
}

/**
 * Fold Label markers into the instructions that follow them (the first label of an instruction
 * becomes its `symbol`) and resolve every jump to a label. Returns new instructions.
 */
export function link(items: ReadonlyArray<Instruction | Label>): Instruction[] {
  const insns: Instruction[] = [];
  const labels = new Map<string, number>();
  let pending: string[] = [];
  for (const item of items) {
    if (isLabel(item)) {
      if (labels.has(item.label)) throw new LinkError(insns.length, `label "${item.label}" defined twice`);
      labels.set(item.label, insns.length);
      pending.push(item.label);
      continue;
    }
    insns.push(pending.length && !item.symbol ? { ...item, symbol: pending[0] } : { ...item });
    pending = [];
  }
  if (pending.length) throw new LinkError(insns.length, `label "${pending[0]}" is not followed by an instruction`);
  return resolve(insns, labels);
}

/** How a form reaches its target, for the forms that can name a label. */
function jumpField(insn: Instruction): 'offset' | 'imm' | undefined {
  const form = matchForm(insn);
  if (form?.jump) return form.jump;
  if (form?.name === 'lddw_func') return 'imm';
  return undefined;
}

/**
 * Resolve label references. `labels` maps a label to an instruction index; without it, the
 * `symbol` of each instruction is its label.
 */
export function resolve(insns: readonly Instruction[], labels?: ReadonlyMap<string, number>): Instruction[] {
  const byName = new Map(labels ?? []);
  if (!labels) insns.forEach((insn, i) => insn.symbol !== undefined && byName.set(insn.symbol, i));
  const slots = slotOffsets(insns);
  return insns.map((insn, i) => {
    if (insn.reference === undefined) return insn;
    const field = jumpField(insn);
    if (!field) return insn; // a map, a global, a kfunc: the loader's business
    const target = byName.get(insn.reference);
    const name = matchForm(insn)?.name;
    const isJump = name !== 'call_local' && name !== 'lddw_func';
    if (target === undefined) {
      if (isJump) throw new LinkError(i, `jump to undefined label "${insn.reference}"`);
      return insn;
    }
    const distance = slots[target]! - slots[i]! - 1;
    if (field === 'offset' && (distance < -0x8000 || distance > 0x7fff)) {
      throw new LinkError(i, `label "${insn.reference}" is ${distance} slots away, beyond a 16-bit jump offset (use gotol)`);
    }
    const out: Instruction = { ...insn, [field]: distance };
    if (isJump) delete out.reference; // labels are local to the function; nothing left for the linker
    return out;
  });
}
