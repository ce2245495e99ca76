// The .BTF.ext section: per-ELF-section func_info, line_info and CO-RE relocation records whose
// strings live in the .BTF string section (so .BTF and .BTF.ext are encoded together).
//
// Header (32 bytes; older producers stop after line_info_len at 24), offsets from the header's end:
//	+-------+-----+-----+---------+----------------+----------------+-----------------+
//	| magic | ver |flags| hdr_len | func_info off,len | line_info off,len | core_relo off,len |
//	+-------+-----+-----+---------+----------------+----------------+-----------------+
//	   u16    u8    u8     u32        u32   u32         u32   u32         u32   u32
// Each info block:
//	u32 rec_size, then per ELF section: { u32 sec_name_off, u32 num_info, num_info × record }
//	func_info  { insn_off, type_id }                                   rec_size 8
//	line_info  { insn_off, file_name_off, line_off, line << 10 | col }  rec_size 16
//	core_relo  { insn_off, type_id, access_str_off, kind }              rec_size 16
// insn_off is in bytes from the start of the ELF section (in object files; the kernel wants
// instruction indexes, which the loader computes).

import { Btf } from './btf.ts';
import { StringReader, StringTable } from './strings.ts';
import type { CoreRelo, FuncInfo, LineInfo } from './types.ts';
import { BTF_MAGIC, decodeSections, encodeSections } from './wire.ts';
import { concatBytes } from './bytes.ts';

const EXT_HEADER_LEN = 32;
const FUNC_INFO_SIZE = 8;
const LINE_INFO_SIZE = 16;
const CORE_RELO_SIZE = 16;
const MAX_LINE = (1 << 22) - 1;
const MAX_COLUMN = (1 << 10) - 1;

/** .BTF.ext contents keyed by ELF section name. */
export interface BtfExt {
  funcInfo: Map<string, FuncInfo[]>;
  lineInfo: Map<string, LineInfo[]>;
  coreRelos: Map<string, CoreRelo[]>;
}

export const emptyExt = (): BtfExt => ({ funcInfo: new Map(), lineInfo: new Map(), coreRelos: new Map() });

function encodeBlock<R>(recSize: number, bySection: Map<string, R[]>, strings: StringTable, write: (buf: Buffer, at: number, r: R) => void): Buffer {
  const sections = [...bySection].filter(([, recs]) => recs.length > 0);
  if (sections.length === 0) return Buffer.alloc(0);
  const total = 4 + sections.reduce((n, [, recs]) => n + 8 + recSize * recs.length, 0);
  const out = Buffer.alloc(total);
  out.writeUInt32LE(recSize, 0);
  let off = 4;
  for (const [name, recs] of sections) {
    out.writeUInt32LE(strings.add(name), off);
    out.writeUInt32LE(recs.length, off + 4);
    off += 8;
    for (const r of recs) {
      write(out, off, r);
      off += recSize;
    }
  }
  return out;
}

/** Encode .BTF.ext; its strings go into `strings`, which must then become .BTF's string section. */
export function encodeExt(ext: BtfExt, strings: StringTable): Buffer {
  const funcs = encodeBlock(FUNC_INFO_SIZE, ext.funcInfo, strings, (b, at, r: FuncInfo) => {
    b.writeUInt32LE(r.insnOff, at);
    b.writeUInt32LE(r.typeId, at + 4);
  });
  const lines = encodeBlock(LINE_INFO_SIZE, ext.lineInfo, strings, (b, at, r: LineInfo) => {
    if (r.line > MAX_LINE) throw new Error(`line_info: line ${r.line} does not fit 22 bits`);
    b.writeUInt32LE(r.insnOff, at);
    b.writeUInt32LE(strings.add(r.fileName), at + 4);
    b.writeUInt32LE(strings.add(r.lineText), at + 8);
    b.writeUInt32LE(((r.line << 10) | Math.min(r.column, MAX_COLUMN)) >>> 0, at + 12);
  });
  const relos = encodeBlock(CORE_RELO_SIZE, ext.coreRelos, strings, (b, at, r: CoreRelo) => {
    b.writeUInt32LE(r.insnOff, at);
    b.writeUInt32LE(r.typeId, at + 4);
    b.writeUInt32LE(strings.add(r.accessString), at + 8);
    b.writeUInt32LE(r.kind, at + 12);
  });
  const header = Buffer.alloc(EXT_HEADER_LEN);
  header.writeUInt16LE(BTF_MAGIC, 0);
  header.writeUInt8(1, 2);
  header.writeUInt32LE(EXT_HEADER_LEN, 4);
  header.writeUInt32LE(0, 8);
  header.writeUInt32LE(funcs.length, 12);
  header.writeUInt32LE(funcs.length, 16);
  header.writeUInt32LE(lines.length, 20);
  header.writeUInt32LE(funcs.length + lines.length, 24);
  header.writeUInt32LE(relos.length, 28);
  return concatBytes([header, funcs, lines, relos]);
}

