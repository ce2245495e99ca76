// Running programs in the VM: from an ObjectSpec (loadObject, libbpf's stages in miniature —
// create maps, link and relocate each program, validate) or from bare instructions
// (runInstructions, for tests and the conformance plugin).
//
// Linking appends every function a program reaches through 'call' and 'func_addr'
// relocations, once, after the program (libbpf's order), then patches call offsets; map,
// global and kfunc relocations are resolved while the code is built (program.ts).

import type { Instruction } from '../../compiler/asm/instruction.ts';
import { slotOffsets } from '../../compiler/asm/instruction.ts';
import { CallSrc, PseudoSrc } from '../../compiler/asm/opcode.ts';
import type { ObjectSpec, ProgramSpec, Relocation } from '../../compiler/elf/spec.ts';
import { bpf_prog_type as P } from '../sys/constants.ts';
import { VmLoadError } from './errors.ts';
import { helpers } from './helpers.ts';
import { kfuncs } from './kfuncs.ts';
import { Machine, type ContextKind, type MachineOptions, type RunOptions, type RunResult } from './machine.ts';
import { ArrayMap, createMap, type VmMap } from './maps.ts';
import { address } from './memory.ts';
import { buildCode, type Code, type LinkResolver } from './program.ts';

/** The context a program type runs with. */
export function contextKind(progType: number, section = ''): ContextKind {
  switch (progType) {
    case P.BPF_PROG_TYPE_SCHED_CLS:
    case P.BPF_PROG_TYPE_SCHED_ACT:
    case P.BPF_PROG_TYPE_SOCKET_FILTER:
      return 'tc';
    case P.BPF_PROG_TYPE_XDP:
      return 'xdp';
    case P.BPF_PROG_TYPE_SYSCALL:
      return 'syscall';
  }
  if (/^(tc|tcx|classifier|action|socket)\b/.test(section)) return 'tc';
  if (section.startsWith('xdp')) return 'xdp';
  if (section.startsWith('syscall')) return 'syscall';
  return 'memory';
}

interface Linked {
  insns: Instruction[];
  /** Relocations re-indexed to the linked instructions. */
  relocations: Map<number, Relocation>;
}

/** A program with the functions it calls appended, call and func_addr offsets patched. */
export function link(spec: ObjectSpec, program: ProgramSpec): Linked {
  const insns = program.instructions.map((i) => ({ ...i }));
  const relocations: Relocation[] = program.relocations.map((r) => ({ ...r }));
  const start = new Map<string, number>([[program.name, 0]]);
  for (let r = 0; r < relocations.length; r++) {
    const rel = relocations[r]!;
    if ((rel.kind !== 'call' && rel.kind !== 'func_addr') || start.has(rel.symbol)) continue;
    const fn = spec.functions.find((f) => f.name === rel.symbol) ?? spec.programs.find((p) => p.name === rel.symbol);
    if (!fn) throw new VmLoadError(`program ${program.name}: insn ${rel.insn}: relocating: unknown function "${rel.symbol}"`);
    const base = insns.length;
    start.set(fn.name, base);
    insns.push(...fn.instructions.map((i) => ({ ...i })));
    relocations.push(...fn.relocations.map((x) => ({ ...x, insn: x.insn + base })));
  }
  const offs = slotOffsets(insns);
  const byInsn = new Map<number, Relocation>();
  for (const rel of relocations) {
    byInsn.set(rel.insn, rel);
    if (rel.kind !== 'call' && rel.kind !== 'func_addr') continue;
    const insn = insns[rel.insn];
    if (!insn) throw new VmLoadError(`program ${program.name}: relocation for insn ${rel.insn} past the end`);
    // Both are pc-relative in slots: target = pc + imm + 1.
    insn.imm = offs[start.get(rel.symbol)!]! - offs[rel.insn]! - 1;
    insn.src = rel.kind === 'call' ? CallSrc.LOCAL : PseudoSrc.FUNC;
  }
  return { insns, relocations: byInsn };
}

export interface LoadedProgram {
  readonly spec: ProgramSpec;
  readonly code: Code;
  readonly kind: ContextKind;
}

/** An ObjectSpec loaded into a VM: its maps, and its programs ready to run. */
export class VmObject {
  readonly machine: Machine;
  readonly maps = new Map<string, VmMap>();
  readonly programs = new Map<string, LoadedProgram>();

  constructor(readonly spec: ObjectSpec, options: MachineOptions = {}) {
    this.machine = new Machine(options);
    for (const def of spec.maps) {
      const map = createMap({ ...def, spinLock: hasSpinLock(spec, def.valueTypeId) });
      if (def.initialValue && map instanceof ArrayMap) map.values[0]!.set(def.initialValue.subarray(0, def.valueSize));
      if (def.readOnly) map.frozen = true;
      this.maps.set(def.name, map);
    }
    for (const program of spec.programs) {
      const linked = link(spec, program);
      const code = buildCode(this.machine, program.name, linked.insns, this.resolver(program, linked.relocations));
      this.programs.set(program.name, { spec: program, code, kind: contextKind(program.progType, program.section) });
    }
  }

