// Random tc programs the verifier accepts, for differential testing (VM vs kernel test run).
//
// Shape of every program:
//   r6 = ctx; r9 = data; if data + 64 > data_end → return 1 (the test packets are ≥ 64 bytes)
//   r0–r5, r7, r8 ← 8-byte loads from the packet (unknown to the verifier)
//   N random instructions: ALU/ALU64 (K and X, every op, sdiv/smod, movsx, byte swaps),
//     forward JMP/JMP32 branches, packet loads (incl. sign-extending) and stores through r9,
//     stack stores/loads and stack atomics
//   fold every register into r0, store the fold into the packet's last 8 bytes, exit
// Verifier constraints respected: no backward jumps, immediate shifts below the operand width,
// r6/r9/r10 never written by random ops, every stack slot written before it is read.
//
// This kernel's verifier crashes on AND of a value known to be in [-1,0] in bulk (a fork in
// maybe_fork_scalars, Linux 6.18): AND is only emitted on registers whose last writer was a
// packet load or an op that keeps the value unknown, never after ARSH/NEG/constant moves.

import { type Instruction } from '../../compiler/asm/instruction.ts';
import { AluOp, Class, JmpOp, Size, Source } from '../../compiler/asm/opcode.ts';
import {
  Alu32, Alu64, Atomic, Jmp, Jmp32, R0, R1, R6, R9, R10, be16, be32, be64, bswap16, bswap32, bswap64, exit, label, le16, le32, le64,
  link, lddw, ldx, ldxsx, movsx32, movsx64, st, stx,
} from '../../compiler/asm/builder.ts';

/** xorshift128+ — reproducible from a printed seed. */
export class Rng {
  private s0: bigint;
  private s1: bigint;
  constructor(readonly seed: number) {
    this.s0 = BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n + 1n);
    this.s1 = BigInt.asUintN(64, this.s0 ^ 0xbf58476d1ce4e5b9n);
    for (let i = 0; i < 8; i++) this.next64();
  }
  next64(): bigint {
    let x = this.s0;
    const y = this.s1;
    this.s0 = y;
    x = BigInt.asUintN(64, x ^ (x << 23n));
    this.s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return BigInt.asUintN(64, this.s1 + y);
  }
  int(n: number): number {
    return Number(this.next64() % BigInt(n));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.int(1_000_000) < p * 1_000_000;
  }
  imm32(): number {
    switch (this.int(4)) {
      case 0:
        return this.pick([0, 1, -1, 2, 31, 32, 63, 64, 0x7fffffff, -0x80000000, 0xff, 0xffff]);
      case 1:
        return this.int(256) - 128;
      default:
        return Number(BigInt.asIntN(32, this.next64()));
    }
  }
}

const SCRATCH = [0, 1, 2, 3, 4, 5, 7, 8];
const BINARY = ['add', 'sub', 'mul', 'div', 'sdiv', 'or', 'and', 'lsh', 'rsh', 'mod', 'smod', 'xor', 'arsh', 'mov'] as const;
const JUMPS = ['jeq', 'jgt', 'jge', 'jset', 'jne', 'jsgt', 'jsge', 'jlt', 'jle', 'jslt', 'jsle'] as const;
const SIZES = [Size.B, Size.H, Size.W, Size.DW] as const;
const BYTES = { [Size.B]: 1, [Size.H]: 2, [Size.W]: 4, [Size.DW]: 8 } as const;
/** Stack slots the program initialises up front: fp-8 … fp-64. */
const STACK_SLOTS = 8;
export const PACKET_MIN = 64;

export interface GenerateOptions {
  /** Random instructions in the body. */
  length?: number;
  /** Upper bound on conditional branches (verifier paths grow with 2^branches). */
  branches?: number;
}

