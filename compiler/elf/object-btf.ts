// The BTF an object file must carry for libbpf (bpftool, tc) and the kernel to accept it, derived
// from the ObjectSpec's own BTF (a copy; ids already in the spec stay valid since we only append):
//   - DATASEC ".maps": one VAR per BTF-defined map, its type the map definition struct. A VAR whose
//     definition no longer matches its MapSpec (edited after reading) is replaced.
//   - DATASEC per global-data section (".rodata", …): the map's value type; sized to the section.
//   - DATASEC ".ksyms": the extern FUNC of every kfunc the code calls (libbpf refuses externs
//     outside .ksyms/.kconfig).
//   - a FUNC for every program and function without func_info, since the kernel wants func_info
//     for all subprograms or none.

import { Btf } from '../btf/btf.ts';
import { addFunc, addInt, addMapDefinition, addPtr, parseMapDefinition } from '../btf/builders.ts';
import { Linkage, type BtfType, type BtfVarSecinfo } from '../btf/types.ts';
import { fail, within } from './errors.ts';
import type { MapSpec, ObjectSpec, VariableSpec } from './spec.ts';

type Datasec = Extract<BtfType, { kind: 'datasec' }>;

export interface MapSlot {
  map: MapSpec;
  offset: number; // in .maps
  size: number;
}

function datasec(btf: Btf, name: string): Datasec {
  const id = btf.find(name, 'datasec');
  if (id !== undefined) return btf.get(id) as Datasec;
  const t: Datasec = { kind: 'datasec', name, size: 0, vars: [] };
  btf.add(t);
  return t;
}

/** Add or reuse map definitions and lay out .maps; returns each map's place in the section. */
export function completeMaps(btf: Btf, maps: readonly MapSpec[]): MapSlot[] {
  const sec = datasec(btf, '.maps');
  const existing = new Map<string, number>();
  for (const v of sec.vars) existing.set(btf.nameOf(v.type), v.type);
  const slots: MapSlot[] = [];
  const vars: BtfVarSecinfo[] = [];
  let offset = 0;
  for (const map of maps) {
    within(`map ${map.name}`, () => {
      let varId = existing.get(map.name);
      if (varId !== undefined && !matches(btf, varId, map)) varId = undefined;
      if (varId === undefined) {
        if (map.keyTypeId && btf.sizeof(map.keyTypeId) !== map.keySize) fail(`key type ${btf.describe(map.keyTypeId)} is not ${map.keySize} bytes`);
        if (map.valueTypeId && btf.sizeof(map.valueTypeId) !== map.valueSize) fail(`value type ${btf.describe(map.valueTypeId)} is not ${map.valueSize} bytes`);
        varId = addMapDefinition(btf, map.name, {
          type: map.type,
          maxEntries: map.maxEntries,
          flags: map.flags,
          pinning: map.pinning,
          key: map.keyTypeId ? { typeId: map.keyTypeId } : { size: map.keySize },
          value: map.valueTypeId ? { typeId: map.valueTypeId } : { size: map.valueSize },
        });
      }
      const size = btf.sizeof(varId);
      offset = Math.ceil(offset / 8) * 8;
      slots.push({ map, offset, size });
      vars.push({ type: varId, offset, size });
      offset += size;
    });
  }
  sec.vars = vars;
  sec.size = offset;
  return slots;
}

function matches(btf: Btf, varId: number, map: MapSpec): boolean {
  const d = parseMapDefinition(btf, varId);
  return (
    d.type === map.type &&
    d.maxEntries === map.maxEntries &&
    d.flags === map.flags &&
    d.pinning === map.pinning &&
    d.keySize === map.keySize &&
    d.valueSize === map.valueSize &&
    d.keyTypeId === map.keyTypeId &&
    d.valueTypeId === map.valueTypeId
  );
}

/**
 * The DATASEC of a global-data section, created from the section's variables when the spec's BTF
 * has none. Returns its id, the map's BTF value type.
 */
export function completeGlobalSection(btf: Btf, section: string, size: number, variables: readonly VariableSpec[]): number {
  const existing = btf.find(section, 'datasec');
  if (existing !== undefined) {
    (btf.get(existing) as Datasec).size = size;
    return existing;
  }
  const vars = variables
    .filter((v) => v.section === section)
    .sort((a, b) => a.offset - b.offset)
    .map((v) => {
      // A variable without a type is typed as bytes, so the DATASEC still covers it.
      const type = v.typeId || btf.add({ kind: 'array', type: addInt(btf, 'unsigned char', 1, false), indexType: addInt(btf, '__ARRAY_SIZE_TYPE__', 4, false), nelems: v.size });
      const varId = btf.add({ kind: 'var', name: v.name, type, linkage: Linkage.GLOBAL });
      return { type: varId, offset: v.offset, size: v.size };
    });
  return btf.add({ kind: 'datasec', name: section, size, vars });
}

/** DATASEC .ksyms listing the extern FUNC of each kfunc; the FUNCs must already be declared. */
export function completeKsyms(btf: Btf, kfuncs: readonly string[]): void {
  if (kfuncs.length === 0) return;
  const sec = datasec(btf, '.ksyms');
  sec.vars = kfuncs.map((name) => {
    const id = btf.findAll(name, 'func').find((f) => (btf.get(f) as { linkage: number }).linkage === Linkage.EXTERN);
    if (id === undefined) fail(`kfunc ${name}: no extern FUNC declaration in BTF (declare it with addKfuncDeclaration)`);
    return { type: id!, offset: 0, size: 0 };
  });
}

/**
 * A FUNC for code without func_info: programs get `int name(void *ctx)` with global linkage (as
 * clang emits for SEC() functions); functions are static, so the kernel does not check their
 * arguments against this made-up prototype.
 */
export function syntheticFunc(btf: Btf, name: string, isProgram: boolean): number {
  const int = addInt(btf, 'int', 4, true);
  if (isProgram) return addFunc(btf, name, int, [{ name: 'ctx', type: addPtr(btf, 0) }], Linkage.GLOBAL);
  return addFunc(btf, name, addInt(btf, 'long', 8, true), [], Linkage.STATIC);
}

export function objectBtf(spec: ObjectSpec): Btf {
  return spec.btf ? spec.btf.clone() : new Btf();
}