  map(name: string): VmMap {
    const map = this.maps.get(name);
    if (!map) throw new Error(`no map "${name}" (have ${[...this.maps.keys()].join(', ') || 'none'})`);
    return map;
  }

  program(name: string): LoadedProgram {
    const program = this.programs.get(name);
    if (!program) throw new Error(`no program "${name}" (have ${[...this.programs.keys()].join(', ') || 'none'})`);
    return program;
  }

  /** BPF_PROG_TEST_RUN in the VM. */
  runProgram(name: string, options: RunOptions = {}): RunResult {
    const program = this.program(name);
    return this.machine.runCode(program.code, program.kind, options);
  }

  private resolver(program: ProgramSpec, relocations: Map<number, Relocation>): LinkResolver {
    const where = (i: number) => `program ${program.name}: insn ${i}`;
    return {
      wide: (insn, i) => {
        const rel = relocations.get(i);
        if (!rel && insn.src === 0 && insn.reference === undefined) return undefined;
        const symbol = rel?.symbol ?? insn.reference;
        if (!symbol) return `${where(i)}: 64-bit load of kind ${insn.src} without a relocation`;
        const kind = rel?.kind ?? (insn.src === PseudoSrc.MAP_VALUE ? 'global' : 'map');
        const map = this.maps.get(symbol) ?? [...this.maps.values()].find((m) => this.spec.maps.find((d) => d.name === m.name)?.section === symbol);
        if (!map) return `${where(i)}: relocating: unknown map "${symbol}"`;
        if (kind === 'map') return this.machine.mapPointer(map);
        if (!(map instanceof ArrayMap)) return `${where(i)}: relocating: "${symbol}" is not global data`;
        const offset = rel?.offset ?? insn.imm2 ?? 0;
        const region = this.machine.memory.regionOf(map.values[0]!, 'global', symbol, !map.frozen);
        return address(region, offset);
      },
      helper: (id) => helpers.get(id),
      kfunc: (insn, i) => {
        const name = relocations.get(i)?.symbol ?? insn.reference;
        if (!name) return `${where(i)}: kfunc call without a name (BTF id ${insn.imm})`;
        return kfuncs.get(name) ?? `${where(i)}: kfunc ${name} is not provided by the VM`;
      },
    };
  }
}

/** The map value is a struct with a top-level struct bpf_spin_lock member (the kernel's btf_record). */
function hasSpinLock(spec: ObjectSpec, valueTypeId: number): boolean {
  const btf = spec.btf;
  if (!btf || !valueTypeId) return false;
  try {
    const value = btf.get(btf.resolve(valueTypeId));
    if (value.kind !== 'struct') return false;
    return value.members.some((m) => {
      const t = btf.get(btf.resolve(m.type));
      return t.kind === 'struct' && t.name === 'bpf_spin_lock';
    });
  } catch {
    return false;
  }
}

export function loadObject(spec: ObjectSpec, options: MachineOptions = {}): VmObject {
  return new VmObject(spec, options);
}

export interface RunInstructionsOptions extends RunOptions, MachineOptions {
  /** The context: 'memory' (r1 = packet bytes, r2 = length; the default), 'tc', 'xdp', 'syscall'. */
  kind?: ContextKind;
  /** Maps for LD_IMM64: by fd (src=1/2, imm = fd) or by name (insn.reference, e.g. `r1 = my_map ll`). */
  maps?: ReadonlyMap<number | string, VmMap>;
  /** Run on this machine instead of a fresh one (to keep map and trace state between runs). */
  machine?: Machine;
}

/** Validate and run bare instructions. Maps are reached by fd (options.maps), kfuncs by insn.reference. */
export function runInstructions(insns: readonly Instruction[], options: RunInstructionsOptions = {}): RunResult {
  const machine = options.machine ?? new Machine(options);
  const code = buildCode(machine, '', insns, {
    wide: (insn) => {
      if (insn.src === 0 && insn.reference === undefined) return undefined;
      const key = insn.reference ?? insn.imm;
      const map = options.maps?.get(key);
      if (insn.reference === undefined && insn.src !== PseudoSrc.MAP_FD && insn.src !== PseudoSrc.MAP_VALUE) return `64-bit load of kind ${insn.src} is not supported by the VM`;
      if (!map) return typeof key === 'string' ? `no map "${key}"` : `no map with fd ${key}`;
      if (insn.src !== PseudoSrc.MAP_VALUE) return machine.mapPointer(map);
      if (!(map instanceof ArrayMap)) return `map ${map.name} is not an array`;
      return address(machine.memory.regionOf(map.values[0]!, 'map_value', `${map.name} value`, !map.frozen), insn.imm2 ?? 0);
    },
    helper: (id) => helpers.get(id),
    kfunc: (insn) => (insn.reference ? (kfuncs.get(insn.reference) ?? `kfunc ${insn.reference} is not provided by the VM`) : `kfunc call without a name (BTF id ${insn.imm})`),
  });
  return machine.runCode(code, options.kind ?? 'memory', options);
}
