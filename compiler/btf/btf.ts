// A BTF type graph: the object's own BTF (built by the compiler, read from .BTF) or the kernel's
// (/sys/kernel/btf/vmlinux, from which the loader resolves kfunc ids and struct layouts).
// Type id 0 is void; the id of a type is its index in `types`. The wire format is in wire.ts.

import { type BtfMember, type BtfType } from './types.ts';
import { StringReader, StringTable } from './strings.ts';
import { decodeSections, decodeTypes, encodeSections, encodeTypes } from './wire.ts';

export type BtfKindName = BtfType['kind'];

/** Kinds that only qualify the type they point at; resolve() looks through them. */
const MODIFIERS = new Set<BtfKindName>(['typedef', 'const', 'volatile', 'restrict', 'type_tag']);
const MAX_CHAIN = 64; // longer modifier/array chains mean a cycle (the kernel's limit is 32)

export class Btf {
  /** types[0] is { kind: 'void' }; a type's id is its index. */
  readonly types: BtfType[];
  private byName?: Map<string, number[]>;

  constructor(types: BtfType[] = [{ kind: 'void' }]) {
    if (types[0]?.kind !== 'void') throw new Error('BTF: types[0] must be void');
    this.types = types;
  }

  static decode(buf: Buffer): Btf {
    const { types, strings } = decodeSections(buf);
    return new Btf(decodeTypes(types, new StringReader(strings)));
  }

  encode(): Buffer {
    const strings = new StringTable();
    const types = encodeTypes(this.types, strings);
    return encodeSections(types, strings.encode());
  }

  /** Encode the type section against a caller's string table (.BTF.ext shares it). */
  encodeTypes(strings: StringTable): Buffer {
    return encodeTypes(this.types, strings);
  }

  /** A deep copy: callers (the ELF writer) may append to and patch the copy. */
  clone(): Btf {
    return new Btf(structuredClone(this.types));
  }

  add(type: BtfType): number {
    if (type.kind === 'void') throw new Error('BTF: void is only valid as type 0');
    const id = this.types.push(type) - 1;
    if (this.byName && 'name' in type && type.name) this.index(type.name, id);
    return id;
  }

  get(id: number): BtfType {
    const t = this.types[id];
    if (!t) throw new Error(`BTF: no type [${id}] (${this.types.length} types)`);
    return t;
  }

  nameOf(id: number): string {
    const t = this.get(id);
    return 'name' in t ? t.name : '';
  }

  /** Ids of every type with this name (and kind), in id order. */
  findAll(name: string, kind?: BtfKindName): number[] {
    if (!this.byName) {
      this.byName = new Map();
      for (let id = 1; id < this.types.length; id++) {
        const t = this.types[id]!;
        if ('name' in t && t.name) this.index(t.name, id);
      }
    }
    const ids = this.byName.get(name) ?? [];
    return kind ? ids.filter((id) => this.types[id]!.kind === kind) : ids;
  }

  find(name: string, kind?: BtfKindName): number | undefined {
    return this.findAll(name, kind)[0];
  }

  /** The FUNC named so: for vmlinux, the kfunc's BTF id that CALL src=2 carries in imm. */
  findFunc(name: string): number | undefined {
    return this.find(name, 'func');
  }

  /** A complete STRUCT by name (FWD declarations of it are not returned). */
  findStruct(name: string): number | undefined {
    return this.find(name, 'struct');
  }

  /** Look through typedef/const/volatile/restrict/type_tag to the underlying type id. */
  resolve(id: number): number {
    for (let n = 0; n < MAX_CHAIN; n++) {
      const t = this.get(id);
      if (!MODIFIERS.has(t.kind)) return id;
      id = (t as { type: number }).type;
    }
    throw new Error(`BTF: type [${id}]: modifier chain longer than ${MAX_CHAIN} (cycle?)`);
  }

  sizeof(id: number, depth = 0): number {
    if (depth > MAX_CHAIN) throw new Error(`BTF: type [${id}]: nesting deeper than ${MAX_CHAIN} (cycle?)`);
    const t = this.get(this.resolve(id));
    switch (t.kind) {
      case 'int':
      case 'enum':
      case 'enum64':
      case 'struct':
      case 'union':
      case 'float':
      case 'datasec':
        return t.size;
      case 'ptr':
        return 8;
      case 'array':
        return t.nelems * this.sizeof(t.type, depth + 1);
      case 'var':
        return this.sizeof(t.type, depth + 1);
      default:
        throw new Error(`BTF: type [${id}] ${this.describe(id)} has no size`);
    }
  }

  alignof(id: number, depth = 0): number {
    if (depth > MAX_CHAIN) throw new Error(`BTF: type [${id}]: nesting deeper than ${MAX_CHAIN} (cycle?)`);
    const t = this.get(this.resolve(id));
    switch (t.kind) {
      case 'int':
      case 'enum':
      case 'enum64':
      case 'float':
        return Math.min(Math.max(t.size, 1), 8);
      case 'ptr':
        return 8;
      case 'array':
      case 'var':
        return this.alignof(t.type, depth + 1);
      case 'struct':
      case 'union':
        return t.members.reduce((a, m) => Math.max(a, this.alignof(m.type, depth + 1)), 1);
      default:
        throw new Error(`BTF: type [${id}] ${this.describe(id)} has no alignment`);
    }
  }

  /**
   * A member of a struct/union by name, looking into anonymous struct/union members as C does.
   * bitOffset is from the start of the outer type.
   */
  member(id: number, name: string): BtfMember | undefined {
    const t = this.get(this.resolve(id));
    if (t.kind !== 'struct' && t.kind !== 'union') throw new Error(`BTF: type [${id}] ${this.describe(id)} is not a struct or union`);
    for (const m of t.members) {
      if (m.name === name) return m;
      if (m.name === '') {
        const inner = this.member(m.type, name);
        if (inner) return { ...inner, bitOffset: inner.bitOffset + m.bitOffset };
      }
    }
    return undefined;
  }

  /** A C-like spelling of a type for messages: 'struct counter', 'u32 *', 'int[4]'. */
  describe(id: number, depth = 0): string {
    const t = this.get(id);
    if (depth > 8) return '…';
    switch (t.kind) {
      case 'void':
        return 'void';
      case 'ptr':
        return `${this.describe(t.type, depth + 1)} *`;
      case 'array':
        return `${this.describe(t.type, depth + 1)}[${t.nelems}]`;
      case 'const':
      case 'volatile':
      case 'restrict':
        return `${t.kind} ${this.describe(t.type, depth + 1)}`;
      case 'type_tag':
        return `${this.describe(t.type, depth + 1)} __tag(${t.name})`;
      case 'struct':
      case 'union':
      case 'enum':
      case 'enum64':
        return `${t.kind === 'enum64' ? 'enum' : t.kind} ${t.name || '(anon)'}`;
      case 'fwd':
        return `${t.union ? 'union' : 'struct'} ${t.name}`;
      case 'func_proto':
        return `${this.describe(t.returnType, depth + 1)} (${t.params.map((p) => this.describe(p.type, depth + 1)).join(', ')})`;
      default:
        return t.name;
    }
  }

  private index(name: string, id: number): void {
    const ids = this.byName!.get(name);
    if (ids) ids.push(id);
    else this.byName!.set(name, [id]);
  }
}
