// Relocation, in one place. Two passes per program, as libbpf's bpf_object__relocate does:
//   1. link: copy the program's instructions and append every .text function it calls (or takes
//      the address of), transitively, each once, in the order first referenced; rebase their
//      relocations, func_info and line_info to the combined program. Needs no kernel.
//   2. apply: rewrite each relocated instruction —
//	map        LD_IMM64 src=MAP_FD    imm = map fd
//	global     LD_IMM64 src=MAP_VALUE imm = fd of the section's map, imm2 = offset of the variable
//	call       CALL src=1             imm = callee start − (call + 1), in slots
//	func_addr  LD_IMM64 src=FUNC      imm = callee start − (insn + 1), in slots
//	kfunc      CALL src=2             imm = vmlinux BTF id, offset = 0 (vmlinux, not a module)
// Instruction numbers in func_info/line_info and in the verifier log are slots (an LD_IMM64
// takes two), so every offset below is converted once, by slotOffsets().
import { INSN_SIZE, slotOffsets, type Instruction } from '../../compiler/asm/instruction.ts';
import { CallSrc, PseudoSrc } from '../../compiler/asm/opcode.ts';
import type { LineInfo } from '../../compiler/btf/types.ts';
import type { FunctionSpec, ObjectSpec, ProgramSpec, Relocation } from '../../compiler/elf/spec.ts';
import { linesFromSource } from '../../compiler/elf/writer.ts';
import { LoaderError, type SourcePosition, within } from './errors.ts';

/** A function of the linked program: where it starts (instruction index and slot). */
export interface LinkedUnit {
  name: string;
  insn: number;
  slot: number;
  /** BTF FUNC id for func_info; 0 when the object has none for it. */
  funcTypeId: number;
  /** Line info with insnOff in bytes from this unit's start (as in the spec). */
  lineInfo: LineInfo[];
}

export interface LinkedProgram {
  name: string;
  instructions: Instruction[];
  /** Relocations with `insn` as an index into `instructions`. */
  relocations: Relocation[];
  units: LinkedUnit[];
}

/** Pass 1: the program with its callees appended. `funcType` names the BTF FUNC of a unit that
 *  has no func_info of its own (synthesised by the BTF stage); it may return 0. */
export function linkProgram(spec: ObjectSpec, program: ProgramSpec, funcType: (name: string) => number = () => 0): LinkedProgram {
  const functions = new Map(spec.functions.map((f) => [f.name, f]));
  const instructions: Instruction[] = [];
  const relocations: Relocation[] = [];
  const units: LinkedUnit[] = [];
  const placed = new Set<string>();
  const append = (code: ProgramSpec | FunctionSpec): void => {
    const base = instructions.length;
    placed.add(code.name);
    for (const insn of code.instructions) instructions.push({ ...insn, source: insn.source && { ...insn.source } });
    const lineInfo = code.lineInfo.length > 0 ? code.lineInfo : linesFromSource(code.instructions);
    units.push({ name: code.name, insn: base, slot: 0, funcTypeId: code.funcInfo[0]?.typeId ?? funcType(code.name), lineInfo });
    for (const r of code.relocations) relocations.push({ ...r, insn: r.insn + base });
  };
  append(program);
  // Relocations grow as callees are appended; walk them until every callee is placed.
  for (let i = 0; i < relocations.length; i++) {
    const r = relocations[i]!;
    if (r.kind !== 'call' && r.kind !== 'func_addr') continue;
    if (placed.has(r.symbol)) continue;
    const callee = functions.get(r.symbol);
    if (!callee) {
      if (r.symbol === program.name) continue; // recursion into the program itself
      throw new LoaderError(`insn ${r.insn}: relocating: call to unknown function ${r.symbol}`);
    }
    append(callee);
  }
  const slots = slotOffsets(instructions);
  for (const u of units) u.slot = slots[u.insn]!;
  return { name: program.name, instructions, relocations, units };
}

export interface RelocationTargets {
  mapFd(name: string): number;
  /** The fd of the global-data map of `section` (.rodata, .data, .bss, …). */
  globalFd(section: string): number;
  kfuncId(name: string): number;
}

