// The .BTF section format (linux/btf.h, Documentation/bpf/btf.rst), little-endian.
//
// Header (24 bytes), then the type and string sections at offsets relative to the header's end:
//	+-------+-----+-----+---------+----------+----------+---------+---------+
//	| magic | ver |flags| hdr_len | type_off | type_len | str_off | str_len |
//	| eb9f  |  1  |  0  |   24    |          |          |         |         |
//	+-------+-----+-----+---------+----------+----------+---------+---------+
//	   u16    u8    u8     u32        u32        u32        u32       u32
//
// Each type starts with struct btf_type (12 bytes), followed by kind-specific data:
//	+----------+--------------------------------------+------------------+
//	| name_off |                 info                 |  size  or  type  |
//	+----------+-+---+-------+---------+--------------+------------------+
//	           |k|   | kind  |         |     vlen     |
//	           |f|   | 5 bit |         |    16 bit    |
//	            31    28..24             15..0
//	INT        u32: encoding << 24 | bit offset << 16 | bits
//	ARRAY      { type, index_type, nelems }
//	STRUCT/UNION vlen × { name_off, type, offset }  (kind_flag: offset = bitfield_size << 24 | bit_offset)
//	ENUM       vlen × { name_off, s32 val }           (kind_flag: signed)
//	ENUM64     vlen × { name_off, val_lo32, val_hi32 } (kind_flag: signed)
//	FUNC_PROTO vlen × { name_off, type }
//	VAR        u32 linkage
//	DATASEC    vlen × { type, offset, size }
//	DECL_TAG   s32 component_idx (-1: the declaration itself)
//	FUNC has its linkage in vlen; FWD has kind_flag = union. Type ids are implicit: 1 + position.

import { BtfKind, type BtfType } from './types.ts';
import { StringReader, StringTable } from './strings.ts';
import { concatBytes } from './bytes.ts';

export const BTF_MAGIC = 0xeb9f;
export const BTF_HEADER_LEN = 24;

const kindNames = Object.fromEntries(Object.entries(BtfKind).map(([k, v]) => [v, k.toLowerCase()])) as Record<number, string>;

const info = (kind: number, vlen: number, kindFlag: boolean): number =>
  ((kindFlag ? 0x80000000 : 0) | (kind << 24) | (vlen & 0xffff)) >>> 0;

/** Bytes a type takes in the type section. */
function typeLength(t: BtfType): number {
  switch (t.kind) {
    case 'int':
    case 'var':
    case 'decl_tag':
      return 16;
    case 'array':
      return 24;
    case 'struct':
    case 'union':
    case 'datasec':
      return 12 + 12 * (t.kind === 'datasec' ? t.vars.length : t.members.length);
    case 'enum':
      return 12 + 8 * t.values.length;
    case 'enum64':
      return 12 + 12 * t.values.length;
    case 'func_proto':
      return 12 + 8 * t.params.length;
    default:
      return 12;
  }
}

