// ELF64 little-endian relocatable objects, only as much as BPF objects need (System V gABI).
//
// File layout as written here (readers follow the offsets, so any order parses):
//	+------------+------------------------------+-------------------------+
//	| ELF header | section contents, aligned    | section header table    |
//	|  64 bytes  | (.text, tc, .maps, …, .BTF)  | e_shnum × 64 bytes      |
//	+------------+------------------------------+-------------------------+
// Section header (64 bytes):
//	name u32 | type u32 | flags u64 | addr u64 | offset u64 | size u64 | link u32 | info u32 | addralign u64 | entsize u64
// Symbol (24 bytes):  name u32 | info u8 (bind << 4 | type) | other u8 | shndx u16 | value u64 | size u64
// REL entry (16 bytes): offset u64 | info u64 (symbol index << 32 | relocation type)

import { concatBytes } from '../btf/bytes.ts';

export const EM_BPF = 247;
export const ET_REL = 1;

export const SHT = { NULL: 0, PROGBITS: 1, SYMTAB: 2, STRTAB: 3, RELA: 4, NOBITS: 8, REL: 9 } as const;
export const SHF = { WRITE: 0x1, ALLOC: 0x2, EXECINSTR: 0x4, MERGE: 0x10, STRINGS: 0x20, INFO_LINK: 0x40 } as const;
export const STB = { LOCAL: 0, GLOBAL: 1, WEAK: 2 } as const;
export const STT = { NOTYPE: 0, OBJECT: 1, FUNC: 2, SECTION: 3, FILE: 4 } as const;
export const SHN_UNDEF = 0;
export const SHN_ABS = 0xfff1;

/** BPF relocation types (llvm/BinaryFormat/ELFRelocs/BPF.def). */
export const R_BPF = {
  NONE: 0,
  R_64_64: 1, //      ld_imm64: map, global data, function address
  ABS64: 2,
  ABS32: 3,
  NODYLD32: 4, //     .BTF/.BTF.ext section offsets, ignored by loaders
  R_64_32: 10, //     call: BPF-to-BPF and kfunc
} as const;

const EHDR_SIZE = 64;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;
const REL_SIZE = 16;

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: number;
  link: number;
  info: number;
  align: number;
  entsize: number;
  size: number;
  /** Contents; empty for NOBITS. */
  data: Buffer;
}

export interface ElfSymbol {
  index: number;
  name: string;
  value: number;
  size: number;
  bind: number;
  type: number;
  other: number;
  shndx: number;
}

export interface ElfRel {
  offset: number;
  symbol: number;
  type: number;
}

export interface ElfFile {
  sections: ElfSection[]; // index = section number; [0] is the null section
  symbols: ElfSymbol[]; // index = symbol number; [0] is the null symbol
  /** REL entries grouped by the section they apply to (sh_info). */
  relocations: Map<number, ElfRel[]>;
}

const cstring = (buf: Buffer, off: number): string => {
  if (off >= buf.length) throw new Error(`string offset ${off} outside string table`);
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end < 0 ? buf.length : end);
};

const u64 = (buf: Buffer, off: number): number => {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`64-bit field at ${off} is too large`);
  return Number(v);
};

