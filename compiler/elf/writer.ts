// ObjectSpec → ELF relocatable object, laid out as clang -target bpf does, so that libbpf
// (bpftool, iproute2 tc) and our reader load it:
//
//	[1]   .text          BPF-to-BPF functions (LOCAL FUNC symbols unless their BTF FUNC is global)
//	[2..] <prog section> one per distinct ProgramSpec.section ('tc', 'xdp', …); several programs
//	                     may share one, each a GLOBAL FUNC symbol at its byte offset
//	      .maps          zeroed; one GLOBAL OBJECT symbol per map, described by BTF
//	      license        "GPL\0", symbol LICENSE
//	      .rodata/.data/.bss…  one per global-data MapSpec; a SECTION symbol for relocations
//	      .BTF, .BTF.ext
//	      .rel<sec>…, .symtab, .strtab (added by encodeElf)
//
// Relocations, by kind (the instruction's imm is rewritten to clang's form):
//	map        ld_imm64, R_BPF_64_64 → map symbol                       imm 0
//	global     ld_imm64, R_BPF_64_64 → section symbol                   imm = offset in section
//	func_addr  ld_imm64 src=4, R_BPF_64_64 → function symbol            imm 0
//	call       call src=1, R_BPF_64_32 → function symbol                imm -1 (libbpf: sym + imm + 1)
//	kfunc      call src=1, R_BPF_64_32 → undefined GLOBAL NOTYPE symbol imm -1 (libbpf sets src=2)

import { encode, slotOffsets, isWide, INSN_SIZE, type Instruction } from '../asm/instruction.ts';
import { Class, JmpOp, CallSrc, PseudoSrc } from '../asm/opcode.ts';
import type { Btf } from '../btf/btf.ts';
import { emptyExt, encodeBtfWithExt, type BtfExt } from '../btf/ext.ts';
import { Linkage, type CoreRelo, type FuncInfo, type LineInfo } from '../btf/types.ts';
import { encodeElf, R_BPF, SHF, SHN_UNDEF, SHT, STB, STT, type OutRel, type OutSection, type OutSymbol } from './elf.ts';
import { fail, within } from './errors.ts';
import { completeGlobalSection, completeKsyms, completeMaps, objectBtf, syntheticFunc } from './object-btf.ts';
import type { FunctionSpec, ObjectSpec, ProgramSpec, Relocation } from './spec.ts';
import { concatBytes, copyBytes } from '../btf/bytes.ts';

const CALL_OPCODE = Class.JMP | JmpOp.CALL;

type Code = (ProgramSpec | FunctionSpec) & { section?: string };

interface CodeSection {
  name: string;
  members: Code[];
  starts: number[]; // byte offset of each member
  bytes: Buffer[];
}