function decodeBlock<R>(what: string, buf: Buffer, minSize: number, strings: StringReader, read: (b: Buffer, at: number) => R): Map<string, R[]> {
  const out = new Map<string, R[]>();
  if (buf.length === 0) return out;
  const recSize = buf.readUInt32LE(0);
  if (recSize < minSize) throw new Error(`BTF.ext ${what}: record size ${recSize} < ${minSize}`);
  let off = 4;
  while (off < buf.length) {
    if (off + 8 > buf.length) throw new Error(`BTF.ext ${what}: truncated section header at byte ${off}`);
    const name = strings.get(buf.readUInt32LE(off));
    const count = buf.readUInt32LE(off + 4);
    off += 8;
    if (off + count * recSize > buf.length) throw new Error(`BTF.ext ${what}: section "${name}": ${count} records run past the end`);
    const recs: R[] = [];
    for (let i = 0; i < count; i++, off += recSize) recs.push(read(buf, off));
    out.set(name, [...(out.get(name) ?? []), ...recs]);
  }
  return out;
}

/** Decode .BTF.ext, reading strings from the .BTF string section. */
export function decodeExt(buf: Buffer, strings: StringReader): BtfExt {
  if (buf.length < 24 || buf.readUInt16LE(0) !== BTF_MAGIC) throw new Error('BTF.ext: bad header');
  const hdrLen = buf.readUInt32LE(4);
  const block = (at: number): Buffer => {
    if (at + 8 > hdrLen) return Buffer.alloc(0); // header predates this block
    const off = hdrLen + buf.readUInt32LE(at);
    const len = buf.readUInt32LE(at + 4);
    if (off + len > buf.length) throw new Error(`BTF.ext: block at header offset ${at} runs past the end`);
    return buf.subarray(off, off + len);
  };
  return {
    funcInfo: decodeBlock('func_info', block(8), FUNC_INFO_SIZE, strings, (b, at) => ({
      insnOff: b.readUInt32LE(at),
      typeId: b.readUInt32LE(at + 4),
    })),
    lineInfo: decodeBlock('line_info', block(16), LINE_INFO_SIZE, strings, (b, at) => {
      const lineCol = b.readUInt32LE(at + 12);
      return {
        insnOff: b.readUInt32LE(at),
        fileName: strings.get(b.readUInt32LE(at + 4)),
        lineText: strings.get(b.readUInt32LE(at + 8)),
        line: lineCol >>> 10,
        column: lineCol & MAX_COLUMN,
      };
    }),
    coreRelos: decodeBlock('core_relo', block(24), CORE_RELO_SIZE, strings, (b, at) => ({
      insnOff: b.readUInt32LE(at),
      typeId: b.readUInt32LE(at + 4),
      accessString: strings.get(b.readUInt32LE(at + 8)),
      kind: b.readUInt32LE(at + 12),
    })),
  };
}

/** Encode .BTF and .BTF.ext over one string section. */
export function encodeBtfWithExt(btf: Btf, ext: BtfExt): { btf: Buffer; ext: Buffer } {
  const strings = new StringTable();
  const types = btf.encodeTypes(strings);
  const extBytes = encodeExt(ext, strings);
  return { btf: encodeSections(types, strings.encode()), ext: extBytes };
}

/** Decode .BTF and, when present, .BTF.ext. */
export function decodeBtfWithExt(btfBytes: Buffer, extBytes?: Buffer): { btf: Btf; ext: BtfExt } {
  const btf = Btf.decode(btfBytes);
  if (!extBytes) return { btf, ext: emptyExt() };
  return { btf, ext: decodeExt(extBytes, new StringReader(decodeSections(btfBytes).strings)) };
}