/** Encode types[1..] (types[0] is the implicit void) into a type section. */
export function encodeTypes(types: readonly BtfType[], strings: StringTable): Buffer {
  let total = 0;
  for (let id = 1; id < types.length; id++) total += typeLength(types[id]!);
  const out = Buffer.alloc(total);
  let off = 0;
  const u32 = (v: number): void => {
    out.writeUInt32LE(v >>> 0, off);
    off += 4;
  };
  const head = (name: string, kind: number, vlen: number, kindFlag: boolean, sizeOrType: number): void => {
    u32(strings.add(name));
    u32(info(kind, vlen, kindFlag));
    u32(sizeOrType);
  };
  for (let id = 1; id < types.length; id++) {
    const t = types[id]!;
    try {
      switch (t.kind) {
        case 'void':
          throw new Error('void is only valid as type 0');
        case 'int':
          head(t.name, BtfKind.INT, 0, false, t.size);
          u32(((t.encoding & 0x0f) << 24) | ((t.bitOffset & 0xff) << 16) | (t.bits & 0xff));
          break;
        case 'ptr':
          head('', BtfKind.PTR, 0, false, t.type);
          break;
        case 'array':
          head('', BtfKind.ARRAY, 0, false, 0);
          u32(t.type);
          u32(t.indexType);
          u32(t.nelems);
          break;
        case 'struct':
        case 'union': {
          const kindFlag = t.kindFlag ?? t.members.some((m) => (m.bitfieldSize ?? 0) > 0);
          head(t.name, t.kind === 'struct' ? BtfKind.STRUCT : BtfKind.UNION, t.members.length, kindFlag, t.size);
          for (const m of t.members) {
            u32(strings.add(m.name));
            u32(m.type);
            if (!kindFlag && m.bitfieldSize) throw new Error(`member ${m.name}: bitfield without kind_flag`);
            u32(kindFlag ? ((m.bitfieldSize ?? 0) << 24) | (m.bitOffset & 0xffffff) : m.bitOffset);
          }
          break;
        }
        case 'enum':
          head(t.name, BtfKind.ENUM, t.values.length, t.signed, t.size);
          for (const v of t.values) {
            u32(strings.add(v.name));
            u32(Number(BigInt.asUintN(32, v.value)));
          }
          break;
        case 'enum64':
          head(t.name, BtfKind.ENUM64, t.values.length, t.signed, t.size);
          for (const v of t.values) {
            const raw = BigInt.asUintN(64, v.value);
            u32(strings.add(v.name));
            u32(Number(raw & 0xffffffffn));
            u32(Number(raw >> 32n));
          }
          break;
        case 'fwd':
          head(t.name, BtfKind.FWD, 0, t.union, 0);
          break;
        case 'typedef':
          head(t.name, BtfKind.TYPEDEF, 0, false, t.type);
          break;
        case 'volatile':
        case 'const':
        case 'restrict':
          head('', BtfKind[t.kind.toUpperCase() as 'CONST'], 0, false, t.type);
          break;
        case 'func':
          head(t.name, BtfKind.FUNC, t.linkage, false, t.type);
          break;
        case 'func_proto':
          head('', BtfKind.FUNC_PROTO, t.params.length, false, t.returnType);
          for (const p of t.params) {
            u32(strings.add(p.name));
            u32(p.type);
          }
          break;
        case 'var':
          head(t.name, BtfKind.VAR, 0, false, t.type);
          u32(t.linkage);
          break;
        case 'datasec':
          head(t.name, BtfKind.DATASEC, t.vars.length, false, t.size);
          for (const v of t.vars) {
            u32(v.type);
            u32(v.offset);
            u32(v.size);
          }
          break;
        case 'float':
          head(t.name, BtfKind.FLOAT, 0, false, t.size);
          break;
        case 'decl_tag':
          head(t.name, BtfKind.DECL_TAG, 0, t.kindFlag ?? false, t.type);
          out.writeInt32LE(t.componentIdx, off);
          off += 4;
          break;
        case 'type_tag':
          head(t.name, BtfKind.TYPE_TAG, 0, t.kindFlag ?? false, t.type);
          break;
      }
    } catch (e) {
      throw new Error(`type [${id}] ${t.kind}: ${(e as Error).message}`, { cause: e });
    }
  }
  return out;
}

