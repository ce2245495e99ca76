// BTF shapes that libbpf and the kernel expect from an object file, built and parsed in one place:
//   - BTF-defined maps: `struct { __uint(type, T); __type(key, K); … } name SEC(".maps")` is a VAR of
//     an anonymous STRUCT whose members are pointers: __uint(f, N) is `int (*f)[N]` (the value is the
//     array length), __type(f, T) is `T *f` (the type is the pointee).
//   - kptr fields: `struct S __kptr *p` is PTR → TYPE_TAG "kptr" → STRUCT S.
//   - extern kfunc declarations (FUNC linkage extern, listed in DATASEC .ksyms), copied from vmlinux.

import type { Btf } from './btf.ts';
import { IntEncoding, Linkage, type BtfParam, type BtfType } from './types.ts';

/** The fields of a BTF-defined map that libbpf understands (we reject the others by name). */
export interface MapDefinition {
  type: number; // BPF_MAP_TYPE_*
  maxEntries: number;
  flags?: number;
  pinning?: number;
  /** A BTF type (__type(key, T)) or only a size (__uint(key_size, N)). */
  key: { typeId: number } | { size: number };
  value: { typeId: number } | { size: number };
}

export interface ParsedMapDefinition {
  type: number;
  maxEntries: number;
  flags: number;
  pinning: number;
  keySize: number;
  valueSize: number;
  keyTypeId: number; // 0: only a size was given
  valueTypeId: number;
}

