// The instruction model shared by the assembler, the compiler, the ELF writer/reader, the loader and the VM.
//
// Encoding of one 8-byte slot (RFC 9669 §3, little-endian):
//	+--------+----+----+----------------+--------------------------------+
//	| opcode |dst |src |     offset     |              imm               |
//	+--------+----+----+----------------+--------------------------------+
//	  8 bits   4    4       16 (s)                  32 (s)
// The 64-bit immediate load (LD|IMM|DW) takes two slots; the second slot carries the high
// 32 bits of the constant in its imm and zeros elsewhere. It is one Instruction here.

import { Class, Mode, Size } from './opcode.ts';

export interface SourceLocation {
  file: string;
  line: number; // 1-based
  column: number; // 1-based
  text?: string; // the source line, for listings
}

export interface Instruction {
  opcode: number; // 0..255
  dst: number; // 0..15
  src: number; // 0..15
  offset: number; // signed 16-bit
  imm: number; // signed 32-bit
  /** LD|IMM|DW only: imm of the second slot (the constant's high 32 bits, signed 32-bit). */
  imm2?: number;
  /** Name of a function (or label) that starts at this instruction. */
  symbol?: string;
  /** Symbol this instruction refers to; filled in by relocation (map, global, local function, kfunc). */
  reference?: string;
  /** Where the instruction came from (line info). */
  source?: SourceLocation;
}

export const INSN_SIZE = 8;
export const LDDW_OPCODE = Class.LD | Mode.IMM | Size.DW; // 0x18

export const isWide = (insn: Pick<Instruction, 'opcode'>): boolean => insn.opcode === LDDW_OPCODE;
/** Number of 8-byte slots an instruction takes. */
export const slots = (insn: Pick<Instruction, 'opcode'>): number => (isWide(insn) ? 2 : 1);

/** The 64-bit constant of a LD|IMM|DW instruction. */
export function wideConstant(insn: Instruction): bigint {
  return (BigInt(insn.imm2 ?? 0) << 32n) | BigInt(insn.imm >>> 0);
}

/** Split a 64-bit constant into imm (low, signed) and imm2 (high, signed). */
export function splitWide(value: bigint): { imm: number; imm2: number } {
  const v = BigInt.asUintN(64, value);
  return { imm: Number(BigInt.asIntN(32, v & 0xffffffffn)), imm2: Number(BigInt.asIntN(32, v >> 32n)) };
}

export class DecodeError extends Error {}

/** Encode instructions into little-endian bytecode. */
export function encode(insns: readonly Instruction[]): Buffer {
  let n = 0;
  for (const i of insns) n += slots(i);
  const out = Buffer.alloc(n * INSN_SIZE);
  let off = 0;
  for (const i of insns) {
    out.writeUInt8(i.opcode & 0xff, off);
    out.writeUInt8(((i.src & 0x0f) << 4) | (i.dst & 0x0f), off + 1);
    out.writeInt16LE(i.offset, off + 2);
    out.writeInt32LE(i.imm | 0, off + 4);
    off += INSN_SIZE;
    if (isWide(i)) {
      out.writeInt32LE((i.imm2 ?? 0) | 0, off + 4);
      off += INSN_SIZE;
    }
  }
  return out;
}

/** Decode little-endian bytecode. A LD|IMM|DW whose second slot is missing is an error. */
export function decode(bytes: Uint8Array): Instruction[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length % INSN_SIZE !== 0) throw new DecodeError(`bytecode length ${buf.length} is not a multiple of 8`);
  const out: Instruction[] = [];
  for (let off = 0; off < buf.length; off += INSN_SIZE) {
    const regs = buf.readUInt8(off + 1);
    const insn: Instruction = {
      opcode: buf.readUInt8(off),
      dst: regs & 0x0f,
      src: regs >> 4,
      offset: buf.readInt16LE(off + 2),
      imm: buf.readInt32LE(off + 4),
    };
    if (isWide(insn)) {
      if (off + 2 * INSN_SIZE > buf.length) throw new DecodeError(`insn ${off / 8}: 64-bit immediate load is missing its second slot`);
      insn.imm2 = buf.readInt32LE(off + INSN_SIZE + 4);
      off += INSN_SIZE;
    }
    out.push(insn);
  }
  return out;
}

/** Slot index (8-byte units) of each instruction; the last entry is the total. */
export function slotOffsets(insns: readonly Instruction[]): number[] {
  const offs = new Array<number>(insns.length + 1);
  let n = 0;
  for (let i = 0; i < insns.length; i++) {
    offs[i] = n;
    n += slots(insns[i]!);
  }
  offs[insns.length] = n;
  return offs;
}