/** Pass 2: rewrite every relocated instruction of a linked program. */
export function applyRelocations(linked: LinkedProgram, targets: RelocationTargets): void {
  const slots = slotOffsets(linked.instructions);
  const startSlot = new Map(linked.units.map((u) => [u.name, u.slot]));
  for (const r of linked.relocations) {
    within(`insn ${r.insn}`, () =>
      within('relocating', () => {
        const insn = linked.instructions[r.insn];
        if (!insn) throw new LoaderError(`relocation past the end of the program (${linked.instructions.length} instructions)`);
        switch (r.kind) {
          case 'map':
            Object.assign(insn, { src: PseudoSrc.MAP_FD, imm: targets.mapFd(r.symbol), imm2: 0 });
            break;
          case 'global':
            Object.assign(insn, { src: PseudoSrc.MAP_VALUE, imm: targets.globalFd(r.symbol), imm2: r.offset ?? 0 });
            break;
          case 'call':
          case 'func_addr': {
            const target = startSlot.get(r.symbol);
            if (target === undefined) throw new LoaderError(`function ${r.symbol} was not linked`);
            insn.imm = target - (slots[r.insn]! + 1);
            insn.src = r.kind === 'call' ? CallSrc.LOCAL : PseudoSrc.FUNC;
            break;
          }
          case 'kfunc':
            Object.assign(insn, { src: CallSrc.KFUNC, imm: targets.kfuncId(r.symbol), offset: 0 });
            break;
        }
      }),
    );
  }
}

export interface ExtInfo {
  /** struct bpf_func_info records, insn_off in slots; null when some unit has no FUNC. */
  funcInfo: Buffer | null;
  /** struct bpf_line_info records; null when there is no line info at all. */
  lineInfo: Buffer | null;
  /** Slot → source position, for mapping verifier messages back to source. */
  lines: { slot: number; position: SourcePosition }[];
}

/**
 * func_info and line_info for BPF_PROG_LOAD. The kernel wants a FUNC for every subprogram or
 * none, and, once line info is given, a line record at each subprogram's first instruction
 * ("missing bpf_line_info for func#N"): a unit without one gets an empty record there.
 * `strings` adds a string to the BTF string section the program's BTF is loaded with.
 */
export function extInfo(linked: LinkedProgram, strings: ((s: string) => number) | null): ExtInfo {
  const lines: ExtInfo['lines'] = [];
  for (const u of linked.units) {
    for (const l of u.lineInfo) {
      lines.push({ slot: u.slot + l.insnOff / INSN_SIZE, position: { file: l.fileName, line: l.line, column: l.column, text: l.lineText } });
    }
  }
  lines.sort((a, b) => a.slot - b.slot);
  if (!strings) return { funcInfo: null, lineInfo: null, lines };

  let funcInfo: Buffer | null = null;
  if (linked.units.every((u) => u.funcTypeId > 0)) {
    funcInfo = Buffer.alloc(8 * linked.units.length);
    [...linked.units].sort((a, b) => a.slot - b.slot).forEach((u, i) => {
      funcInfo!.writeUInt32LE(u.slot, 8 * i); //         insn_off
      funcInfo!.writeUInt32LE(u.funcTypeId, 8 * i + 4); // type_id
    });
  }
  let lineInfo: Buffer | null = null;
  if (lines.length > 0 && funcInfo) {
    const records = new Map<number, SourcePosition>();
    for (const l of lines) if (!records.has(l.slot)) records.set(l.slot, l.position);
    for (const u of linked.units) if (!records.has(u.slot)) records.set(u.slot, { file: '', line: 0, column: 0, text: '' });
    const sorted = [...records].sort(([a], [b]) => a - b);
    lineInfo = Buffer.alloc(16 * sorted.length);
    sorted.forEach(([slot, p], i) => {
      lineInfo!.writeUInt32LE(slot, 16 * i); //                  insn_off
      lineInfo!.writeUInt32LE(strings(p.file), 16 * i + 4); //   file_name_off
      lineInfo!.writeUInt32LE(strings(p.text), 16 * i + 8); //   line_off
      // line_col: line << 10 | column (linux/bpf.h BPF_LINE_INFO_LINE_NUM / _LINE_COL)
      lineInfo!.writeUInt32LE(((Math.min(p.line, (1 << 22) - 1) << 10) | Math.min(p.column, 1023)) >>> 0, 16 * i + 12);
    });
  }
  return { funcInfo, lineInfo, lines };
}

/** The source position of slot `slot`: the last line record at or before it within the program. */
export function positionOf(lines: ExtInfo['lines'], slot: number): SourcePosition | undefined {
  let best: SourcePosition | undefined;
  for (const l of lines) {
    if (l.slot > slot) break;
    if (l.position.file || l.position.line) best = l.position;
  }
  return best;
}
