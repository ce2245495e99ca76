// ELF bytes → ObjectSpec, for objects from our writer and from clang -target bpf. Passes:
//   1. parse sections, symbols and REL entries (elf.ts); decode .BTF and .BTF.ext;
//   2. fix up DATASECs as libbpf does (clang leaves their sizes and VAR offsets zero);
//   3. maps: BTF-defined from .maps, legacy struct bpf_map_def from "maps", and one per
//      global-data section (.rodata*, .data*, .bss*) with its initial value and variables;
//   4. code: split each executable section at its FUNC symbols — .text into FunctionSpecs, the
//      others into ProgramSpecs — with func/line info and CO-RE records rebased to each function;
//   5. relocations: classify each REL entry (and each unrelocated local call) by its instruction
//      and target symbol, and put the instruction in canonical form (see normalize()).

import { readFile } from 'node:fs/promises';
import { decode, slotOffsets, isWide, INSN_SIZE, type Instruction } from '../asm/instruction.ts';
import { CallSrc, Class, JmpOp, PseudoSrc } from '../asm/opcode.ts';
import type { Btf } from '../btf/btf.ts';
import { parseMapDefinition } from '../btf/builders.ts';
import { decodeBtfWithExt, emptyExt, type BtfExt } from '../btf/ext.ts';
import { copyBytes } from '../btf/bytes.ts';
import { Linkage, type BtfType } from '../btf/types.ts';
import { parseElf, SHF, SHN_UNDEF, SHT, STT, type ElfFile, type ElfSection, type ElfSymbol } from './elf.ts';
import { fail, within } from './errors.ts';
import { sectionDef } from './sections.ts';
import type { FunctionSpec, MapSpec, ObjectSpec, Relocation, VariableSpec } from './spec.ts';

const CALL_OPCODE = Class.JMP | JmpOp.CALL;
const BPF_MAP_TYPE_ARRAY = 2;
const BPF_F_RDONLY_PROG = 1 << 7;
const LEGACY_MAP_DEF_SIZE = 20; // struct bpf_map_def: type, key_size, value_size, max_entries, map_flags

type Datasec = Extract<BtfType, { kind: 'datasec' }>;

export function readObject(bytes: Buffer): ObjectSpec {
  const elf = parseElf(bytes);
  const byName = (name: string): ElfSection | undefined => elf.sections.find((s) => s.name === name);
  const btfSection = byName('.BTF');
  const { btf, ext } = btfSection
    ? within('BTF', () => decodeBtfWithExt(btfSection.data, byName('.BTF.ext')?.data))
    : { btf: undefined, ext: emptyExt() };
  if (btf) within('BTF', () => fixupDatasecs(btf, elf));

  const license = byName('license')?.data;
  const spec: ObjectSpec = {
    license: license ? license.toString('utf8').replace(/\0.*$/s, '') : '',
    programs: [],
    functions: [],
    maps: [],
    variables: [],
    btf,
  };
  const mapAt = new Map<string, string>(); // "shndx:offset" → map name
  readBtfMaps(elf, btf, spec, mapAt);
  readLegacyMaps(elf, spec, mapAt);
  readGlobalData(elf, btf, spec);

  const text = byName('.text');
  for (const sec of elf.sections) {
    if (sec.type !== SHT.PROGBITS || !(sec.flags & SHF.EXECINSTR)) continue;
    within(`section "${sec.name}"`, () => {
      const isText = sec === text;
      const def = isText ? undefined : (sectionDef(sec.name) ?? fail('unknown program type (not a libbpf section name)'));
      for (const f of splitFunctions(elf, sec, ext)) {
        within(`symbol ${f.name}`, () => relocateFunction(elf, sec, f, text, mapAt));
        if (isText) spec.functions.push({ name: f.name, ...withoutMeta(f) });
        else spec.programs.push({ name: f.name, section: sec.name, progType: def!.progType, attachType: def!.attachType, sleepable: def!.sleepable, ...withoutMeta(f) });
      }
    });
  }
  return spec;
}

/** Read an object file; errors are prefixed with its path. */
export async function readObjectFile(path: string): Promise<ObjectSpec> {
  const bytes = await readFile(path);
  return within(path, () => readObject(bytes));
}

interface FunctionAt extends FunctionSpec {
  start: number; // byte offset in its section
  slots: number[];
}

