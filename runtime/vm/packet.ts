// Packet data: one guest region over a buffer with headroom, like an skb's or xdp_buff's.
//
//	buf: | headroom ... | meta | data ............ | tailroom |
//	                    ^meta  ^data               ^end
//
// The region's bounds are [meta, end). Helpers that grow, shrink or move the data update the
// bounds in place, so a stale packet pointer faults once it points past the new end (the
// kernel invalidates such pointers in the verifier; the VM checks at access time).

import { clone } from './bytes.ts';
import { address, type Memory, type Region } from './memory.ts';

export const XDP_PACKET_HEADROOM = 256;

export class Packet {
  readonly region: Region;
  meta: number;
  data: number;
  end: number;

  constructor(memory: Memory, bytes: ArrayLike<number>, headroom = XDP_PACKET_HEADROOM, name = 'packet') {
    const buf = Buffer.alloc(headroom + bytes.length + 256);
    buf.set(bytes, headroom);
    this.meta = this.data = headroom;
    this.end = headroom + bytes.length;
    this.region = memory.add({ kind: 'packet', name, buf, start: this.meta, end: this.end, writable: true });
  }

  get length(): number {
    return this.end - this.data;
  }

  /** The packet bytes (data to end), live. */
  view(): Buffer {
    return this.region.buf.subarray(this.data, this.end);
  }

  bytes(): Buffer {
    return clone(this.view());
  }

  pointer(offset: number): bigint {
    return address(this.region, offset);
  }

  get dataPointer(): bigint {
    return this.pointer(this.data);
  }
  get endPointer(): bigint {
    return this.pointer(this.end);
  }
  get metaPointer(): bigint {
    return this.pointer(this.meta);
  }

  /** Make room for `total` bytes after `data`, moving the buffer if needed. */
  private reserveTail(total: number): void {
    const need = this.data + total;
    if (need <= this.region.buf.length) return;
    const grown = Buffer.alloc(need + 256);
    grown.set(this.region.buf.subarray(0, this.end));
    this.region.buf = grown;
  }

  private sync(): void {
    this.region.start = this.meta;
    this.region.end = this.end;
  }

  /** Trim, or extend with zeros, to `length` bytes. */
  resize(length: number): void {
    if (length > this.length) {
      this.reserveTail(length);
      this.region.buf.fill(0, this.end, this.data + length);
    }
    this.end = this.data + length;
    this.sync();
  }

  /** Insert `count` zero bytes at `at` (from data), moving what follows. */
  insert(at: number, count: number): void {
    const old = this.length;
    this.reserveTail(old + count);
    const buf = this.region.buf;
    buf.copyWithin(this.data + at + count, this.data + at, this.end);
    buf.fill(0, this.data + at, this.data + at + count);
    this.end += count;
    this.sync();
  }

  /** Remove `count` bytes at `at` (from data). */
  remove(at: number, count: number): void {
    const buf = this.region.buf;
    buf.copyWithin(this.data + at, this.data + at + count, this.end);
    this.end -= count;
    this.sync();
  }

  /** Move the start of data by delta (negative grows into headroom); false when out of room. */
  adjustHead(delta: number): boolean {
    const data = this.data + delta;
    if (data < 0 || data > this.end) return false;
    if (this.meta === this.data) this.meta = data;
    this.data = data;
    this.sync();
    return true;
  }

  /** Set the metadata length (data - meta); false when it does not fit the headroom. */
  setMetaLength(length: number): boolean {
    if (length < 0 || length > this.data) return false;
    this.meta = this.data - length;
    this.sync();
    return true;
  }
}
