// Guest memory: a table of regions, and the address scheme that makes guest pointers plain
// 64-bit integers.
//
//	 63                32 31                  0
//	+--------------------+--------------------+
//	|     region id      |  offset in region  |
//	+--------------------+--------------------+
//
// A pointer's high half names a region, its low half is a byte offset into the region's buffer.
// Pointer arithmetic is ordinary 64-bit arithmetic, so pointers survive being stored to the
// stack or a map value and loaded back; an offset that leaves a region (below 0 it borrows
// into the id) lands outside every region's bounds and faults. Region id 0 is never
// allocated, so NULL and small integers never dereference.

import { clone } from './bytes.ts';
import { VmFault } from './errors.ts';

export type RegionKind =
  | 'stack' //      one per call frame, 512 bytes
  | 'ctx' //        the program context (__sk_buff, xdp_md, a syscall buffer)
  | 'packet' //     packet data, between data_meta and data_end
  | 'memory' //     conformance mode: the test's memory
  | 'map_value' //  a map element's value, returned by map_lookup_elem
  | 'global' //     a global-data map (.data, .bss, .rodata)
  | 'ringbuf' //    a reserved ring buffer record
  | 'object' //     an opaque kernel object: a map, a crypto context (not dereferenceable)
  | 'code'; //      function pointers for bpf_loop callbacks (not dereferenceable)

/** Field access for contexts whose loads the kernel rewrites (packet pointers in __sk_buff). */
export interface ContextAccess {
  /** The loaded value, or undefined when the field cannot be read with this size. */
  load(offset: number, size: number): bigint | undefined;
  /** False when the field is read-only or the size is wrong. */
  store(offset: number, size: number, value: bigint): boolean;
}

export interface Region {
  readonly id: number;
  name: string;
  kind: RegionKind;
  buf: Buffer;
  /** Valid offsets are [start, end); the packet keeps headroom before `start`. */
  start: number;
  end: number;
  writable: boolean;
  /** Contexts: every access goes through this (start = end = 0 keeps the fast path out). */
  access?: ContextAccess;
  /** Object regions: what the pointer stands for. */
  object?: unknown;
}

export const NULL = 0n;

export const address = (region: Region, offset: number): bigint => (BigInt(region.id) << 32n) + BigInt(offset);

export class Memory {
  /** Indexed by region id; the interpreter reads it directly. */
  readonly regions: (Region | undefined)[] = [undefined];
  private readonly byBuffer = new WeakMap<Buffer, Region>();

  add(init: Omit<Region, 'id'>): Region {
    const region: Region = { id: this.regions.length, ...init };
    this.regions.push(region);
    return region;
  }

  /** A readable/writable region over all of `buf`. */
  addBuffer(kind: RegionKind, name: string, buf: Buffer, writable = true): Region {
    return this.add({ kind, name, buf, start: 0, end: buf.length, writable });
  }

  /** An opaque object behind a pointer: any dereference faults. */
  addObject(name: string, object: unknown, kind: RegionKind = 'object'): Region {
    return this.add({ kind, name, buf: Buffer.alloc(0), start: 0, end: 0, writable: false, object });
  }

  /** The region over a map value, created on first use so the same value always has the same address. */
  regionOf(buf: Buffer, kind: RegionKind, name: string, writable = true): Region {
    let region = this.byBuffer.get(buf);
    if (!region) {
      region = this.addBuffer(kind, name, buf, writable);
      this.byBuffer.set(buf, region);
    }
    return region;
  }

  /** Drop a region (a deleted map element, a submitted ringbuf record): old pointers fault. */
  release(buf: Buffer): void {
    const region = this.byBuffer.get(buf);
    if (!region) return;
    this.byBuffer.delete(buf);
    this.retire(region);
  }

  retire(region: Region): void {
    region.start = region.end = 0;
    region.name += ' (released)';
    this.regions[region.id] = undefined;
  }

  /** Region and offset of an address, checked for `size` bytes of access. */
  resolve(addr: bigint, size: number, write: boolean): { region: Region; offset: number } {
    const a = BigInt.asUintN(64, addr);
    const region = this.regions[Number(a >> 32n)];
    const offset = Number(a & 0xffffffffn);
    if (!region || region.access || offset < region.start || offset + size > region.end || size < 0) {
      throw new VmFault('out of bounds memory access', `${size}-byte ${write ? 'store' : 'load'} at ${hex(a)}${region ? ` (${region.name})` : ''}`);
    }
    if (write && !region.writable) throw new VmFault('write to read-only memory', `${size}-byte store at ${hex(a)} (${region.name})`);
    return { region, offset };
  }

  /** A view of guest memory (writes through it change the guest). */
  view(addr: bigint, size: number, write = false): Buffer {
    const { region, offset } = this.resolve(addr, size, write);
    return region.buf.subarray(offset, offset + size);
  }

  read(addr: bigint, size: number): Buffer {
    return clone(this.view(addr, size));
  }

  write(addr: bigint, data: ArrayLike<number>): void {
    this.view(addr, data.length, true).set(data);
  }

  /** The object behind an object pointer, or a fault naming what was expected. */
  object<T>(addr: bigint, what: string, test: (o: unknown) => o is T): T {
    const a = BigInt.asUintN(64, addr);
    const region = this.regions[Number(a >> 32n)];
    if (!region || (a & 0xffffffffn) !== 0n || !test(region.object)) throw new VmFault(`invalid ${what} pointer`, `${hex(a)} is not a pointer to ${what}`);
    return region.object;
  }

  regionAt(addr: bigint): Region | undefined {
    return this.regions[Number(BigInt.asUintN(64, addr) >> 32n)];
  }

  /** The region table for fault messages. */
  describe(limit = 24): string {
    const live = this.regions.filter((r): r is Region => r !== undefined);
    const lines = live.slice(0, limit).map((r) => {
      const base = BigInt(r.id) << 32n;
      const span = r.access ? `ctx ${r.buf.length} bytes` : `[${hex(base + BigInt(r.start))}, ${hex(base + BigInt(r.end))})`;
      return `  ${String(r.id).padStart(3)} ${r.kind.padEnd(9)} ${span} ${r.writable ? 'rw' : 'ro'} ${r.name}`;
    });
    if (live.length > limit) lines.push(`  … ${live.length - limit} more`);
    return lines.join('\n');
  }
}

export const hex = (v: bigint | number): string => `0x${BigInt.asUintN(64, BigInt(v)).toString(16)}`;
