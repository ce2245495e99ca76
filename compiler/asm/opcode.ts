// The fields of a BPF opcode byte (RFC 9669 §3, §4, §5).
//
// ALU, ALU64, JMP, JMP32:           LD, LDX, ST, STX:
//	msb              lsb             msb              lsb
//	+--------+-+-----+               +-----+----+-----+
//	|   op   |S| cls |               |mode |size| cls |
//	+--------+-+-----+               +-----+----+-----+
//	  4 bits  1  3                     3     2     3

/** Instruction class: the low three bits of the opcode. */
export const Class = {
  LD: 0x00,
  LDX: 0x01,
  ST: 0x02,
  STX: 0x03,
  ALU: 0x04,
  JMP: 0x05,
  JMP32: 0x06,
  ALU64: 0x07,
} as const;
export type Class = (typeof Class)[keyof typeof Class];

/** Source operand (bit 3) of ALU and JMP opcodes: the immediate (K) or the src register (X). */
export const Source = {
  K: 0x00,
  X: 0x08,
} as const;

/** ALU operation: the high four bits of ALU/ALU64 opcodes. */
export const AluOp = {
  ADD: 0x00,
  SUB: 0x10,
  MUL: 0x20,
  DIV: 0x30, // offset 1: SDIV
  OR: 0x40,
  AND: 0x50,
  LSH: 0x60,
  RSH: 0x70,
  NEG: 0x80,
  MOD: 0x90, // offset 1: SMOD
  XOR: 0xa0,
  MOV: 0xb0, // offset 8/16/32: MOVSX
  ARSH: 0xc0,
  END: 0xd0, // byte swap: ALU with S=K → le, S=X → be; ALU64 with S=K → bswap
} as const;

/** Jump operation: the high four bits of JMP/JMP32 opcodes. */
export const JmpOp = {
  JA: 0x00, // JMP: offset; JMP32: imm (gotol)
  JEQ: 0x10,
  JGT: 0x20,
  JGE: 0x30,
  JSET: 0x40,
  JNE: 0x50,
  JSGT: 0x60,
  JSGE: 0x70,
  CALL: 0x80,
  EXIT: 0x90,
  JLT: 0xa0,
  JLE: 0xb0,
  JSLT: 0xc0,
  JSLE: 0xd0,
} as const;

/** Load/store mode: the high three bits of LD/LDX/ST/STX opcodes. */
export const Mode = {
  IMM: 0x00, // LD only: the 16-byte 64-bit immediate load
  ABS: 0x20, // legacy packet access
  IND: 0x40, // legacy packet access
  MEM: 0x60,
  MEMSX: 0x80, // LDX only: sign-extending load
  ATOMIC: 0xc0, // STX only
} as const;

/** Access size: bits 3–4 of LD/LDX/ST/STX opcodes. */
export const Size = {
  W: 0x00, // 4 bytes
  H: 0x08, // 2 bytes
  B: 0x10, // 1 byte
  DW: 0x18, // 8 bytes
} as const;

/** Atomic operation in the imm field of STX|ATOMIC instructions. */
export const AtomicOp = {
  ADD: 0x00,
  OR: 0x40,
  AND: 0x50,
  XOR: 0xa0,
  FETCH: 0x01,
  XCHG: 0xe0 | 0x01,
  CMPXCHG: 0xf0 | 0x01,
} as const;

/** src field of a 64-bit immediate load (LD|IMM|DW): what imm means (RFC 9669 §5.4). */
export const PseudoSrc = {
  IMM64: 0,
  MAP_FD: 1, // imm = map fd
  MAP_VALUE: 2, // imm = map fd, imm2 = offset into value (map_val(map_by_fd(imm)) + next_imm)
  BTF_ID: 3, // imm = BTF id of a kernel variable
  FUNC: 4, // imm = instruction offset of a local function
  MAP_IDX: 5, // imm = map index (fd array)
  MAP_IDX_VALUE: 6,
} as const;

/** src field of a CALL instruction: what imm means. */
export const CallSrc = {
  HELPER: 0, // imm = helper id
  LOCAL: 1, // imm = relative offset of a BPF-to-BPF call (pc + imm + 1)
  KFUNC: 2, // imm = BTF id of the kernel function
} as const;

export const opClass = (opcode: number): number => opcode & 0x07;
export const isAluClass = (cls: number): boolean => cls === Class.ALU || cls === Class.ALU64;
export const isJumpClass = (cls: number): boolean => cls === Class.JMP || cls === Class.JMP32;
export const sizeBytes = (size: number): number => ({ [Size.W]: 4, [Size.H]: 2, [Size.B]: 1, [Size.DW]: 8 })[size & 0x18]!;

/** Registers r0–r10. r10 is the read-only frame pointer. */
export const Reg = { R0: 0, R1: 1, R2: 2, R3: 3, R4: 4, R5: 5, R6: 6, R7: 7, R8: 8, R9: 9, R10: 10, FP: 10 } as const;
export type Register = number;