export function writeObject(spec: ObjectSpec): Buffer {
  checkTypeIds(spec);
  const btf = objectBtf(spec);
  const sections: OutSection[] = [];
  const symbols: OutSymbol[] = [];
  const relocations = new Map<number, OutRel[]>();
  const ext: BtfExt = emptyExt();
  const addSection = (s: OutSection): number => sections.push(s); // 1-based section number

  // Code: .text first (libbpf finds subprograms there), then each program section.
  const code: CodeSection[] = [];
  if (spec.functions.length > 0) code.push({ name: '.text', members: [...spec.functions], starts: [], bytes: [] });
  for (const p of spec.programs) {
    if (p.section === '.text' || !p.section) fail(`program ${p.name}: needs a section other than .text`);
    const sec = code.find((c) => c.name === p.section);
    if (sec) sec.members.push(p);
    else code.push({ name: p.section, members: [p], starts: [], bytes: [] });
  }

  const funcSymbols = new Map<string, OutSymbol>();
  const codeIndex = new Map<CodeSection, number>();
  for (const sec of code) {
    const shndx = addSection({ name: sec.name, type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.EXECINSTR, align: 8, data: Buffer.alloc(0) });
    codeIndex.set(sec, shndx);
    let off = 0;
    for (const member of sec.members) {
      if (funcSymbols.has(member.name)) fail(`duplicate function or program name ${member.name}`);
      const size = slotOffsets(member.instructions)[member.instructions.length]! * INSN_SIZE;
      const isProgram = sec.name !== '.text';
      const sym: OutSymbol = {
        name: member.name,
        value: off,
        size,
        bind: isProgram || isGlobalFunc(btf, member) ? STB.GLOBAL : STB.LOCAL,
        type: STT.FUNC,
        shndx,
      };
      symbols.push(sym);
      funcSymbols.set(member.name, sym);
      sec.starts.push(off);
      off += size;
    }
  }

  const textIndex = code[0]?.name === '.text' ? codeIndex.get(code[0]) : undefined;

  // .maps and license.
  const mapSymbols = new Map<string, OutSymbol>();
  const btfMaps = spec.maps.filter((m) => m.section === undefined);
  if (btfMaps.length > 0) {
    const slots = completeMaps(btf, btfMaps);
    const size = slots.reduce((n, s) => Math.max(n, s.offset + s.size), 0);
    const shndx = addSection({ name: '.maps', type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.WRITE, align: 8, data: Buffer.alloc(size) });
    for (const s of slots) {
      const sym: OutSymbol = { name: s.map.name, value: s.offset, size: s.size, bind: STB.GLOBAL, type: STT.OBJECT, shndx };
      symbols.push(sym);
      mapSymbols.set(s.map.name, sym);
    }
  }
  const license = Buffer.from(spec.license + '\0', 'utf8');
  const licenseIndex = addSection({ name: 'license', type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.WRITE, align: 1, data: license });
  symbols.push({ name: 'LICENSE', value: 0, size: license.length, bind: STB.GLOBAL, type: STT.OBJECT, shndx: licenseIndex });

  // Global data: one section per map with a section; relocations go against its SECTION symbol.
  const globalSymbols = new Map<string, OutSymbol>();
  for (const map of spec.maps.filter((m) => m.section !== undefined)) {
    within(`section "${map.section}"`, () => {
      const name = map.section!;
      if (globalSymbols.has(name)) fail('two maps claim this section');
      const init = map.initialValue ?? Buffer.alloc(map.valueSize);
      if (init.length !== map.valueSize) fail(`initial value is ${init.length} bytes, valueSize is ${map.valueSize}`);
      const bss = name === '.bss' || name.startsWith('.bss.');
      const readOnly = name === '.rodata' || name.startsWith('.rodata.');
      const shndx = addSection({
        name,
        type: bss ? SHT.NOBITS : SHT.PROGBITS,
        flags: SHF.ALLOC | (readOnly ? 0 : SHF.WRITE),
        align: 8,
        data: bss ? Buffer.alloc(0) : copyBytes(init),
        size: map.valueSize,
      });
      const sym: OutSymbol = { name, value: 0, size: 0, bind: STB.LOCAL, type: STT.SECTION, shndx };
      symbols.push(sym);
      globalSymbols.set(name, sym);
      for (const v of spec.variables.filter((v) => v.section === name)) {
        if (v.offset + v.size > map.valueSize) fail(`variable ${v.name} [${v.offset}, +${v.size}) is outside the section`);
        symbols.push({ name: v.name, value: v.offset, size: v.size, bind: STB.GLOBAL, type: STT.OBJECT, shndx });
      }
      completeGlobalSection(btf, name, map.valueSize, spec.variables);
    });
  }

  // Instructions, relocations and .BTF.ext records, section by section.
  const kfuncSymbols = new Map<string, OutSymbol>();
  for (const sec of code) {
    const shndx = codeIndex.get(sec)!;
    const funcInfo: FuncInfo[] = [];
    const lineInfo: LineInfo[] = [];
    const coreRelos: CoreRelo[] = [];
    const rels: OutRel[] = [];
    sec.members.forEach((member, m) => {
      within(`section "${sec.name}"`, () =>
        within(`symbol ${member.name}`, () => {
          const base = sec.starts[m]!;
          const insns = member.instructions.map((i) => ({ ...i }));
          const slots = slotOffsets(insns);
          for (const r of member.relocations) {
            within(`insn ${r.insn}`, () =>
              within('relocating', () => {
                const insn = insns[r.insn] ?? fail(`no instruction ${r.insn} (${insns.length} instructions)`);
                const target = relocate(insn, r, { funcSymbols, mapSymbols, globalSymbols, kfuncSymbols, textIndex });
                rels.push({ offset: base + slots[r.insn]! * INSN_SIZE, symbol: target, type: insn.opcode === CALL_OPCODE ? R_BPF.R_64_32 : R_BPF.R_64_64 });
              }),
            );
          }
          sec.bytes.push(encode(insns));
          const fi = member.funcInfo.length > 0 ? member.funcInfo : [{ insnOff: 0, typeId: syntheticFunc(btf, member.name, sec.name !== '.text') }];
          for (const f of fi) funcInfo.push({ ...f, insnOff: base + f.insnOff });
          for (const l of member.lineInfo.length > 0 ? member.lineInfo : linesFromSource(member.instructions)) lineInfo.push({ ...l, insnOff: base + l.insnOff });
          for (const c of member.coreRelos ?? []) coreRelos.push({ ...c, insnOff: base + c.insnOff });
        }),
      );
    });
    sections[shndx - 1]!.data = concatBytes(sec.bytes);
    if (rels.length > 0) relocations.set(shndx, rels);
    ext.funcInfo.set(sec.name, funcInfo);
    ext.lineInfo.set(sec.name, lineInfo);
    ext.coreRelos.set(sec.name, coreRelos);
  }
  symbols.push(...kfuncSymbols.values());
  within('BTF', () => completeKsyms(btf, [...kfuncSymbols.keys()]));

  const encoded = within('BTF', () => encodeBtfWithExt(btf, ext));
  addSection({ name: '.BTF', type: SHT.PROGBITS, flags: 0, align: 4, data: encoded.btf });
  addSection({ name: '.BTF.ext', type: SHT.PROGBITS, flags: 0, align: 4, data: encoded.ext });
  return encodeElf({ sections, symbols, relocations });
}

