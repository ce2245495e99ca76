// What an ELF object holds, independent of any kernel (cilium/ebpf's CollectionSpec): reading an
// ELF gives the same ObjectSpec on every machine; only runtime/loader touches the kernel.
// compiler/elf/writer.ts turns an ObjectSpec into ELF bytes; compiler/elf/reader.ts does the reverse.

import type { Instruction } from '../asm/instruction.ts';
import type { Btf } from '../btf/btf.ts';
import type { CoreRelo, FuncInfo, LineInfo } from '../btf/types.ts';

/** How an instruction refers to something outside the program; applied in one place by the loader. */
export type RelocationKind =
  | 'map' //        LD_IMM64 src=MAP_FD: the map's fd
  | 'global' //     LD_IMM64 src=MAP_VALUE: address of a variable in .data/.rodata/.bss (+ offset)
  | 'call' //       CALL src=1 into another function of the object (.text or same section)
  | 'func_addr' //  LD_IMM64 src=FUNC: address of a local function (bpf_loop callbacks)
  | 'kfunc'; //     CALL src=2: BTF id of a kernel function, resolved from vmlinux BTF

export interface Relocation {
  /** Index into ProgramSpec.instructions (instruction index, not slot). */
  insn: number;
  kind: RelocationKind;
  /** Map name, global section name ('.rodata', …), function name, or kfunc name. */
  symbol: string;
  /** 'global': byte offset of the variable inside its section. */
  offset?: number;
}

export interface ProgramSpec {
  /** The function symbol; also the kernel program name (truncated to 15 bytes on load). */
  name: string;
  /** ELF section, libbpf naming: 'tc', 'tc/ingress', 'tcx/egress', 'xdp', 'syscall', 'socket', … */
  section: string;
  /** BPF_PROG_TYPE_* and BPF_* attach type derived from the section (0 where none). */
  progType: number;
  attachType: number;
  /** 'syscall' programs and sections ending in '.s' are sleepable (BPF_F_SLEEPABLE). */
  sleepable: boolean;
  /** The program's own instructions, with relocations still symbolic. Subprograms are in ObjectSpec.functions. */
  instructions: Instruction[];
  relocations: Relocation[];
  /** .BTF.ext records for this program, insnOff in bytes from the program's first instruction. */
  funcInfo: FuncInfo[];
  lineInfo: LineInfo[];
  /** .BTF.ext CO-RE relocations (insnOff in bytes from the program's start), kept opaque. */
  coreRelos?: CoreRelo[];
}

/** A BPF-to-BPF function (from .text, libbpf's convention), linked into each program that calls it. */
export interface FunctionSpec {
  name: string;
  instructions: Instruction[];
  relocations: Relocation[];
  funcInfo: FuncInfo[];
  lineInfo: LineInfo[];
  coreRelos?: CoreRelo[];
}

export const Pinning = { NONE: 0, BY_NAME: 1 } as const;

export interface MapSpec {
  name: string;
  type: number; // BPF_MAP_TYPE_*
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  pinning: number; // Pinning
  /** BTF type ids (in ObjectSpec.btf) of key and value; 0 when unknown. */
  keyTypeId: number;
  valueTypeId: number;
  /** Global-data maps: the ELF section ('.rodata', '.data', '.bss', '.rodata.str1.1', …). */
  section?: string;
  /** Initial value of a global-data map (one entry, key 0). */
  initialValue?: Buffer;
  /** .rodata and .kconfig are frozen after initialisation. */
  readOnly?: boolean;
}

/** A variable in a global-data section (for typed access from userspace and listings). */
export interface VariableSpec {
  name: string;
  section: string;
  offset: number;
  size: number;
  typeId: number;
}

export interface ObjectSpec {
  license: string;
  programs: ProgramSpec[];
  functions: FunctionSpec[];
  maps: MapSpec[];
  variables: VariableSpec[];
  btf?: Btf;
}