const withoutMeta = ({ start: _s, slots: _o, name: _n, ...rest }: FunctionAt): Omit<FunctionSpec, 'name'> => rest;

/** libbpf's btf_fixup_datasec: DATASEC size from the ELF section, VAR offsets from symbols. */
function fixupDatasecs(btf: Btf, elf: ElfFile): void {
  for (const t of btf.types) {
    if (t.kind !== 'datasec' || t.name === '.ksyms' || t.name === '.kconfig') continue;
    const sec = elf.sections.find((s) => s.name === t.name);
    if (!sec) continue; // e.g. an empty section the compiler dropped
    if (t.size === 0) t.size = sec.size;
    for (const v of t.vars) {
      const varType = btf.get(v.type);
      if (varType.kind !== 'var') continue;
      const sym = elf.symbols.find((s) => s.shndx === sec.index && s.name === varType.name && s.type === STT.OBJECT);
      if (sym) v.offset = sym.value;
      else if (varType.linkage !== Linkage.STATIC) fail(`DATASEC ${t.name}: no symbol for variable ${varType.name}`);
    }
  }
}

function readBtfMaps(elf: ElfFile, btf: Btf | undefined, spec: ObjectSpec, mapAt: Map<string, string>): void {
  const sec = elf.sections.find((s) => s.name === '.maps');
  if (!sec) return;
  within('section ".maps"', () => {
    if (!btf) fail('BTF-defined maps need a .BTF section');
    const datasecId = btf!.find('.maps', 'datasec') ?? fail('no DATASEC .maps in BTF');
    const datasec = btf!.get(datasecId) as Datasec;
    const symbols = elf.symbols.filter((s) => s.shndx === sec.index && s.type === STT.OBJECT).sort((a, b) => a.value - b.value);
    for (const sym of symbols) {
      within(`map ${sym.name}`, () => {
        const v = datasec.vars.find((v) => btf!.nameOf(v.type) === sym.name) ?? fail('not in DATASEC .maps');
        const def = parseMapDefinition(btf!, v.type);
        spec.maps.push({ name: sym.name, ...def });
        mapAt.set(`${sec.index}:${sym.value}`, sym.name);
      });
    }
  });
}

/** The pre-BTF "maps" section of struct bpf_map_def; still emitted by old toolchains. */
function readLegacyMaps(elf: ElfFile, spec: ObjectSpec, mapAt: Map<string, string>): void {
  const sec = elf.sections.find((s) => s.name === 'maps');
  if (!sec) return;
  within('section "maps"', () => {
    for (const sym of elf.symbols.filter((s) => s.shndx === sec.index && s.type !== STT.SECTION)) {
      within(`map ${sym.name}`, () => {
        if (sym.value + LEGACY_MAP_DEF_SIZE > sec.data.length) fail('struct bpf_map_def runs past the section');
        const u32 = (i: number): number => sec.data.readUInt32LE(sym.value + 4 * i);
        spec.maps.push({ name: sym.name, type: u32(0), keySize: u32(1), valueSize: u32(2), maxEntries: u32(3), flags: u32(4), pinning: 0, keyTypeId: 0, valueTypeId: 0 });
        mapAt.set(`${sec.index}:${sym.value}`, sym.name);
      });
    }
  });
}

const isGlobalData = (s: ElfSection): boolean =>
  (s.type === SHT.PROGBITS || s.type === SHT.NOBITS) &&
  (s.flags & SHF.ALLOC) !== 0 &&
  (s.flags & SHF.EXECINSTR) === 0 &&
  /^\.(data|rodata|bss)(\..*)?$/.test(s.name);

function readGlobalData(elf: ElfFile, btf: Btf | undefined, spec: ObjectSpec): void {
  for (const sec of elf.sections.filter(isGlobalData)) {
    const readOnly = sec.name.startsWith('.rodata');
    const datasecId = btf?.find(sec.name, 'datasec');
    const map: MapSpec = {
      name: sec.name,
      type: BPF_MAP_TYPE_ARRAY,
      keySize: 4,
      valueSize: sec.size,
      maxEntries: 1,
      flags: readOnly ? BPF_F_RDONLY_PROG : 0,
      pinning: 0,
      keyTypeId: 0,
      valueTypeId: datasecId ?? 0,
      section: sec.name,
      initialValue: sec.type === SHT.NOBITS ? Buffer.alloc(sec.size) : copyBytes(sec.data),
      readOnly,
    };
    spec.maps.push(map);
    const vars: VariableSpec[] = [];
    if (datasecId !== undefined) {
      for (const v of (btf!.get(datasecId) as Datasec).vars) {
        const t = btf!.get(v.type);
        if (t.kind === 'var') vars.push({ name: t.name, section: sec.name, offset: v.offset, size: v.size, typeId: t.type });
      }
    } else {
      for (const s of elf.symbols) {
        if (s.shndx === sec.index && s.type === STT.OBJECT) vars.push({ name: s.name, section: sec.name, offset: s.value, size: s.size, typeId: 0 });
      }
    }
    spec.variables.push(...vars.sort((a, b) => a.offset - b.offset));
  }
}

