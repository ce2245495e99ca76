// Dynamic pointers: the helpers (dynptr_from_mem, dynptr_read/write/data) and kfuncs
// (bpf_dynptr_from_skb, bpf_dynptr_slice[_rdwr], bpf_dynptr_adjust, …) that make and use them.
//
// struct bpf_dynptr is 16 opaque bytes on the program's stack; the VM stores it as the
// kernel's struct bpf_dynptr_kern, so it round-trips through memory like any other value:
//	+0        +8                                   +12
//	+---------+------------------------------------+--------+
//	|  data   | size:24 | 0:4 | type:3 | rdonly:1  | offset |
//	+---------+------------------------------------+--------+
// For skb and xdp dynptrs `data` is the context pointer and offsets count from the packet's data.

import { bpf_func_id as F } from '../sys/constants.ts';
import { clone } from './bytes.ts';
import { address } from './memory.ts';
import type { Machine } from './machine.ts';
import { Errno } from './maps.ts';
import type { NativeFunction } from './program.ts';

export const DynptrType = { INVALID: 0, LOCAL: 1, RINGBUF: 2, SKB: 3, XDP: 4 } as const;

const SIZE_MASK = 0xffffff;
const TYPE_SHIFT = 28;
const RDONLY = 0x80000000;
/** DYNPTR_MAX_SIZE: sizes are 24 bits. */
const MAX_SIZE = SIZE_MASK;

export interface Dynptr {
  data: bigint;
  size: number;
  offset: number;
  type: number;
  rdonly: boolean;
}

export function loadDynptr(m: Machine, at: bigint): Dynptr {
  const raw = m.memory.read(at, 16);
  const word = raw.readUInt32LE(8);
  return { data: raw.readBigUInt64LE(0), size: word & SIZE_MASK, type: (word >>> TYPE_SHIFT) & 7, rdonly: (word & RDONLY) !== 0, offset: raw.readUInt32LE(12) };
}

/** Write a dynptr, or a NULL one (all zeros) for undefined, as the kernel's bpf_dynptr_set_null. */
export function storeDynptr(m: Machine, at: bigint, d: Dynptr | undefined): void {
  const raw = Buffer.alloc(16);
  if (d) {
    raw.writeBigUInt64LE(BigInt.asUintN(64, d.data), 0);
    raw.writeUInt32LE(((d.size & SIZE_MASK) | (d.type << TYPE_SHIFT) | (d.rdonly ? RDONLY : 0)) >>> 0, 8);
    raw.writeUInt32LE(d.offset >>> 0, 12);
  }
  m.memory.write(at, raw);
}

/** bpf_dynptr_check_off_len. */
function checkOffLen(d: Dynptr, offset: number, len: number): number {
  return offset > d.size || len > d.size - offset ? -Errno.E2BIG : 0;
}

/** The packet behind an skb/xdp dynptr, checked against the run's context. */
function packetOf(m: Machine, d: Dynptr) {
  const ctx = m.run.ctx;
  const packet = m.run.packet;
  return ctx && packet && d.data === address(ctx, 0) ? packet : undefined;
}

/**
 * Guest address of [offset, offset + len) in the dynptr's data, or undefined when it is out of
 * range (slices and crypto use this; the VM's packets are linear, so skb data always has one).
 */
export function dynptrAddress(m: Machine, d: Dynptr, offset: number, len: number): bigint | undefined {
  if (d.data === 0n || checkOffLen(d, offset, len)) return undefined;
  if (d.type === DynptrType.SKB || d.type === DynptrType.XDP) {
    const packet = packetOf(m, d);
    const start = d.offset + offset;
    if (!packet || start + len > packet.length) return undefined;
    return packet.pointer(packet.data + start);
  }
  return d.data + BigInt(d.offset + offset);
}

/** A live view of [offset, offset + len) of the dynptr's data, or undefined. */
export function dynptrView(m: Machine, d: Dynptr, offset: number, len: number, write: boolean): Buffer | undefined {
  if (write && d.rdonly) return undefined;
  const at = dynptrAddress(m, d, offset, len);
  return at === undefined ? undefined : m.memory.view(at, len, write);
}

const u32 = (v: bigint): number => Number(v & 0xffffffffn);

function fromMem(m: Machine, data: bigint, size: bigint, flags: bigint, out: bigint): number {
  const n = u32(size);
  if (flags) {
    storeDynptr(m, out, undefined);
    return -Errno.EINVAL;
  }
  if (n > MAX_SIZE) {
    storeDynptr(m, out, undefined);
    return -Errno.E2BIG;
  }
  if (n) m.memory.view(data, n); // the verifier's check that [data, data + size) is memory
  storeDynptr(m, out, { data, size: n, offset: 0, type: DynptrType.LOCAL, rdonly: false });
  return 0;
}

