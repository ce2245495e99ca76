// Map keys and values ↔ JSON through BTF, as bpftool map dump prints them:
//	integers → numbers (64-bit ones beyond 2^53 as decimal strings), __be16/__be32/__be64 typedefs
//	read in network order, enums → the enumerator's name, char arrays → strings, other byte
//	arrays → hex strings, structs/unions/DATASECs → objects, pointers (kptrs) → "0x…" or null.
// Without BTF (type id 0) a value is a hex string of its bytes. encode() accepts what decode()
// produces, plus numbers given as "0x…" strings.
import type { Btf } from '../../compiler/btf/btf.ts';
import { IntEncoding, type BtfType } from '../../compiler/btf/types.ts';
import { copyInto } from './bytes.ts';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const MAX_DEPTH = 32;

function bigEndianTypedef(btf: Btf, id: number): boolean {
  for (let n = 0; n < MAX_DEPTH; n++) {
    const t = btf.get(id);
    if (t.kind === 'typedef' && /^__be(16|32|64)$/.test(t.name)) return true;
    if (t.kind !== 'typedef' && t.kind !== 'const' && t.kind !== 'volatile' && t.kind !== 'restrict' && t.kind !== 'type_tag') return false;
    id = t.type;
  }
  return false;
}

const isCharInt = (t: BtfType): boolean => t.kind === 'int' && t.size === 1 && ((t.encoding & IntEncoding.CHAR) !== 0 || t.name === 'char');

function readInt(buf: Buffer, off: number, size: number, signed: boolean, bigEndian: boolean): bigint {
  let v = 0n;
  for (let i = 0; i < size; i++) v |= BigInt(buf[off + (bigEndian ? size - 1 - i : i)]!) << BigInt(8 * i);
  return signed ? BigInt.asIntN(size * 8, v) : v;
}

function writeInt(buf: Buffer, off: number, size: number, value: bigint, bigEndian: boolean): void {
  const v = BigInt.asUintN(size * 8, value);
  for (let i = 0; i < size; i++) buf[off + (bigEndian ? size - 1 - i : i)] = Number((v >> BigInt(8 * i)) & 0xffn);
}

/** Bitfields: bit i of a little-endian struct is bit (i & 7) of byte i >> 3. */
function readBits(buf: Buffer, off: number, bitOffset: number, bits: number): bigint {
  let v = 0n;
  for (let i = 0; i < bits; i++) {
    const b = bitOffset + i;
    if ((buf[off + (b >> 3)]! >> (b & 7)) & 1) v |= 1n << BigInt(i);
  }
  return v;
}

function writeBits(buf: Buffer, off: number, bitOffset: number, bits: number, value: bigint): void {
  for (let i = 0; i < bits; i++) {
    const b = bitOffset + i;
    const at = off + (b >> 3);
    if ((value >> BigInt(i)) & 1n) buf[at] = buf[at]! | (1 << (b & 7));
    else buf[at] = buf[at]! & ~(1 << (b & 7));
  }
}

const toJsonInt = (v: bigint): Json => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString());

export function decode(btf: Btf | undefined, typeId: number, buf: Buffer, offset = 0, size = buf.length - offset): Json {
  if (!btf || typeId === 0) return buf.subarray(offset, offset + size).toString('hex');
  return decodeAt(btf, typeId, buf, offset, 0);
}