/** Decode a type section. The result includes void at index 0. */
export function decodeTypes(bytes: Buffer, strings: StringReader): BtfType[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const types: BtfType[] = [{ kind: 'void' }];
  const end = bytes.byteLength;
  let off = 0;
  const u32 = (at: number): number => view.getUint32(at, true);
  while (off < end) {
    if (off + 12 > end) throw new Error(`type [${types.length}]: truncated at byte ${off}`);
    const name = strings.get(u32(off));
    const inf = u32(off + 4);
    const sizeOrType = u32(off + 8);
    const kind = (inf >>> 24) & 0x1f;
    const vlen = inf & 0xffff;
    const kindFlag = inf >>> 31 === 1;
    const data = off + 12;
    let t: BtfType;
    switch (kind) {
      case BtfKind.INT: {
        const v = u32(data);
        t = { kind: 'int', name, size: sizeOrType, encoding: (v >>> 24) & 0x0f, bitOffset: (v >>> 16) & 0xff, bits: v & 0xff };
        off = data + 4;
        break;
      }
      case BtfKind.PTR:
        t = { kind: 'ptr', type: sizeOrType };
        off = data;
        break;
      case BtfKind.ARRAY:
        t = { kind: 'array', type: u32(data), indexType: u32(data + 4), nelems: u32(data + 8) };
        off = data + 12;
        break;
      case BtfKind.STRUCT:
      case BtfKind.UNION: {
        const members = new Array(vlen);
        for (let i = 0, m = data; i < vlen; i++, m += 12) {
          const raw = u32(m + 8);
          members[i] = kindFlag
            ? raw >>> 24
              ? { name: strings.get(u32(m)), type: u32(m + 4), bitOffset: raw & 0xffffff, bitfieldSize: raw >>> 24 }
              : { name: strings.get(u32(m)), type: u32(m + 4), bitOffset: raw & 0xffffff }
            : { name: strings.get(u32(m)), type: u32(m + 4), bitOffset: raw };
        }
        t = { kind: kind === BtfKind.STRUCT ? 'struct' : 'union', name, size: sizeOrType, members };
        if (kindFlag) t.kindFlag = true;
        off = data + 12 * vlen;
        break;
      }
      case BtfKind.ENUM: {
        const values = new Array(vlen);
        for (let i = 0, m = data; i < vlen; i++, m += 8) {
          const raw = u32(m + 4);
          values[i] = { name: strings.get(u32(m)), value: kindFlag ? BigInt(raw | 0) : BigInt(raw) };
        }
        t = { kind: 'enum', name, size: sizeOrType, signed: kindFlag, values };
        off = data + 8 * vlen;
        break;
      }
      case BtfKind.ENUM64: {
        const values = new Array(vlen);
        for (let i = 0, m = data; i < vlen; i++, m += 12) {
          const raw = (BigInt(u32(m + 8)) << 32n) | BigInt(u32(m + 4));
          values[i] = { name: strings.get(u32(m)), value: kindFlag ? BigInt.asIntN(64, raw) : raw };
        }
        t = { kind: 'enum64', name, size: sizeOrType, signed: kindFlag, values };
        off = data + 12 * vlen;
        break;
      }
      case BtfKind.FWD:
        t = { kind: 'fwd', name, union: kindFlag };
        off = data;
        break;
      case BtfKind.TYPEDEF:
        t = { kind: 'typedef', name, type: sizeOrType };
        off = data;
        break;
      case BtfKind.VOLATILE:
      case BtfKind.CONST:
      case BtfKind.RESTRICT:
        t = { kind: kindNames[kind] as 'const', type: sizeOrType };
        off = data;
        break;
      case BtfKind.FUNC:
        t = { kind: 'func', name, type: sizeOrType, linkage: vlen };
        off = data;
        break;
      case BtfKind.FUNC_PROTO: {
        const params = new Array(vlen);
        for (let i = 0, m = data; i < vlen; i++, m += 8) params[i] = { name: strings.get(u32(m)), type: u32(m + 4) };
        t = { kind: 'func_proto', returnType: sizeOrType, params };
        off = data + 8 * vlen;
        break;
      }
      case BtfKind.VAR:
        t = { kind: 'var', name, type: sizeOrType, linkage: u32(data) };
        off = data + 4;
        break;
      case BtfKind.DATASEC: {
        const vars = new Array(vlen);
        for (let i = 0, m = data; i < vlen; i++, m += 12) vars[i] = { type: u32(m), offset: u32(m + 4), size: u32(m + 8) };
        t = { kind: 'datasec', name, size: sizeOrType, vars };
        off = data + 12 * vlen;
        break;
      }
      case BtfKind.FLOAT:
        t = { kind: 'float', name, size: sizeOrType };
        off = data;
        break;
      case BtfKind.DECL_TAG:
        t = { kind: 'decl_tag', name, type: sizeOrType, componentIdx: view.getInt32(data, true) };
        if (kindFlag) t.kindFlag = true;
        off = data + 4;
        break;
      case BtfKind.TYPE_TAG:
        t = { kind: 'type_tag', name, type: sizeOrType };
        if (kindFlag) t.kindFlag = true;
        off = data;
        break;
      default:
        throw new Error(`type [${types.length}]: unknown kind ${kind} at byte ${off}`);
    }
    if (off > end) throw new Error(`type [${types.length}] ${t.kind}: runs past the end of the type section`);
    types.push(t);
  }
  return types;
}

export interface BtfSections {
  types: Buffer;
  strings: Buffer;
}

/** Assemble header + type section + string section. */
export function encodeSections(types: Buffer, strings: Buffer): Buffer {
  const header = Buffer.alloc(BTF_HEADER_LEN);
  header.writeUInt16LE(BTF_MAGIC, 0);
  header.writeUInt8(1, 2); // version
  header.writeUInt8(0, 3); // flags
  header.writeUInt32LE(BTF_HEADER_LEN, 4);
  header.writeUInt32LE(0, 8); // type_off
  header.writeUInt32LE(types.length, 12);
  header.writeUInt32LE(types.length, 16); // str_off
  header.writeUInt32LE(strings.length, 20);
  return concatBytes([header, types, strings]);
}

/** Split a .BTF blob into its type and string sections, validating the header. */
export function decodeSections(buf: Buffer): BtfSections {
  if (buf.length < BTF_HEADER_LEN) throw new Error(`BTF: ${buf.length} bytes is shorter than the header`);
  const magic = buf.readUInt16LE(0);
  if (magic !== BTF_MAGIC) throw new Error(`BTF: bad magic 0x${magic.toString(16)} (big-endian BTF is not supported)`);
  const version = buf.readUInt8(2);
  if (version !== 1) throw new Error(`BTF: unsupported version ${version}`);
  const hdrLen = buf.readUInt32LE(4);
  const section = (what: string, off: number, len: number): Buffer => {
    const start = hdrLen + off;
    if (start + len > buf.length) throw new Error(`BTF: ${what} section [${off}, +${len}) runs past the end (${buf.length} bytes)`);
    return buf.subarray(start, start + len);
  };
  return {
    types: section('type', buf.readUInt32LE(8), buf.readUInt32LE(12)),
    strings: section('string', buf.readUInt32LE(16), buf.readUInt32LE(20)),
  };
}