function read(m: Machine, dst: bigint, len: bigint, src: bigint, offset: bigint, flags: bigint): number {
  const d = loadDynptr(m, src);
  const n = u32(len);
  const off = u32(offset);
  if (d.data === 0n || flags) return -Errno.EINVAL;
  const err = checkOffLen(d, off, n);
  if (err) return err;
  const view = dynptrView(m, d, off, n, false);
  if (!view) return -Errno.EFAULT;
  m.memory.write(dst, clone(view));
  return 0;
}

function write(m: Machine, dst: bigint, offset: bigint, src: bigint, len: bigint, flags: bigint): number {
  const d = loadDynptr(m, dst);
  const n = u32(len);
  const off = u32(offset);
  if (d.data === 0n || d.rdonly) return -Errno.EINVAL;
  const err = checkOffLen(d, off, n);
  if (err) return err;
  // skb dynptrs take bpf_skb_store_bytes' flags; the others none.
  if (d.type === DynptrType.SKB ? flags & ~3n : flags) return -Errno.EINVAL;
  const bytes = m.memory.read(src, n);
  const view = dynptrView(m, d, off, n, true);
  if (!view) return -Errno.EFAULT;
  view.set(bytes);
  return 0;
}

function data(m: Machine, ptr: bigint, offset: bigint, len: bigint): bigint {
  const d = loadDynptr(m, ptr);
  // skb and xdp data is reached through slices, never bpf_dynptr_data.
  if (d.rdonly || d.type === DynptrType.SKB || d.type === DynptrType.XDP) return 0n;
  return dynptrAddress(m, d, u32(offset), u32(len)) ?? 0n;
}

export const dynptrHelpers: [number, NativeFunction][] = [
  [F.BPF_FUNC_dynptr_from_mem, fromMem as NativeFunction],
  [F.BPF_FUNC_dynptr_read, read as NativeFunction],
  [F.BPF_FUNC_dynptr_write, write as NativeFunction],
  [F.BPF_FUNC_dynptr_data, data as NativeFunction],
];

// --- kfuncs ---

function fromPacket(type: number): NativeFunction {
  return (m, ctx, flags, out) => {
    const packet = m.run.packet;
    const expected = type === DynptrType.SKB ? m.run.skb : m.run.xdp;
    if (!expected || !m.run.ctx || ctx !== address(m.run.ctx, 0) || !packet) {
      storeDynptr(m, out, undefined);
      return -Errno.EINVAL;
    }
    if (flags) {
      storeDynptr(m, out, undefined);
      return -Errno.EINVAL;
    }
    storeDynptr(m, out, { data: ctx, size: packet.length, offset: 0, type, rdonly: false });
    return 0;
  };
}

function slice(rdwr: boolean): NativeFunction {
  return (m, ptr, offset, _buffer, len) => {
    const d = loadDynptr(m, ptr);
    if (rdwr && d.rdonly) return 0n;
    return dynptrAddress(m, d, u32(offset), u32(len)) ?? 0n;
  };
}

function adjust(m: Machine, ptr: bigint, start: bigint, end: bigint): number {
  const d = loadDynptr(m, ptr);
  if (d.data === 0n) return -Errno.EINVAL;
  const s = u32(start);
  const e = u32(end);
  if (s > d.size || e > d.size) return -Errno.ERANGE;
  if (s > e) return -Errno.EINVAL;
  storeDynptr(m, ptr, { ...d, offset: d.offset + s, size: e - s });
  return 0;
}

export const dynptrKfuncs: [string, NativeFunction][] = [
  ['bpf_dynptr_from_skb', fromPacket(DynptrType.SKB)],
  ['bpf_dynptr_from_xdp', fromPacket(DynptrType.XDP)],
  ['bpf_dynptr_slice', slice(false)],
  ['bpf_dynptr_slice_rdwr', slice(true)],
  ['bpf_dynptr_adjust', adjust as NativeFunction],
  ['bpf_dynptr_is_null', (m, ptr) => (loadDynptr(m, ptr).data === 0n ? 1 : 0)],
  ['bpf_dynptr_is_rdonly', (m, ptr) => (loadDynptr(m, ptr).rdonly ? 1 : 0)],
  ['bpf_dynptr_size', (m, ptr) => loadDynptr(m, ptr).size],
];