/** Find a type structurally equal to `t` (cheap dedup for small builder types) or add it. */
export function findOrAdd(btf: Btf, t: BtfType): number {
  const json = JSON.stringify(t, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  for (let id = 1; id < btf.types.length; id++) {
    const u = btf.types[id]!;
    if (u.kind === t.kind && JSON.stringify(u, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) === json) return id;
  }
  return btf.add(t);
}

export const addInt = (btf: Btf, name: string, size: number, signed: boolean): number =>
  findOrAdd(btf, { kind: 'int', name, size, encoding: signed ? IntEncoding.SIGNED : 0, bitOffset: 0, bits: size * 8 });

export const addPtr = (btf: Btf, type: number): number => findOrAdd(btf, { kind: 'ptr', type });

/** `int (*name)[value]`, the encoding of __uint(name, value). */
function uintField(btf: Btf, value: number): number {
  const int = addInt(btf, 'int', 4, true);
  const index = addInt(btf, '__ARRAY_SIZE_TYPE__', 4, false);
  return addPtr(btf, findOrAdd(btf, { kind: 'array', type: int, indexType: index, nelems: value }));
}

/** Add the BTF of a map definition; returns the id of VAR `name` (global linkage, as clang emits). */
export function addMapDefinition(btf: Btf, name: string, def: MapDefinition): number {
  const fields: [string, number][] = [
    ['type', uintField(btf, def.type)],
    ['max_entries', uintField(btf, def.maxEntries)],
  ];
  for (const [field, side] of [['key', def.key], ['value', def.value]] as const) {
    if ('typeId' in side) fields.push([field, addPtr(btf, side.typeId)]);
    else fields.push([`${field}_size`, uintField(btf, side.size)]);
  }
  if (def.flags) fields.push(['map_flags', uintField(btf, def.flags)]);
  if (def.pinning) fields.push(['pinning', uintField(btf, def.pinning)]);
  const struct = btf.add({
    kind: 'struct',
    name: '',
    size: 8 * fields.length,
    members: fields.map(([n, type], i) => ({ name: n, type, bitOffset: 64 * i })),
  });
  return btf.add({ kind: 'var', name, type: struct, linkage: Linkage.GLOBAL });
}

/** Read a map definition back from the VAR (or its struct) in a .maps DATASEC. */
export function parseMapDefinition(btf: Btf, id: number): ParsedMapDefinition {
  let t = btf.get(btf.resolve(id));
  if (t.kind === 'var') t = btf.get(btf.resolve(t.type));
  if (t.kind !== 'struct') throw new Error(`map definition is ${btf.describe(id)}, not a struct`);
  const def: ParsedMapDefinition = { type: 0, maxEntries: 0, flags: 0, pinning: 0, keySize: 0, valueSize: 0, keyTypeId: 0, valueTypeId: 0 };
  for (const m of t.members) {
    const ptr = btf.get(btf.resolve(m.type));
    if (ptr.kind !== 'ptr') throw new Error(`field ${m.name}: ${btf.describe(m.type)} is not a pointer`);
    const uint = (): number => {
      const arr = btf.get(btf.resolve(ptr.type));
      if (arr.kind !== 'array') throw new Error(`field ${m.name}: ${btf.describe(ptr.type)} is not __uint()'s array`);
      return arr.nelems;
    };
    switch (m.name) {
      case 'type': def.type = uint(); break;
      case 'max_entries': def.maxEntries = uint(); break;
      case 'map_flags': def.flags = uint(); break;
      case 'pinning': def.pinning = uint(); break;
      case 'key_size': def.keySize = uint(); break;
      case 'value_size': def.valueSize = uint(); break;
      case 'numa_node':
      case 'map_extra':
        uint(); // accepted, not modelled: the loader does not set them
        break;
      case 'key':
        def.keyTypeId = ptr.type;
        def.keySize = btf.sizeof(ptr.type);
        break;
      case 'value':
        def.valueTypeId = ptr.type;
        def.valueSize = btf.sizeof(ptr.type);
        break;
      default:
        throw new Error(`field ${m.name}: not supported (map-in-map and prog-array initialisers are not modelled)`);
    }
  }
  return def;
}

/**
 * `struct name __kptr *`: PTR → TYPE_TAG "kptr" → STRUCT. The pointee must be a STRUCT, not the
 * FWD clang emits for an opaque `struct name;`: the kernel's btf_find_kptr() rejects anything but
 * STRUCT, then matches it by name in vmlinux, so an empty STRUCT with the right name suffices.
 */
export function addKptr(btf: Btf, structName: string): number {
  const target = btf.findStruct(structName) ?? btf.add({ kind: 'struct', name: structName, size: 0, members: [] });
  return btf.add({ kind: 'ptr', type: btf.add({ kind: 'type_tag', name: 'kptr', type: target }) });
}

/** A FUNC with its FUNC_PROTO. */
export function addFunc(btf: Btf, name: string, returnType: number, params: BtfParam[], linkage: number): number {
  const proto = btf.add({ kind: 'func_proto', returnType, params });
  return btf.add({ kind: 'func', name, type: proto, linkage });
}

/**
 * Declare kfunc `name` in `btf` (FUNC linkage extern) with the prototype copied from `kernel`
 * (vmlinux). libbpf checks the local prototype against the kernel's (bpf_core_types_are_compat:
 * same kinds after modifiers, struct contents not compared), so structs are copied without members.
 */
export function addKfuncDeclaration(btf: Btf, kernel: Btf, name: string): number {
  const existing = btf.findAll(name, 'func').find((id) => (btf.get(id) as { linkage: number }).linkage === Linkage.EXTERN);
  if (existing) return existing;
  const kfunc = kernel.findFunc(name);
  if (kfunc === undefined) throw new Error(`kfunc ${name}: not in kernel BTF`);
  const copied = new Map<number, number>([[0, 0]]);
  const copy = (id: number): number => {
    const done = copied.get(id);
    if (done !== undefined) return done;
    const t = kernel.get(id);
    let out: BtfType;
    switch (t.kind) {
      case 'struct':
      case 'union':
        out = { kind: t.kind, name: t.name, size: t.size, members: [] };
        break;
      case 'ptr':
      case 'const':
      case 'volatile':
      case 'restrict':
        out = { ...t, type: copy(t.type) };
        break;
      case 'typedef':
      case 'type_tag':
        out = { ...t, type: copy(t.type) };
        break;
      case 'array':
        out = { ...t, type: copy(t.type), indexType: copy(t.indexType) };
        break;
      case 'func_proto':
        out = { kind: 'func_proto', returnType: copy(t.returnType), params: t.params.map((p) => ({ name: p.name, type: copy(p.type) })) };
        break;
      case 'int':
      case 'enum':
      case 'enum64':
      case 'float':
      case 'fwd':
        out = structuredClone(t);
        break;
      default:
        throw new Error(`kfunc ${name}: cannot copy ${t.kind} [${id}]`);
    }
    const newId = findOrAdd(btf, out);
    copied.set(id, newId);
    return newId;
  };
  const proto = copy((kernel.get(kfunc) as { type: number }).type);
  return btf.add({ kind: 'func', name, type: proto, linkage: Linkage.EXTERN });
}