export function randomProgram(seed: number, opts: GenerateOptions = {}): Instruction[] {
  const rng = new Rng(seed);
  const length = opts.length ?? 24 + rng.int(40);
  let branches = opts.branches ?? 6;
  // true: the verifier may know this register is a small constant or in [-1,0] — keep AND off it.
  const narrow = new Map<number, boolean>();
  const items: Array<Instruction | ReturnType<typeof label>> = [];
  const emit = (i: Instruction) => items.push(i);

  emit(Alu64.mov.reg(R6, R1));
  emit(ldx(Size.W, R9, R6, 76)); // skb->data
  emit(ldx(Size.W, R1, R6, 80)); // skb->data_end
  emit(Alu64.mov.reg(R0, R9));
  emit(Alu64.add.imm(R0, PACKET_MIN));
  emit(Jmp.jgt.reg(R0, R1, 'short'));
  SCRATCH.forEach((r, i) => {
    emit(ldx(Size.DW, r, R9, (i * 8) % (PACKET_MIN - 8)));
    narrow.set(r, false);
  });
  for (let s = 1; s <= STACK_SLOTS; s++) emit(stx(Size.DW, R10, SCRATCH[s % SCRATCH.length]!, -8 * s));

  const pending: Array<{ name: string; at: number }> = [];
  let labelCount = 0;
  for (let n = 0; n < length; n++) {
    // Place labels whose time has come.
    for (const p of pending.filter((p) => p.at === n)) items.push(label(p.name));
    const dst = rng.pick(SCRATCH);
    const src = rng.pick(SCRATCH);
    const kind = rng.int(100);
    if (kind < 50) {
      const wide = rng.chance(0.6);
      const cls = wide ? Alu64 : Alu32;
      const width = wide ? 64 : 32;
      let op = rng.pick(BINARY);
      if (op === 'and' && narrow.get(dst)) op = 'xor';
      const useReg = rng.chance(0.5);
      if ((op === 'lsh' || op === 'rsh' || op === 'arsh') && !useReg) {
        emit(cls[op].imm(dst, rng.int(width)));
      } else if (useReg) {
        emit(cls[op].reg(dst, src));
      } else {
        // A constant divisor of 0 is rejected by the verifier ("div by zero"); registers may be 0.
        const imm = rng.imm32();
        emit(cls[op].imm(dst, imm === 0 && ['div', 'sdiv', 'mod', 'smod'].includes(op) ? 7 : imm));
      }
      narrow.set(dst, op === 'arsh' || op === 'mov' || op === 'sdiv' || op === 'smod' || op === 'rsh' || op === 'mod' || op === 'div' || (op === 'and' && !useReg) || (useReg && narrow.get(src) === true && op !== 'add' && op !== 'xor'));
    } else if (kind < 56) {
      emit(rng.pick([Alu64.neg, Alu32.neg])(dst));
      narrow.set(dst, true);
    } else if (kind < 62) {
      const w = rng.pick([8, 16, 32] as const);
      emit(w === 32 || rng.chance(0.5) ? movsx64(dst, src, w) : movsx32(dst, src, w));
      narrow.set(dst, true);
    } else if (kind < 67) {
      emit(rng.pick([be16, be32, be64, le16, le32, le64, bswap16, bswap32, bswap64])(dst));
      narrow.set(dst, true);
    } else if (kind < 72) {
      emit(lddw(dst, rng.next64()));
      narrow.set(dst, true);
    } else if (kind < 80) {
      const size = rng.pick(SIZES);
      const off = rng.int(PACKET_MIN - BYTES[size] + 1);
      emit(size !== Size.DW && rng.chance(0.4) ? ldxsx(size as typeof Size.B, dst, R9, off) : ldx(size, dst, R9, off));
      narrow.set(dst, size !== Size.DW);
    } else if (kind < 85) {
      const size = rng.pick(SIZES);
      const off = rng.int(PACKET_MIN - 8 - BYTES[size] + 1); // the last 8 bytes hold the result
      emit(rng.chance(0.7) ? stx(size, R9, src, off) : st(size, R9, off, rng.imm32()));
    } else if (kind < 92) {
      const slot = -8 * (1 + rng.int(STACK_SLOTS));
      switch (rng.int(4)) {
        case 0:
          emit(stx(Size.DW, R10, src, slot));
          break;
        case 1:
          emit(ldx(Size.DW, dst, R10, slot));
          narrow.set(dst, true);
          break;
        case 2: {
          const size = rng.pick([Size.W, Size.DW] as const);
          const fetch = rng.chance(0.5);
          const op = rng.pick(['add', 'or', 'and', 'xor'] as const);
          const name = (fetch ? `fetch${op[0]!.toUpperCase()}${op.slice(1)}` : op) as keyof typeof Atomic;
          emit((Atomic[name] as (s: number, d: number, r: number, o: number) => Instruction)(size, R10, src, slot));
          if (fetch) narrow.set(src, true);
          break;
        }
        default: {
          const size = rng.pick([Size.W, Size.DW] as const);
          if (rng.chance(0.5)) {
            emit(Atomic.xchg(size, R10, src, slot));
            narrow.set(src, true);
          } else {
            emit(Atomic.cmpxchg(size, R10, src, slot));
            narrow.set(R0, true);
          }
        }
      }
    } else if (branches > 0) {
      branches--;
      const name = `L${labelCount++}`;
      const at = n + 1 + rng.int(Math.max(1, Math.min(12, length - n)));
      pending.push({ name, at: Math.min(at, length) });
      const j = rng.chance(0.5) ? Jmp : Jmp32;
      const op = rng.pick(JUMPS);
      emit(rng.chance(0.5) ? j[op].reg(dst, src, name) : j[op].imm(dst, rng.imm32(), name));
    } else {
      emit(Alu64.add.reg(dst, src));
    }
  }
  for (const p of pending.filter((p) => p.at >= length)) items.push(label(p.name));

  // Fold everything into r0 and the packet's last 8 bytes.
  for (const r of SCRATCH) if (r !== R0) emit(Alu64.xor.reg(R0, r));
  for (let s = 1; s <= STACK_SLOTS; s++) {
    emit(ldx(Size.DW, R1, R10, -8 * s));
    emit(Alu64.mul.imm(R0, 31));
    emit(Alu64.add.reg(R0, R1));
  }
  emit(stx(Size.DW, R9, R0, PACKET_MIN - 8));
  emit(exit());
  items.push(label('short'));
  emit(Alu64.mov.imm(R0, 1));
  emit(exit());
  return link(items);
}

/** A reproducible test packet of `len` bytes (an Ethernet/IPv4 header, then random bytes). */
export function randomPacket(seed: number, len = 96): Buffer {
  const rng = new Rng(seed ^ 0x5a5a5a5a);
  const p = Buffer.alloc(len);
  for (let i = 0; i < len; i++) p[i] = rng.int(256);
  p.writeUInt16BE(0x0800, 12); // the kernel's test run derives skb->protocol from the ethertype
  return p;
}

// Keep opcode constants referenced for readers cross-checking the shape above.
void AluOp;
void Class;
void JmpOp;
void Source;
