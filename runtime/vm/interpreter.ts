// The interpreter: one loop, one switch per instruction class (RFC 9669 semantics, cpu v4).
//
// Registers are two Uint32Arrays of halves, not BigInts: most instructions are 32-bit work
// on one half (and typed-array stores do the wrap-around for free); only 64-bit
// division and modulo fall back to BigInt. Memory accesses check the region table (memory.ts);
// the fast path is a plain bounds check, contexts and faults take the slow path.

import { formatInstruction } from './format.ts';
import { VmError, VmFault } from './errors.ts';
import { hex, type Region } from './memory.ts';
import type { Machine } from './machine.ts';
import type { Code } from './program.ts';

export const STACK_SIZE = 512;
/** The kernel's MAX_CALL_FRAMES: the program's frame plus seven nested calls. */
export const MAX_FRAMES = 8;

/** A legacy packet load (LD_ABS/LD_IND) out of bounds: the program returns 0 at once. */
export class ProgramAbort extends Error {
  constructor() {
    super('legacy packet load out of bounds');
  }
}

const SIZE = [4, 2, 1, 8]; // by (opcode & 0x18) >> 3

const bswap16 = (x: number): number => ((x & 0xff) << 8) | ((x >>> 8) & 0xff);
const bswap32 = (x: number): number => (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;

/** High 32 bits of the 64-bit product of two unsigned 32-bit numbers, in 16-bit pieces to stay exact. */
function umulhi(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const m1 = a1 * b0 + ((a0 * b0) >>> 16);
  const m2 = a0 * b1 + (m1 & 0xffff);
  return a1 * b1 + Math.floor(m1 / 0x10000) + Math.floor(m2 / 0x10000);
}

const big = (lo: Uint32Array, hi: Uint32Array, r: number): bigint => (BigInt(hi[r]!) << 32n) | BigInt(lo[r]!);

function set(lo: Uint32Array, hi: Uint32Array, r: number, v: bigint | number): void {
  if (typeof v === 'number') {
    lo[r] = v;
    hi[r] = v < 0 ? 0xffffffff : Math.floor(v / 0x100000000);
    return;
  }
  const u = BigInt.asUintN(64, v);
  lo[r] = Number(u & 0xffffffffn);
  hi[r] = Number(u >> 32n);
}

function compare64(op: number, al: number, ah: number, bl: number, bh: number): boolean {
  switch (op) {
    case 0x10: return al === bl && ah === bh; // jeq
    case 0x50: return al !== bl || ah !== bh; // jne
    case 0x20: return ah > bh || (ah === bh && al > bl); // jgt
    case 0x30: return ah > bh || (ah === bh && al >= bl); // jge
    case 0xa0: return ah < bh || (ah === bh && al < bl); // jlt
    case 0xb0: return ah < bh || (ah === bh && al <= bl); // jle
    case 0x40: return (al & bl) !== 0 || (ah & bh) !== 0; // jset
    case 0x60: return (ah | 0) > (bh | 0) || (ah === bh && al > bl); // jsgt
    case 0x70: return (ah | 0) > (bh | 0) || (ah === bh && al >= bl); // jsge
    case 0xc0: return (ah | 0) < (bh | 0) || (ah === bh && al < bl); // jslt
    case 0xd0: return (ah | 0) < (bh | 0) || (ah === bh && al <= bl); // jsle
  }
  return false;
}

function compare32(op: number, a: number, b: number): boolean {
  switch (op) {
    case 0x10: return a === b;
    case 0x50: return a !== b;
    case 0x20: return a > b;
    case 0x30: return a >= b;
    case 0xa0: return a < b;
    case 0xb0: return a <= b;
    case 0x40: return (a & b) !== 0;
    case 0x60: return (a | 0) > (b | 0);
    case 0x70: return (a | 0) >= (b | 0);
    case 0xc0: return (a | 0) < (b | 0);
    case 0xd0: return (a | 0) <= (b | 0);
  }
  return false;
}

/** A load the fast path refused: a context field, or a fault. */
function loadSlow(region: Region | undefined, h: number, l: number, size: number): bigint {
  if (region?.access) {
    const v = region.access.load(l, size);
    if (v === undefined) throw new VmFault('invalid context access', `${size}-byte load at ctx+${l} (${region.name})`);
    return v;
  }
  throw outOfBounds(region, h, l, size, 'load');
}

function storeSlow(region: Region | undefined, h: number, l: number, size: number, value: bigint): void {
  if (region?.access) {
    if (!region.access.store(l, size, value)) throw new VmFault('invalid context access', `${size}-byte store at ctx+${l} (${region.name})`);
    return;
  }
  if (region && l >= region.start && l + size <= region.end) {
    throw new VmFault('write to read-only memory', `${size}-byte store at ${hex((BigInt(h) << 32n) | BigInt(l))} (${region.name})`);
  }
  throw outOfBounds(region, h, l, size, 'store');
}

function outOfBounds(region: Region | undefined, h: number, l: number, size: number, what: string): VmFault {
  return new VmFault('out of bounds memory access', `${size}-byte ${what} at ${hex((BigInt(h) << 32n) | BigInt(l))}${region ? ` (${region.name})` : ''}`);
}

/**
 * Run `code` from slot `entry` with r1–r5 = args in a new frame at depth m.depth + 1 (the
 * program itself, or a bpf_loop callback), until its EXIT. Returns r0.
 */
export function execute(m: Machine, code: Code, entry: number, args: readonly bigint[]): bigint {
  const lo = new Uint32Array(11);
  const hi = new Uint32Array(11);
  for (let i = 0; i < args.length && i < 5; i++) set(lo, hi, i + 1, args[i]!);
  const baseDepth = m.depth;
  if (baseDepth + 1 >= MAX_FRAMES) throw new VmError(`call depth exceeds ${MAX_FRAMES} frames at PC ${entry}`, entry);
  m.depth = baseDepth + 1;
  let stack = m.stacks[m.depth]!;
  stack.buf.fill(0);
  lo[10] = STACK_SIZE;
  hi[10] = stack.id;

  // Callee-saved registers (r6–r9) and the frame pointer of each caller, and return slots.
  const saved = new Uint32Array(MAX_FRAMES * 10);
  const returns = new Int32Array(MAX_FRAMES);
  let frame = 0;

  const regions = m.memory.regions;
  const { op: ops, dst: dsts, src: srcs, off: offs, imm: imms, wideLo, wideHi, natives } = code;
  let pc = entry;
  let cur = entry;
  let budget = m.budget;
  try {
    for (;;) {
      cur = pc++;
      if (--budget < 0) throw new VmFault(`instruction limit exceeded (${m.instructionLimit})`);
      const o = ops[cur]!;
      const d = dsts[cur]!;
      const s = srcs[cur]!;
      switch (o & 0x07) {
        case 0x04: {
          // ALU: 32-bit, result zero-extended
          const a = lo[d]!;
          const b = o & 0x08 ? lo[s]! : imms[cur]! >>> 0;
          switch (o & 0xf0) {
            case 0x00: lo[d] = a + b; break;
            case 0x10: lo[d] = a - b; break;
            case 0x20: lo[d] = Math.imul(a, b); break;
            // Typed-array stores truncate toward zero, which is C division for both signs;
            // INT_MIN / -1 gives 2^31, stored as INT_MIN as the RFC requires.
            case 0x30: lo[d] = b === 0 ? 0 : offs[cur] === 0 ? a / b : (a | 0) / (b | 0); break;
            case 0x40: lo[d] = a | b; break;
            case 0x50: lo[d] = a & b; break;
            case 0x60: lo[d] = a << (b & 31); break;
            case 0x70: lo[d] = a >>> (b & 31); break;
            case 0x80: lo[d] = -a; break;
            case 0x90: if (b !== 0) lo[d] = offs[cur] === 0 ? a % b : (a | 0) % (b | 0); break; // mod 0 leaves dst
            case 0xa0: lo[d] = a ^ b; break;
            case 0xb0: {
              const w = offs[cur];
              lo[d] = w === 0 ? b : w === 8 ? (b << 24) >> 24 : (b << 16) >> 16;
              break;
            }
            case 0xc0: lo[d] = (a | 0) >> (b & 31); break;
            case 0xd0: {
              // le (K) is a truncation on this little-endian VM, be (X) a swap; 64-bit forms keep the high half.
              const width = imms[cur];
              if (o & 0x08) {
                if (width === 16) lo[d] = bswap16(a);
                else if (width === 32) lo[d] = bswap32(a);
                else {
                  const h = hi[d]!;
                  hi[d] = bswap32(a);
                  lo[d] = bswap32(h);
                  continue;
                }
              } else if (width === 16) lo[d] = a & 0xffff;
              else if (width === 64) continue;
              break;
            }
          }
          hi[d] = 0;
          break;
        }
        case 0x07: {
          // ALU64
          let bl: number, bh: number;
          if (o & 0x08) {
            bl = lo[s]!;
            bh = hi[s]!;
          } else {
            const i = imms[cur]!;
            bl = i >>> 0;
            bh = i < 0 ? 0xffffffff : 0;
          }
          const al = lo[d]!;
          const ah = hi[d]!;
          switch (o & 0xf0) {
            case 0x00: {
              const l = al + bl;
              lo[d] = l;
              hi[d] = ah + bh + (l > 0xffffffff ? 1 : 0);
              break;
            }
            case 0x10: {
              const l = al - bl;
              lo[d] = l;
              hi[d] = ah - bh - (l < 0 ? 1 : 0);
              break;
            }
            case 0x20:
              lo[d] = Math.imul(al, bl);
              hi[d] = umulhi(al, bl) + Math.imul(al, bh) + Math.imul(ah, bl);
              break;
            case 0x30:
            case 0x90: {
              const isDiv = (o & 0xf0) === 0x30;
              const signed = offs[cur] === 1;
              if (bl === 0 && bh === 0) {
                if (isDiv) lo[d] = hi[d] = 0; // div by 0 → 0; mod by 0 leaves dst
              } else if (!signed && ah === 0 && bh === 0) {
                lo[d] = isDiv ? al / bl : al % bl;
              } else {
                let a = (BigInt(ah) << 32n) | BigInt(al);
                let b = (BigInt(bh) << 32n) | BigInt(bl);
                if (signed) {
                  a = BigInt.asIntN(64, a);
                  b = BigInt.asIntN(64, b);
                }
                // BigInt division truncates toward zero like C; INT64_MIN / -1 wraps to INT64_MIN.
                set(lo, hi, d, isDiv ? a / b : a % b);
              }
              break;
            }
            case 0x40: lo[d] = al | bl; hi[d] = ah | bh; break;
            case 0x50: lo[d] = al & bl; hi[d] = ah & bh; break;
            case 0xa0: lo[d] = al ^ bl; hi[d] = ah ^ bh; break;
            case 0x60: {
              const n = bl & 63;
              if (n >= 32) {
                hi[d] = al << (n - 32);
                lo[d] = 0;
              } else if (n > 0) {
                hi[d] = (ah << n) | (al >>> (32 - n));
                lo[d] = al << n;
              }
              break;
            }
            case 0x70: {
              const n = bl & 63;
              if (n >= 32) {
                lo[d] = ah >>> (n - 32);
                hi[d] = 0;
              } else if (n > 0) {
                lo[d] = (al >>> n) | (ah << (32 - n));
                hi[d] = ah >>> n;
              }
              break;
            }
            case 0xc0: {
              const n = bl & 63;
              if (n >= 32) {
                lo[d] = (ah | 0) >> (n - 32);
                hi[d] = (ah | 0) >> 31;
              } else if (n > 0) {
                lo[d] = (al >>> n) | (ah << (32 - n));
                hi[d] = (ah | 0) >> n;
              }
              break;
            }
            case 0x80:
              lo[d] = -al;
              hi[d] = -ah - (al !== 0 ? 1 : 0);
              break;
            case 0xb0: {
              const w = offs[cur];
              if (w === 0) {
                lo[d] = bl;
                hi[d] = bh;
              } else {
                const v = w === 8 ? (bl << 24) >> 24 : w === 16 ? (bl << 16) >> 16 : bl | 0;
                lo[d] = v;
                hi[d] = v >> 31;
              }
              break;
            }
            case 0xd0: {
              // bswap: unconditional swap, the narrow forms zero-extend
              const width = imms[cur];
              if (width === 16) {
                lo[d] = bswap16(al);
                hi[d] = 0;
              } else if (width === 32) {
                lo[d] = bswap32(al);
                hi[d] = 0;
              } else {
                lo[d] = bswap32(ah);
                hi[d] = bswap32(al);
              }
              break;
            }
          }
          break;
        }
        case 0x05: {
          // JMP
          const jop = o & 0xf0;
          if (jop === 0x00) {
            pc += offs[cur]!;
            break;
          }
          if (jop === 0x80) {
            if (s === 1) {
              if (m.depth + 1 >= MAX_FRAMES) throw new VmFault(`call depth exceeds ${MAX_FRAMES} frames`);
              const base = frame * 10;
              for (let r = 0; r < 5; r++) {
                saved[base + r] = lo[6 + r]!;
                saved[base + 5 + r] = hi[6 + r]!;
              }
              returns[frame++] = pc;
              stack = m.stacks[++m.depth]!;
              stack.buf.fill(0);
              lo[10] = STACK_SIZE;
              hi[10] = stack.id;
              pc += imms[cur]!;
            } else {
              m.budget = budget;
              const ret = natives[cur]!(m, big(lo, hi, 1), big(lo, hi, 2), big(lo, hi, 3), big(lo, hi, 4), big(lo, hi, 5));
              budget = m.budget;
              set(lo, hi, 0, ret);
            }
            break;
          }
          if (jop === 0x90) {
            if (frame === 0) return big(lo, hi, 0);
            const base = --frame * 10;
            for (let r = 0; r < 5; r++) {
              lo[6 + r] = saved[base + r]!;
              hi[6 + r] = saved[base + 5 + r]!;
            }
            pc = returns[frame]!;
            m.depth--;
            break;
          }
          let bl: number, bh: number;
          if (o & 0x08) {
            bl = lo[s]!;
            bh = hi[s]!;
          } else {
            const i = imms[cur]!;
            bl = i >>> 0;
            bh = i < 0 ? 0xffffffff : 0;
          }
          if (compare64(jop, lo[d]!, hi[d]!, bl, bh)) pc += offs[cur]!;
          break;
        }
        case 0x06: {
          // JMP32; JA here is gotol with a 32-bit offset in imm
          const jop = o & 0xf0;
          if (jop === 0x00) pc += imms[cur]!;
          else if (compare32(jop, lo[d]!, o & 0x08 ? lo[s]! : imms[cur]! >>> 0)) pc += offs[cur]!;
          break;
        }
        case 0x01: {
          // LDX: dst = *(size *)(src + off), MEMSX sign-extends
          let l = lo[s]! + offs[cur]!;
          let h = hi[s]!;
          if (l < 0) {
            l += 0x100000000;
            h = (h - 1) >>> 0;
          } else if (l > 0xffffffff) {
            l -= 0x100000000;
            h = (h + 1) >>> 0;
          }
          const size = SIZE[(o & 0x18) >> 3]!;
          const r = regions[h];
          if (r === undefined || l < r.start || l + size > r.end) {
            let v = loadSlow(r, h, l, size);
            if ((o & 0xe0) === 0x80) v = BigInt.asIntN(size * 8, v);
            set(lo, hi, d, v);
            break;
          }
          const buf = r.buf;
          switch (o) {
            case 0x61: lo[d] = buf.readUInt32LE(l); hi[d] = 0; break;
            case 0x69: lo[d] = buf.readUInt16LE(l); hi[d] = 0; break;
            case 0x71: lo[d] = buf[l]!; hi[d] = 0; break;
            case 0x79: lo[d] = buf.readUInt32LE(l); hi[d] = buf.readUInt32LE(l + 4); break;
            case 0x81: { const v = buf.readInt32LE(l); lo[d] = v; hi[d] = v >> 31; break; }
            case 0x89: { const v = buf.readInt16LE(l); lo[d] = v; hi[d] = v >> 31; break; }
            case 0x91: { const v = buf.readInt8(l); lo[d] = v; hi[d] = v >> 31; break; }
          }
          break;
        }
        case 0x02:
        case 0x03: {
          // ST (imm) / STX (src register, or an atomic read-modify-write)
          let l = lo[d]! + offs[cur]!;
          let h = hi[d]!;
          if (l < 0) {
            l += 0x100000000;
            h = (h - 1) >>> 0;
          } else if (l > 0xffffffff) {
            l -= 0x100000000;
            h = (h + 1) >>> 0;
          }
          const size = SIZE[(o & 0x18) >> 3]!;
          let vl: number, vh: number;
          if (o & 0x01) {
            vl = lo[s]!;
            vh = hi[s]!;
          } else {
            const i = imms[cur]!;
            vl = i >>> 0;
            vh = i < 0 ? 0xffffffff : 0;
          }
          const r = regions[h];
          if (r === undefined || !r.writable || l < r.start || l + size > r.end) {
            if ((o & 0xe0) === 0xc0) throw r?.access ? new VmFault('atomic operation on the context') : outOfBounds(r, h, l, size, 'atomic');
            storeSlow(r, h, l, size, (BigInt(vh) << 32n) | BigInt(vl));
            break;
          }
          const buf = r.buf;
          if ((o & 0xe0) === 0xc0) {
            atomic(buf, l, size, imms[cur]!, lo, hi, s);
            break;
          }
          switch (size) {
            case 1: buf[l] = vl; break;
            case 2: buf.writeUInt16LE(vl & 0xffff, l); break;
            case 4: buf.writeUInt32LE(vl, l); break;
            default: buf.writeUInt32LE(vl, l); buf.writeUInt32LE(vh, l + 4);
          }
          break;
        }
        case 0x00: {
          // LD: the 64-bit immediate (resolved at load), or a legacy packet load
          if (o === 0x18) {
            lo[d] = wideLo[cur]!;
            hi[d] = wideHi[cur]!;
            pc++;
            break;
          }
          const size = SIZE[(o & 0x18) >> 3]!;
          const packet = m.legacyPacket();
          let offset = imms[cur]!;
          if ((o & 0xe0) === 0x40) offset = (lo[s]! + offset) | 0;
          if (!packet || offset < 0 || offset + size > packet.length) throw new ProgramAbort();
          lo[0] = size === 4 ? packet.readUInt32BE(offset) : size === 2 ? packet.readUInt16BE(offset) : packet[offset]!;
          hi[0] = 0;
          break;
        }
      }
    }
  } catch (e) {
    if (e instanceof VmFault) throw faultError(m, code, cur, lo, hi, e);
    throw e;
  } finally {
    m.budget = budget;
    m.depth = baseDepth;
  }
}

function atomic(buf: Buffer, l: number, size: number, op: number, lo: Uint32Array, hi: Uint32Array, s: number): void {
  if (size === 4) {
    const old = buf.readUInt32LE(l);
    const v = lo[s]!;
    if (op === 0xf1) {
      // cmpxchg: compare with r0, r0 = old value either way
      if (old === lo[0]) buf.writeUInt32LE(v, l);
      lo[0] = old;
      hi[0] = 0;
      return;
    }
    let next: number;
    switch (op & 0xf0) {
      case 0x00: next = old + v; break;
      case 0x40: next = old | v; break;
      case 0x50: next = old & v; break;
      case 0xa0: next = old ^ v; break;
      default: next = v; // xchg
    }
    buf.writeUInt32LE(next >>> 0, l);
    if (op & 0x01) {
      lo[s] = old;
      hi[s] = 0;
    }
    return;
  }
  const oldL = buf.readUInt32LE(l);
  const oldH = buf.readUInt32LE(l + 4);
  const vl = lo[s]!;
  const vh = hi[s]!;
  if (op === 0xf1) {
    if (oldL === lo[0] && oldH === hi[0]) {
      buf.writeUInt32LE(vl, l);
      buf.writeUInt32LE(vh, l + 4);
    }
    lo[0] = oldL;
    hi[0] = oldH;
    return;
  }
  let nl: number, nh: number;
  switch (op & 0xf0) {
    case 0x00: {
      const sum = oldL + vl;
      nl = sum >>> 0;
      nh = (oldH + vh + (sum > 0xffffffff ? 1 : 0)) >>> 0;
      break;
    }
    case 0x40: nl = (oldL | vl) >>> 0; nh = (oldH | vh) >>> 0; break;
    case 0x50: nl = (oldL & vl) >>> 0; nh = (oldH & vh) >>> 0; break;
    case 0xa0: nl = (oldL ^ vl) >>> 0; nh = (oldH ^ vh) >>> 0; break;
    default: nl = vl; nh = vh; // xchg
  }
  buf.writeUInt32LE(nl, l);
  buf.writeUInt32LE(nh, l + 4);
  if (op & 0x01) {
    lo[s] = oldL;
    hi[s] = oldH;
  }
}

/** The fault message: reason and PC, then the access, the instruction, the registers and the regions. */
function faultError(m: Machine, code: Code, pc: number, lo: Uint32Array, hi: Uint32Array, fault: VmFault): VmError {
  const index = code.insnAt[pc] ?? -1;
  const insn = index >= 0 ? code.insns[index] : undefined;
  const lines: string[] = [];
  if (fault.detail) lines.push(`  ${fault.detail}`);
  lines.push(`  ${pc}: ${insn ? formatInstruction(insn) : '?'}${code.name ? `  (in ${code.name})` : ''}`);
  lines.push('registers:');
  for (let r = 0; r <= 10; r += 4) {
    const row: string[] = [];
    for (let k = r; k < Math.min(r + 4, 11); k++) row.push(`r${k}=${hex((BigInt(hi[k]!) << 32n) | BigInt(lo[k]!))}`.padEnd(24));
    lines.push(`  ${row.join(' ').trimEnd()}`);
  }
  lines.push('regions:');
  lines.push(m.memory.describe());
  return new VmError(`${fault.message} at PC ${pc}`, pc, lines.join('\n'));
}