/** Cut a code section at its FUNC symbols; attach .BTF.ext records and source locations. */
function splitFunctions(elf: ElfFile, sec: ElfSection, ext: BtfExt): FunctionAt[] {
  if (sec.size === 0) return []; // clang always emits .text, often empty
  if (sec.size % INSN_SIZE !== 0) fail(`size ${sec.size} is not a multiple of ${INSN_SIZE}`);
  const syms = elf.symbols.filter((s) => s.shndx === sec.index && s.type === STT.FUNC).sort((a, b) => a.value - b.value);
  if (syms.length === 0) fail('code without a FUNC symbol');
  if (syms[0]!.value !== 0) fail(`code before the first function ${syms[0]!.name}`);
  const funcInfo = ext.funcInfo.get(sec.name) ?? [];
  const lineInfo = ext.lineInfo.get(sec.name) ?? [];
  const coreRelos = ext.coreRelos.get(sec.name) ?? [];
  return syms.map((sym, i) =>
    within(`symbol ${sym.name}`, () => {
      const start = sym.value;
      const end = i + 1 < syms.length ? syms[i + 1]!.value : sec.size;
      const instructions = decode(new Uint8Array(sec.data.buffer, sec.data.byteOffset + start, end - start));
      const slots = slotOffsets(instructions);
      const slotToInsn = new Map(slots.map((s, idx) => [s * INSN_SIZE, idx]));
      const inRange = <T extends { insnOff: number }>(recs: T[]): T[] =>
        recs.filter((r) => r.insnOff >= start && r.insnOff < end).map((r) => ({ ...r, insnOff: r.insnOff - start }));
      const lines = inRange(lineInfo);
      for (const l of lines) {
        const idx = slotToInsn.get(l.insnOff) ?? fail(`line_info at byte ${l.insnOff} is inside an instruction`);
        instructions[idx]!.source = { file: l.fileName, line: l.line, column: l.column, text: l.lineText };
      }
      if (instructions.length > 0) instructions[0]!.symbol = sym.name;
      const f: FunctionAt = { name: sym.name, instructions, relocations: [], funcInfo: inRange(funcInfo), lineInfo: lines, start, slots };
      const core = inRange(coreRelos);
      if (core.length > 0) f.coreRelos = core;
      return f;
    }),
  );
}

/**
 * Turn REL entries into Relocations and put each relocated instruction in canonical form:
 *	map: src=MAP_FD imm=0 · global: src=MAP_VALUE imm=0, offset in the Relocation ·
 *	call: src=1 imm=-1 · func_addr: src=FUNC imm=0 · kfunc: src=KFUNC imm=-1.
 */
function relocateFunction(elf: ElfFile, sec: ElfSection, f: FunctionAt, text: ElfSection | undefined, mapAt: Map<string, string>): void {
  const end = f.start + f.slots[f.instructions.length]! * INSN_SIZE;
  const byInsn = new Map<number, Relocation>();
  const insnAt = (byteOff: number): number => {
    const idx = f.slots.indexOf((byteOff - f.start) / INSN_SIZE);
    return idx >= 0 ? idx : fail(`relocation at byte ${byteOff} is inside an instruction`);
  };
  for (const rel of elf.relocations.get(sec.index) ?? []) {
    if (rel.offset < f.start || rel.offset >= end) continue;
    const idx = insnAt(rel.offset);
    within(`insn ${idx}`, () =>
      within('relocating', () => {
        const insn = f.instructions[idx]!;
        const sym = elf.symbols[rel.symbol] ?? fail(`symbol index ${rel.symbol} out of range`);
        byInsn.set(idx, classify(elf, insn, sym, text, mapAt));
      }),
    );
  }
  // Local calls clang resolved itself (no REL entry): only possible within one section.
  f.instructions.forEach((insn, idx) => {
    if (byInsn.has(idx) || insn.opcode !== CALL_OPCODE || insn.src !== CallSrc.LOCAL) return;
    within(`insn ${idx}`, () => {
      if (sec !== text) fail('BPF-to-BPF call into a program section (only .text functions are supported)');
      const target = f.start + (f.slots[idx]! + insn.imm + 1) * INSN_SIZE;
      byInsn.set(idx, { insn: idx, kind: 'call', symbol: functionAt(elf, sec, target) });
    });
  });
  f.relocations = [...byInsn.entries()].sort(([a], [b]) => a - b).map(([idx, r]) => ({ ...r, insn: idx }));
  for (const r of f.relocations) normalize(f.instructions[r.insn]!, r);
}