interface SymbolTables {
  funcSymbols: Map<string, OutSymbol>;
  mapSymbols: Map<string, OutSymbol>;
  globalSymbols: Map<string, OutSymbol>;
  kfuncSymbols: Map<string, OutSymbol>;
  textIndex?: number; // section number of .text, when there are functions
}

/** Check the relocation fits its instruction, put the instruction in clang's form, return the target symbol. */
function relocate(insn: Instruction, r: Relocation, t: SymbolTables): OutSymbol {
  const needWide = (): void => {
    if (!isWide(insn)) fail(`${r.kind} relocation needs a 64-bit immediate load, found opcode 0x${insn.opcode.toString(16)}`);
  };
  const needCall = (): void => {
    if (insn.opcode !== CALL_OPCODE) fail(`${r.kind} relocation needs a call, found opcode 0x${insn.opcode.toString(16)}`);
  };
  switch (r.kind) {
    case 'map': {
      needWide();
      const sym = t.mapSymbols.get(r.symbol) ?? fail(`unknown map "${r.symbol}"`);
      insn.imm = 0;
      insn.imm2 = 0;
      return sym;
    }
    case 'global': {
      needWide();
      const sym = t.globalSymbols.get(r.symbol) ?? fail(`unknown global data section "${r.symbol}"`);
      insn.imm = r.offset ?? 0;
      insn.imm2 = 0;
      return sym;
    }
    case 'func_addr': {
      needWide();
      const sym = textFunction(t, r.symbol);
      insn.src = PseudoSrc.FUNC;
      insn.imm = 0;
      insn.imm2 = 0;
      return sym;
    }
    case 'call': {
      needCall();
      const sym = textFunction(t, r.symbol);
      insn.src = CallSrc.LOCAL;
      insn.imm = -1;
      return sym;
    }
    case 'kfunc': {
      needCall();
      let sym = t.kfuncSymbols.get(r.symbol);
      if (!sym) {
        sym = { name: r.symbol, value: 0, size: 0, bind: STB.GLOBAL, type: STT.NOTYPE, shndx: SHN_UNDEF };
        t.kfuncSymbols.set(r.symbol, sym);
      }
      insn.src = CallSrc.LOCAL; // clang's encoding of an extern call; libbpf rewrites it to src=2
      insn.imm = -1;
      return sym;
    }
  }
}

/** Calls and callbacks can only target .text: libbpf appends .text functions to each program. */
function textFunction(t: SymbolTables, name: string): OutSymbol {
  const sym = t.funcSymbols.get(name) ?? fail(`unknown function "${name}"`);
  if (t.textIndex === undefined || sym.shndx !== t.textIndex) fail(`"${name}" is a program, not a .text function`);
  return sym;
}

/** Type ids in the spec must point into its BTF; the writer appends types, so a dangling id would silently alias one. */
function checkTypeIds(spec: ObjectSpec): void {
  const count = spec.btf?.types.length ?? 1;
  const check = (what: string, id: number): void => {
    if (id >= count) fail(`${what} [${id}] is not in the spec's BTF (${count} types)`);
  };
  for (const m of spec.maps) {
    check(`map ${m.name}: key type`, m.keyTypeId);
    check(`map ${m.name}: value type`, m.valueTypeId);
  }
  for (const v of spec.variables) check(`variable ${v.name}: type`, v.typeId);
  for (const f of [...spec.programs, ...spec.functions]) for (const fi of f.funcInfo) check(`${f.name}: func_info type`, fi.typeId);
}

/** A FunctionSpec is global when its func_info FUNC says so (the kernel then verifies it alone). */
function isGlobalFunc(btf: Btf, f: Code): boolean {
  const first = f.funcInfo.find((fi) => fi.insnOff === 0);
  if (!first) return false;
  const t = btf.get(first.typeId);
  return t.kind === 'func' && t.linkage === Linkage.GLOBAL;
}

/** line_info from Instruction.source: one record where the source location changes. */
export function linesFromSource(insns: readonly Instruction[]): LineInfo[] {
  const out: LineInfo[] = [];
  const slots = slotOffsets(insns);
  let last: Instruction['source'];
  insns.forEach((insn, i) => {
    const s = insn.source;
    if (!s || (last && s.file === last.file && s.line === last.line && s.column === last.column)) return;
    out.push({ insnOff: slots[i]! * INSN_SIZE, fileName: s.file, lineText: s.text ?? '', line: s.line, column: s.column });
    last = s;
  });
  return out;
}