/** Parse the section headers, symbol table and REL sections of an ELF64 LE EM_BPF object. */
export function parseElf(buf: Buffer): ElfFile {
  if (buf.length < EHDR_SIZE || buf.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  if (buf[4] !== 2) throw new Error('not ELF64');
  if (buf[5] !== 1) throw new Error('not little-endian (big-endian BPF objects are not supported)');
  const machine = buf.readUInt16LE(18);
  if (machine !== EM_BPF) throw new Error(`e_machine ${machine} is not EM_BPF (${EM_BPF})`);
  const shoff = u64(buf, 40);
  const shentsize = buf.readUInt16LE(58);
  const shnum = buf.readUInt16LE(60);
  const shstrndx = buf.readUInt16LE(62);
  if (shentsize !== SHDR_SIZE) throw new Error(`e_shentsize ${shentsize} != ${SHDR_SIZE}`);
  if (shoff + shnum * SHDR_SIZE > buf.length) throw new Error('section header table runs past the end of the file');

  const raw = [];
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * SHDR_SIZE;
    const type = buf.readUInt32LE(h + 4);
    const offset = u64(buf, h + 24);
    const size = u64(buf, h + 32);
    if (type !== SHT.NOBITS && type !== SHT.NULL && offset + size > buf.length) throw new Error(`section ${i}: contents run past the end of the file`);
    raw.push({
      nameOff: buf.readUInt32LE(h),
      type,
      flags: u64(buf, h + 8),
      size,
      link: buf.readUInt32LE(h + 40),
      info: buf.readUInt32LE(h + 44),
      align: u64(buf, h + 48),
      entsize: u64(buf, h + 56),
      data: type === SHT.NOBITS || type === SHT.NULL ? Buffer.alloc(0) : buf.subarray(offset, offset + size),
    });
  }
  const shstr = raw[shstrndx]?.data;
  if (!shstr) throw new Error(`e_shstrndx ${shstrndx} out of range`);
  const sections: ElfSection[] = raw.map(({ nameOff, ...s }, index) => ({ index, name: cstring(shstr, nameOff), ...s }));

  const symtab = sections.find((s) => s.type === SHT.SYMTAB);
  const symbols: ElfSymbol[] = [];
  if (symtab) {
    const strtab = sections[symtab.link]?.data;
    if (!strtab) throw new Error(`.symtab: sh_link ${symtab.link} is not a string table`);
    for (let i = 0, off = 0; off + SYM_SIZE <= symtab.data.length; i++, off += SYM_SIZE) {
      const d = symtab.data;
      const info = d[off + 4]!;
      symbols.push({
        index: i,
        name: cstring(strtab, d.readUInt32LE(off)),
        bind: info >> 4,
        type: info & 0xf,
        other: d[off + 5]!,
        shndx: d.readUInt16LE(off + 6),
        value: u64(d, off + 8),
        size: u64(d, off + 16),
      });
    }
  }

  const relocations = new Map<number, ElfRel[]>();
  for (const s of sections) {
    if (s.type === SHT.RELA) throw new Error(`section "${s.name}": RELA relocations are not used by BPF`);
    if (s.type !== SHT.REL) continue;
    const rels: ElfRel[] = [];
    for (let off = 0; off + REL_SIZE <= s.data.length; off += REL_SIZE) {
      const info = s.data.readBigUInt64LE(off + 8);
      rels.push({ offset: u64(s.data, off), symbol: Number(info >> 32n), type: Number(info & 0xffffffffn) });
    }
    relocations.set(s.info, [...(relocations.get(s.info) ?? []), ...rels]);
  }
  return { sections, symbols, relocations };
}

// ---- writing ----

export interface OutSection {
  name: string;
  type: number;
  flags: number;
  align: number;
  entsize?: number;
  data: Buffer; // for NOBITS: empty, and `size` says how big
  size?: number;
}

export interface OutSymbol {
  name: string;
  value: number;
  size: number;
  bind: number;
  type: number;
  /** 1-based position in OutObject.sections, or SHN_UNDEF / SHN_ABS. */
  shndx: number;
}

export interface OutRel {
  offset: number;
  symbol: OutSymbol;
  type: number;
}

export interface OutObject {
  sections: OutSection[]; // become section numbers 1..n, in order
  symbols: OutSymbol[]; // locals are moved before globals, as the gABI requires
  /** REL entries keyed by 1-based section number; each becomes a ".rel<name>" section. */
  relocations: Map<number, OutRel[]>;
}

/**
 * Lay out an object: the given sections keep their numbers (1..n); then come the .rel sections,
 * .symtab and .strtab. Like clang, one .strtab holds both section and symbol names.
 */