function classify(elf: ElfFile, insn: Instruction, sym: ElfSymbol, text: ElfSection | undefined, mapAt: Map<string, string>): Relocation {
  const base = { insn: 0 };
  if (sym.shndx === SHN_UNDEF) {
    if (insn.opcode === CALL_OPCODE) return { ...base, kind: 'kfunc', symbol: sym.name };
    return fail(`extern variable ${sym.name} (__ksym/__kconfig variables) is not supported`);
  }
  const target = elf.sections[sym.shndx] ?? fail(`symbol ${sym.name}: section ${sym.shndx} out of range`);
  if (insn.opcode === CALL_OPCODE) {
    if (insn.src !== CallSrc.LOCAL) fail(`call relocation on a call with src=${insn.src}`);
    if (target !== text) fail(`call into section "${target.name}": only .text functions can be called`);
    return { ...base, kind: 'call', symbol: functionAt(elf, target, sym.value + (insn.imm + 1) * INSN_SIZE) };
  }
  if (!isWide(insn)) fail(`relocation against ${sym.name} on opcode 0x${insn.opcode.toString(16)}, not a 64-bit immediate load or call`);
  if (target === text) {
    // clang emits the address of a static function (a bpf_loop callback) as a plain 64-bit load
    // (src 0) against .text; libbpf turns it into src=BPF_PSEUDO_FUNC, and so do we.
    if (insn.src !== PseudoSrc.FUNC && insn.src !== PseudoSrc.IMM64) fail(`reference to .text function with src=${insn.src}, not BPF_PSEUDO_FUNC`);
    return { ...base, kind: 'func_addr', symbol: functionAt(elf, target, sym.value + insn.imm) };
  }
  const mapKey = `${target.index}:${sym.value + (sym.type === STT.SECTION ? insn.imm : 0)}`;
  if (target.name === '.maps' || target.name === 'maps') {
    return { ...base, kind: 'map', symbol: mapAt.get(mapKey) ?? fail(`unknown map "${sym.name}" at ${target.name}+${mapKey.split(':')[1]}`) };
  }
  if (isGlobalData(target)) return { ...base, kind: 'global', symbol: target.name, offset: sym.value + insn.imm };
  return fail(`symbol ${sym.name} in section "${target.name}" is neither a map, global data nor a function`);
}

/** The FUNC symbol starting at `offset` in `sec`. */
function functionAt(elf: ElfFile, sec: ElfSection, offset: number): string {
  const sym = elf.symbols.find((s) => s.shndx === sec.index && s.type === STT.FUNC && s.value === offset);
  return sym?.name ?? fail(`no function at ${sec.name}+${offset}`);
}

function normalize(insn: Instruction, r: Relocation): void {
  insn.reference = r.symbol;
  switch (r.kind) {
    case 'map':
      Object.assign(insn, { src: PseudoSrc.MAP_FD, imm: 0, imm2: 0 });
      break;
    case 'global':
      Object.assign(insn, { src: PseudoSrc.MAP_VALUE, imm: 0, imm2: 0 });
      break;
    case 'func_addr':
      Object.assign(insn, { src: PseudoSrc.FUNC, imm: 0, imm2: 0 });
      break;
    case 'call':
      Object.assign(insn, { src: CallSrc.LOCAL, imm: -1 });
      break;
    case 'kfunc':
      Object.assign(insn, { src: CallSrc.KFUNC, imm: -1 });
      break;
  }
}