function decodeAt(btf: Btf, id: number, buf: Buffer, off: number, depth: number): Json {
  if (depth > MAX_DEPTH) return '…';
  const bigEndian = bigEndianTypedef(btf, id);
  const t = btf.get(btf.resolve(id));
  switch (t.kind) {
    case 'int': {
      if (t.encoding & IntEncoding.BOOL) return buf[off] !== 0;
      const bits = t.bits || t.size * 8;
      let v = readInt(buf, off, t.size, (t.encoding & IntEncoding.SIGNED) !== 0, bigEndian);
      if (bits < t.size * 8) v = BigInt.asUintN(bits, v >> BigInt(t.bitOffset));
      return toJsonInt(v);
    }
    case 'enum':
    case 'enum64': {
      const v = readInt(buf, off, t.size, t.signed, false);
      return t.values.find((e) => e.value === v)?.name ?? toJsonInt(v);
    }
    case 'float':
      return t.size === 4 ? buf.readFloatLE(off) : buf.readDoubleLE(off);
    case 'ptr': {
      const v = buf.readBigUInt64LE(off);
      return v === 0n ? null : `0x${v.toString(16)}`;
    }
    case 'array': {
      const elem = btf.get(btf.resolve(t.type));
      const esize = btf.sizeof(t.type);
      if (isCharInt(elem)) {
        const bytes = buf.subarray(off, off + t.nelems);
        const end = bytes.indexOf(0);
        const text = bytes.toString('latin1', 0, end < 0 ? bytes.length : end);
        // A char array that holds text up to its NUL (and only zeros after) is a string.
        if (/^[\x20-\x7e]*$/.test(text) && (end < 0 || bytes.subarray(end).every((b) => b === 0))) return text;
      }
      if (elem.kind === 'int' && esize === 1) return buf.subarray(off, off + t.nelems).toString('hex');
      return Array.from({ length: t.nelems }, (_, i) => decodeAt(btf, t.type, buf, off + i * esize, depth + 1));
    }
    case 'struct':
    case 'union': {
      const out: Record<string, Json> = {};
      for (const m of t.members) {
        const at = off + Math.floor(m.bitOffset / 8);
        let v: Json;
        if (m.bitfieldSize) v = toJsonInt(readBits(buf, off, m.bitOffset, m.bitfieldSize));
        else v = decodeAt(btf, m.type, buf, at, depth + 1);
        if (m.name === '' && v !== null && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, v);
        else out[m.name || `__anon${Object.keys(out).length}`] = v;
      }
      return out;
    }
    case 'datasec': {
      const out: Record<string, Json> = {};
      for (const v of t.vars) {
        const vt = btf.get(v.type);
        if (vt.kind === 'var') out[vt.name] = decodeAt(btf, vt.type, buf, off + v.offset, depth + 1);
      }
      return out;
    }
    case 'var':
      return decodeAt(btf, t.type, buf, off, depth + 1);
    default: {
      const size = safeSize(btf, id);
      return buf.subarray(off, off + size).toString('hex');
    }
  }
}

function safeSize(btf: Btf, id: number): number {
  try {
    return btf.sizeof(id);
  } catch {
    return 0;
  }
}

export class EncodeError extends Error {}

function toBigInt(v: Json, what: string): bigint {
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'boolean') return v ? 1n : 0n;
  if (typeof v === 'string' && /^-?(0x[0-9a-f]+|\d+)$/i.test(v.trim())) {
    const s = v.trim();
    return s.startsWith('-') ? -BigInt(s.slice(1)) : BigInt(s);
  }
  throw new EncodeError(`${what}: expected an integer, got ${JSON.stringify(v)}`);
}

/** JSON → bytes of `size`. With BTF the JSON follows the type; without, a hex string. */
export function encode(btf: Btf | undefined, typeId: number, value: Json, size: number): Buffer {
  const buf = Buffer.alloc(size);
  if (!btf || typeId === 0) {
    if (typeof value === 'number' && Number.isInteger(value) && size <= 8) {
      writeInt(buf, 0, size, BigInt(value), false);
      return buf;
    }
    if (typeof value !== 'string' || !/^([0-9a-f]{2})*$/i.test(value.replace(/\s/g, ''))) throw new EncodeError(`expected ${size} bytes as a hex string (no BTF for this map)`);
    const bytes = Buffer.from(value.replace(/\s/g, ''), 'hex');
    if (bytes.length !== size) throw new EncodeError(`expected ${size} bytes, got ${bytes.length}`);
    return bytes;
  }
  encodeAt(btf, typeId, value, buf, 0, 'value', 0);
  return buf;
}

