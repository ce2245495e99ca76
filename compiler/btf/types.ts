// The BTF type model (linux/btf.h, Documentation/bpf/btf.rst). Type id 0 is void; the id of a
// type is its index in Btf.types. Names are plain strings here; the string section is built on
// encode and read on decode (compiler/btf/btf.ts).

export const BtfKind = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

/** BTF_INT_* encoding bits. */
export const IntEncoding = { SIGNED: 1, CHAR: 2, BOOL: 4 } as const;
/** Linkage of FUNC (in vlen) and VAR. */
export const Linkage = { STATIC: 0, GLOBAL: 1, EXTERN: 2 } as const;

export interface BtfMember {
  name: string;
  type: number;
  /** Offset in bits; for bitfields also set bitfieldSize (kind_flag structs). */
  bitOffset: number;
  bitfieldSize?: number;
}
export interface BtfParam {
  name: string;
  type: number;
}
export interface BtfEnumValue {
  name: string;
  value: bigint;
}
export interface BtfVarSecinfo {
  type: number; // a VAR (or FUNC for .ksyms)
  offset: number;
  size: number;
}

export type BtfType =
  | { kind: 'void' }
  | { kind: 'int'; name: string; size: number; encoding: number; bitOffset: number; bits: number }
  | { kind: 'ptr'; type: number }
  | { kind: 'array'; type: number; indexType: number; nelems: number }
  /** kindFlag: member offsets carry a bitfield size (kind_flag); inferred from the members when absent. */
  | { kind: 'struct' | 'union'; name: string; size: number; members: BtfMember[]; kindFlag?: boolean }
  | { kind: 'enum'; name: string; size: number; signed: boolean; values: BtfEnumValue[] }
  | { kind: 'enum64'; name: string; size: number; signed: boolean; values: BtfEnumValue[] }
  | { kind: 'fwd'; name: string; union: boolean }
  | { kind: 'typedef'; name: string; type: number }
  | { kind: 'volatile' | 'const' | 'restrict'; type: number }
  | { kind: 'func'; name: string; type: number; linkage: number }
  | { kind: 'func_proto'; returnType: number; params: BtfParam[] }
  | { kind: 'var'; name: string; type: number; linkage: number }
  | { kind: 'datasec'; name: string; size: number; vars: BtfVarSecinfo[] }
  | { kind: 'float'; name: string; size: number }
  /** kindFlag (Linux 6.13+): the tag is an __attribute__ to emit verbatim, not a btf_*_tag. */
  | { kind: 'decl_tag'; name: string; type: number; componentIdx: number; kindFlag?: boolean }
  | { kind: 'type_tag'; name: string; type: number; kindFlag?: boolean };

/** .BTF.ext func_info record: a function starts at byte offset insnOff of its section. */
export interface FuncInfo {
  insnOff: number; // bytes, relative to the start of the ELF section (in an object file)
  typeId: number; // a FUNC
}

/** .BTF.ext line_info record. line/column are 1-based; column 0 means unknown. */
/** .BTF.ext CO-RE relocation record, kept opaque: the loader does not apply CO-RE. */
export interface CoreRelo {
  insnOff: number; // bytes, relative to the start of the ELF section
  typeId: number;
  accessString: string; // "0:1:2": member indices
  kind: number; // enum bpf_core_relo_kind
}

export interface LineInfo {
  insnOff: number; // bytes, relative to the start of the ELF section
  fileName: string;
  lineText: string;
  line: number;
  column: number;
}