export function encodeElf(obj: OutObject): Buffer {
  const names = new Map<string, number>([['', 0]]);
  const strtab: Buffer[] = [Buffer.alloc(1)];
  let strLen = 1;
  const str = (s: string): number => {
    let off = names.get(s);
    if (off === undefined) {
      off = strLen;
      const b = Buffer.from(s + '\0', 'utf8');
      strtab.push(b);
      strLen += b.length;
      names.set(s, off);
    }
    return off;
  };

  const symbols = [...obj.symbols.filter((s) => s.bind === STB.LOCAL), ...obj.symbols.filter((s) => s.bind !== STB.LOCAL)];
  const firstGlobal = 1 + symbols.findIndex((s) => s.bind !== STB.LOCAL);
  const symIndex = new Map(symbols.map((s, i) => [s, i + 1]));

  const all: (OutSection & { link?: number; info?: number })[] = [...obj.sections];
  const symtabIndex = all.length + obj.relocations.size + 1;
  for (const [target, rels] of [...obj.relocations].sort(([a], [b]) => a - b)) {
    const data = Buffer.alloc(rels.length * REL_SIZE);
    rels.forEach((r, i) => {
      const sym = symIndex.get(r.symbol);
      if (sym === undefined) throw new Error(`relocation at ${obj.sections[target - 1]!.name}+${r.offset}: symbol ${r.symbol.name} is not in the symbol table`);
      data.writeBigUInt64LE(BigInt(r.offset), i * REL_SIZE);
      data.writeBigUInt64LE((BigInt(sym) << 32n) | BigInt(r.type), i * REL_SIZE + 8);
    });
    all.push({ name: `.rel${obj.sections[target - 1]!.name}`, type: SHT.REL, flags: SHF.INFO_LINK, align: 8, entsize: REL_SIZE, data, link: symtabIndex, info: target });
  }

  const symData = Buffer.alloc((symbols.length + 1) * SYM_SIZE);
  symbols.forEach((s, i) => {
    const off = (i + 1) * SYM_SIZE;
    symData.writeUInt32LE(str(s.name), off);
    symData[off + 4] = (s.bind << 4) | s.type;
    symData[off + 5] = 0; // STV_DEFAULT
    symData.writeUInt16LE(s.shndx, off + 6);
    symData.writeBigUInt64LE(BigInt(s.value), off + 8);
    symData.writeBigUInt64LE(BigInt(s.size), off + 16);
  });
  all.push({ name: '.symtab', type: SHT.SYMTAB, flags: 0, align: 8, entsize: SYM_SIZE, data: symData, link: symtabIndex + 1, info: firstGlobal > 0 ? firstGlobal : symbols.length + 1 });
  for (const s of all) str(s.name);
  str('.strtab');
  all.push({ name: '.strtab', type: SHT.STRTAB, flags: 0, align: 1, data: concatBytes(strtab, strLen) });

  // Contents after the ELF header, each at its alignment; then the section header table.
  const offsets: number[] = [];
  let pos = EHDR_SIZE;
  for (const s of all) {
    const align = Math.max(s.align, 1);
    pos = Math.ceil(pos / align) * align;
    offsets.push(pos);
    if (s.type !== SHT.NOBITS) pos += s.data.length;
  }
  const shoff = Math.ceil(pos / 8) * 8;
  const out = Buffer.alloc(shoff + (all.length + 1) * SHDR_SIZE);

  out.writeUInt32BE(0x7f454c46, 0);
  out[4] = 2; // ELFCLASS64
  out[5] = 1; // ELFDATA2LSB
  out[6] = 1; // EV_CURRENT
  out.writeUInt16LE(ET_REL, 16);
  out.writeUInt16LE(EM_BPF, 18);
  out.writeUInt32LE(1, 20);
  out.writeBigUInt64LE(BigInt(shoff), 40);
  out.writeUInt16LE(EHDR_SIZE, 52);
  out.writeUInt16LE(SHDR_SIZE, 58);
  out.writeUInt16LE(all.length + 1, 60);
  out.writeUInt16LE(all.length, 62); // .strtab, the last section, also names sections

  all.forEach((s, i) => {
    if (s.type !== SHT.NOBITS) out.set(s.data, offsets[i]!);
    const h = shoff + (i + 1) * SHDR_SIZE;
    out.writeUInt32LE(str(s.name), h);
    out.writeUInt32LE(s.type, h + 4);
    out.writeBigUInt64LE(BigInt(s.flags), h + 8);
    out.writeBigUInt64LE(BigInt(offsets[i]!), h + 24);
    out.writeBigUInt64LE(BigInt(s.type === SHT.NOBITS ? (s.size ?? 0) : s.data.length), h + 32);
    out.writeUInt32LE(s.link ?? 0, h + 40);
    out.writeUInt32LE(s.info ?? 0, h + 44);
    out.writeBigUInt64LE(BigInt(s.align), h + 48);
    out.writeBigUInt64LE(BigInt(s.entsize ?? 0), h + 56);
  });
  return out;
}