function encodeAt(btf: Btf, id: number, v: Json, buf: Buffer, off: number, path: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new EncodeError(`${path}: type nests too deeply`);
  const bigEndian = bigEndianTypedef(btf, id);
  const t = btf.get(btf.resolve(id));
  switch (t.kind) {
    case 'int':
      writeInt(buf, off, t.size, toBigInt(v, path), bigEndian);
      return;
    case 'enum':
    case 'enum64': {
      const named = typeof v === 'string' ? t.values.find((e) => e.name === v) : undefined;
      writeInt(buf, off, t.size, named ? named.value : toBigInt(v, path), false);
      return;
    }
    case 'float':
      if (typeof v !== 'number') throw new EncodeError(`${path}: expected a number`);
      if (t.size === 4) buf.writeFloatLE(v, off);
      else buf.writeDoubleLE(v, off);
      return;
    case 'ptr':
      if (v !== null && toBigInt(v, path) !== 0n) throw new EncodeError(`${path}: pointers (kptrs) cannot be set from user space`);
      return;
    case 'array': {
      const elem = btf.get(btf.resolve(t.type));
      const esize = btf.sizeof(t.type);
      if (typeof v === 'string' && esize === 1 && elem.kind === 'int') {
        const bytes = isCharInt(elem) ? Buffer.from(v, 'latin1') : Buffer.from(v.replace(/\s/g, ''), 'hex');
        if (!isCharInt(elem) && (!/^([0-9a-f]{2})*$/i.test(v.replace(/\s/g, '')) || bytes.length !== t.nelems)) throw new EncodeError(`${path}: expected ${t.nelems} bytes as hex`);
        if (bytes.length > t.nelems) throw new EncodeError(`${path}: longer than ${t.nelems} bytes`);
        copyInto(bytes, buf, off);
        return;
      }
      if (!Array.isArray(v) || v.length > t.nelems) throw new EncodeError(`${path}: expected an array of at most ${t.nelems} elements`);
      v.forEach((e, i) => encodeAt(btf, t.type, e, buf, off + i * esize, `${path}[${i}]`, depth + 1));
      return;
    }
    case 'struct':
    case 'union':
    case 'datasec': {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new EncodeError(`${path}: expected an object`);
      const fields = fieldsOf(btf, id);
      for (const key of Object.keys(v)) {
        const f = fields.get(key);
        if (!f) throw new EncodeError(`${path}: no field ${key} in ${btf.describe(id)}`);
        if (f.bits) writeBits(buf, off + f.offset, f.bitOffset, f.bits, toBigInt(v[key]!, `${path}.${key}`));
        else encodeAt(btf, f.type, v[key]!, buf, off + f.offset, `${path}.${key}`, depth + 1);
      }
      return;
    }
    case 'var':
      encodeAt(btf, t.type, v, buf, off, path, depth + 1);
      return;
    default:
      throw new EncodeError(`${path}: cannot encode ${btf.describe(id)}`);
  }
}

interface Field {
  type: number;
  offset: number;
  bits?: number;
  bitOffset: number;
}

/** Named fields of a struct/union/DATASEC, anonymous members flattened, with byte offsets. */
function fieldsOf(btf: Btf, id: number, base = 0, out = new Map<string, Field>()): Map<string, Field> {
  const t = btf.get(btf.resolve(id));
  if (t.kind === 'datasec') {
    for (const v of t.vars) {
      const vt = btf.get(v.type);
      if (vt.kind === 'var') out.set(vt.name, { type: vt.type, offset: base + v.offset, bitOffset: 0 });
    }
  } else if (t.kind === 'struct' || t.kind === 'union') {
    for (const m of t.members) {
      if (m.name === '') fieldsOf(btf, m.type, base + Math.floor(m.bitOffset / 8), out);
      else if (m.bitfieldSize) out.set(m.name, { type: m.type, offset: base, bits: m.bitfieldSize, bitOffset: m.bitOffset });
      else out.set(m.name, { type: m.type, offset: base + m.bitOffset / 8, bitOffset: 0 });
    }
  }
  return out;
}
