// BPF maps for the VM, with the kernel's update flags, limits and errno results.
//
// Each map has two faces: the program side (lookupRef/updateElem/deleteElem, returning live
// value buffers and negative errnos, as the helpers do) and the userspace side
// (lookup/update/delete/nextKey on Buffers, copying values and throwing MapError, as the
// bpf() commands do) — so the key runtime fills a VM map the way it fills a kernel map.
// The VM has one CPU: a per-CPU map's userspace value is one round_up(value_size, 8) slot.

import { bpf_map_type } from '../sys/constants.ts';
import { clone, equal } from './bytes.ts';

export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  E2BIG: 7,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ENOSPC: 28,
  ERANGE: 34,
  EOPNOTSUPP: 95,
  EALREADY: 114,
  ENOTSUPP: 524, // the kernel-internal "not supported" that BPF helpers return
} as const;

/** BPF_ANY, BPF_NOEXIST, BPF_EXIST, and BPF_F_LOCK (only on values with a bpf_spin_lock, as in
 *  the kernel; it takes no lock here: the VM is single-threaded). */
export const UpdateFlags = { ANY: 0, NOEXIST: 1, EXIST: 2, F_LOCK: 4 } as const;

export class MapError extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
    this.name = 'MapError';
  }
}

export interface MapDefinition {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  /** The value holds a struct bpf_spin_lock: only then may updates pass BPF_F_LOCK (else -EINVAL). */
  spinLock?: boolean;
}

const errnoName = (errno: number): string => Object.entries(Errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
const roundUp8 = (n: number): number => (n + 7) & ~7;

export abstract class VmMap {
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly spinLock: boolean;
  /** Called with a value buffer that left the map, so guest pointers into it start to fault. */
  onRelease?: (value: Buffer) => void;
  /** Global-data maps frozen after initialisation (.rodata): programs may not write them. */
  frozen = false;

  constructor(def: MapDefinition) {
    this.name = def.name;
    this.type = def.type;
    this.keySize = def.keySize;
    this.valueSize = def.valueSize;
    this.maxEntries = def.maxEntries;
    this.flags = def.flags ?? 0;
    this.spinLock = def.spinLock ?? false;
    if (def.maxEntries <= 0) throw new MapError(Errno.EINVAL, `map ${def.name}: max_entries must be positive`);
  }

  // --- program side ---
  /** The live value buffer for key, or undefined. */
  abstract lookupRef(key: Buffer): Buffer | undefined;
  /** 0 or a negative errno. */
  abstract updateElem(key: Buffer, value: Buffer, flags: number): number;
  abstract deleteElem(key: Buffer): number;
  /** The key after `key` (the first key when key is undefined or absent), or undefined at the end. */
  abstract nextKeyOf(key: Buffer | undefined): Buffer | undefined;

  // --- userspace side ---
  /** Size of a value as userspace passes it (per-CPU maps: one 8-byte-aligned slot per CPU). */
  get userValueSize(): number {
    return this.valueSize;
  }

  lookup(key: Buffer): Buffer | undefined {
    this.checkKey(key);
    const value = this.lookupRef(key);
    if (!value) return undefined;
    const out = Buffer.alloc(this.userValueSize);
    out.set(value);
    return out;
  }

  update(key: Buffer, value: Buffer, flags: number = UpdateFlags.ANY): void {
    this.checkKey(key);
    if (this.frozen) throw new MapError(Errno.EPERM, `map ${this.name}: frozen`);
    if (value.length !== this.userValueSize) throw new MapError(Errno.EINVAL, `map ${this.name}: value is ${value.length} bytes, expected ${this.userValueSize}`);
    const err = this.updateElem(key, value.subarray(0, this.valueSize), flags);
    if (err < 0) throw new MapError(-err, `map ${this.name}: update: ${errnoName(-err)}`);
  }

  /** False when the key was absent (the kernel's ENOENT). */
  delete(key: Buffer): boolean {
    this.checkKey(key);
    const err = this.deleteElem(key);
    if (err === -Errno.ENOENT) return false;
    if (err < 0) throw new MapError(-err, `map ${this.name}: delete: ${errnoName(-err)}`);
    return true;
  }

  nextKey(key?: Buffer): Buffer | undefined {
    if (key) this.checkKey(key);
    const next = this.nextKeyOf(key);
    return next ? clone(next) : undefined;
  }

  *keys(): IterableIterator<Buffer> {
    for (let k = this.nextKey(); k; k = this.nextKey(k)) yield k;
  }

  protected checkKey(key: Buffer): void {
    if (key.length !== this.keySize) throw new MapError(Errno.EINVAL, `map ${this.name}: key is ${key.length} bytes, expected ${this.keySize}`);
  }

  /** htab/array_map_update_elem's checks: a known flag set, not NOEXIST|EXIST, and BPF_F_LOCK
   *  only on a value with a bpf_spin_lock (Linux 6.18: -EINVAL otherwise). */
  protected checkFlags(flags: number): number {
    if (flags & ~(UpdateFlags.NOEXIST | UpdateFlags.EXIST | UpdateFlags.F_LOCK)) return -Errno.EINVAL;
    if ((flags & 3) === 3) return -Errno.EINVAL;
    if (flags & UpdateFlags.F_LOCK && !this.spinLock) return -Errno.EINVAL;
    return 0;
  }
}

/** BPF_MAP_TYPE_HASH / PERCPU_HASH (and LRU_HASH without eviction). Iteration follows insertion order. */
export class HashMap extends VmMap {
  private readonly entries = new Map<string, { key: Buffer; value: Buffer }>();

  get size(): number {
    return this.entries.size;
  }

  override get userValueSize(): number {
    return this.type === bpf_map_type.BPF_MAP_TYPE_PERCPU_HASH ? roundUp8(this.valueSize) : this.valueSize;
  }

  lookupRef(key: Buffer): Buffer | undefined {
    return this.entries.get(key.toString('hex'))?.value;
  }

  updateElem(key: Buffer, value: Buffer, flags: number): number {
    const bad = this.checkFlags(flags);
    if (bad) return bad;
    const id = key.toString('hex');
    const old = this.entries.get(id);
    if (old && flags & UpdateFlags.NOEXIST) return -Errno.EEXIST;
    if (!old && flags & UpdateFlags.EXIST) return -Errno.ENOENT;
    if (old) {
      // In place, so pointers a program already holds see the new value.
      old.value.set(value.subarray(0, this.valueSize));
      return 0;
    }
    if (this.entries.size >= this.maxEntries) return -Errno.E2BIG;
    const copy = Buffer.alloc(this.valueSize);
    copy.set(value.subarray(0, this.valueSize));
    this.entries.set(id, { key: clone(key.subarray(0, this.keySize)), value: copy });
    return 0;
  }

  deleteElem(key: Buffer): number {
    const id = key.toString('hex');
    const old = this.entries.get(id);
    if (!old) return -Errno.ENOENT;
    this.entries.delete(id);
    this.onRelease?.(old.value);
    return 0;
  }

  nextKeyOf(key: Buffer | undefined): Buffer | undefined {
    const all = [...this.entries.values()];
    if (!key) return all[0]?.key;
    const i = all.findIndex((e) => equal(e.key, key));
    return i < 0 ? all[0]?.key : all[i + 1]?.key;
  }
}

/** BPF_MAP_TYPE_ARRAY / PERCPU_ARRAY: max_entries zero-filled values, keyed by a u32 index. */
export class ArrayMap extends VmMap {
  readonly values: Buffer[];

  constructor(def: MapDefinition) {
    super(def);
    if (def.keySize !== 4) throw new MapError(Errno.EINVAL, `map ${def.name}: array keys are 4 bytes`);
    this.values = Array.from({ length: def.maxEntries }, () => Buffer.alloc(def.valueSize));
  }

  override get userValueSize(): number {
    return this.type === bpf_map_type.BPF_MAP_TYPE_PERCPU_ARRAY ? roundUp8(this.valueSize) : this.valueSize;
  }

  lookupRef(key: Buffer): Buffer | undefined {
    return this.values[key.readUInt32LE(0)];
  }

  updateElem(key: Buffer, value: Buffer, flags: number): number {
    const bad = this.checkFlags(flags);
    if (bad) return bad;
    const index = key.readUInt32LE(0);
    if (index >= this.maxEntries) return -Errno.E2BIG;
    if (flags & UpdateFlags.NOEXIST) return -Errno.EEXIST; // every element exists
    this.values[index]!.set(value.subarray(0, this.valueSize));
    return 0;
  }

  deleteElem(): number {
    return -Errno.EINVAL;
  }

  nextKeyOf(key: Buffer | undefined): Buffer | undefined {
    const index = key ? key.readUInt32LE(0) : -1;
    const next = index >= this.maxEntries ? 0 : index + 1;
    if (next >= this.maxEntries) return undefined;
    const out = Buffer.alloc(4);
    out.writeUInt32LE(next);
    return out;
  }
}

/**
 * BPF_MAP_TYPE_LPM_TRIE: keys are { u32 prefixlen (host order); u8 data[] }. Entries are kept
 * per prefix length with the data masked to the prefix, so a lookup tries lengths from the
 * key's own down to 0 and the first hit is the longest match.
 */
export class LpmTrieMap extends VmMap {
  private readonly byLength = new Map<number, Map<string, { key: Buffer; value: Buffer }>>();
  private readonly maxPrefix: number;
  private count = 0;

  constructor(def: MapDefinition) {
    super(def);
    if (def.keySize <= 4 || def.keySize > 4 + 256) throw new MapError(Errno.EINVAL, `map ${def.name}: LPM keys are a u32 prefix length and 1–256 data bytes`);
    this.maxPrefix = (def.keySize - 4) * 8;
  }

  /** The key with data bits beyond prefixlen cleared, as a map id. */
  private canonical(prefixlen: number, key: Buffer): string {
    const data = clone(key.subarray(4, this.keySize));
    const full = prefixlen >> 3;
    const bits = prefixlen & 7;
    if (full < data.length) {
      data[full] = bits ? data[full]! & (0xff << (8 - bits)) : 0;
      data.fill(0, full + 1);
    }
    return data.toString('hex');
  }

  lookupRef(key: Buffer): Buffer | undefined {
    const want = Math.min(key.readUInt32LE(0), this.maxPrefix);
    for (let len = want; len >= 0; len--) {
      const level = this.byLength.get(len);
      const hit = level?.get(this.canonical(len, key));
      if (hit) return hit.value;
    }
    return undefined;
  }

  /** The value stored for exactly this prefix, not the longest match (lookup() matches like the kernel). */
  exact(key: Buffer): Buffer | undefined {
    const len = key.readUInt32LE(0);
    return this.byLength.get(len)?.get(this.canonical(len, key))?.value;
  }

  updateElem(key: Buffer, value: Buffer, flags: number): number {
    const bad = this.checkFlags(flags);
    if (bad) return bad;
    const len = key.readUInt32LE(0);
    if (len > this.maxPrefix) return -Errno.EINVAL;
    let level = this.byLength.get(len);
    const id = this.canonical(len, key);
    const old = level?.get(id);
    if (old && flags & UpdateFlags.NOEXIST) return -Errno.EEXIST;
    if (!old && flags & UpdateFlags.EXIST) return -Errno.ENOENT;
    if (old) {
      old.value.set(value.subarray(0, this.valueSize));
      return 0;
    }
    if (this.count >= this.maxEntries) return -Errno.ENOSPC; // the trie's "full" errno
    if (!level) this.byLength.set(len, (level = new Map()));
    const stored = Buffer.alloc(this.keySize);
    stored.writeUInt32LE(len);
    stored.set(Buffer.from(id, 'hex'), 4);
    const copy = Buffer.alloc(this.valueSize);
    copy.set(value.subarray(0, this.valueSize));
    level.set(id, { key: stored, value: copy });
    this.count++;
    return 0;
  }

  deleteElem(key: Buffer): number {
    const len = key.readUInt32LE(0);
    if (len > this.maxPrefix) return -Errno.EINVAL;
    const level = this.byLength.get(len);
    const id = this.canonical(len, key);
    const old = level?.get(id);
    if (!level || !old) return -Errno.ENOENT;
    level.delete(id);
    this.count--;
    this.onRelease?.(old.value);
    return 0;
  }

  /** Longer prefixes first, like the kernel's post-order walk visits more specific nodes first. */
  nextKeyOf(key: Buffer | undefined): Buffer | undefined {
    const all = [...this.byLength.entries()].sort((a, b) => b[0] - a[0]).flatMap(([, level]) => [...level.values()].map((e) => e.key));
    if (!key) return all[0];
    const len = key.readUInt32LE(0);
    const canonical = Buffer.alloc(this.keySize);
    canonical.writeUInt32LE(len);
    if (len <= this.maxPrefix) canonical.set(Buffer.from(this.canonical(len, key), 'hex'), 4);
    const i = all.findIndex((k) => equal(k, canonical));
    return i < 0 ? all[0] : all[i + 1];
  }
}

/** One record of a ring buffer: its data, and whether the producer is done with it. */
export interface RingbufRecord {
  data: Buffer;
  state: 'busy' | 'committed' | 'discarded';
}

/**
 * BPF_MAP_TYPE_RINGBUF: max_entries is the data size in bytes (a power of two). A record
 * takes its length plus an 8-byte header, rounded up to 8, until the consumer reads it.
 */
export class RingbufMap extends VmMap {
  private readonly records: RingbufRecord[] = [];
  private used = 0;

  constructor(def: MapDefinition) {
    super({ ...def, keySize: 0, valueSize: 0 });
    if (def.maxEntries & (def.maxEntries - 1)) throw new MapError(Errno.EINVAL, `map ${def.name}: ring buffer size must be a power of 2`);
  }

  static footprint(size: number): number {
    return roundUp8(size + 8);
  }

  /** A new busy record, or undefined when it does not fit (the helpers' NULL / -EAGAIN). */
  reserve(size: number): RingbufRecord | undefined {
    const need = RingbufMap.footprint(size);
    if (size <= 0 || this.used + need > this.maxEntries) return undefined;
    const record: RingbufRecord = { data: Buffer.alloc(size), state: 'busy' };
    this.records.push(record);
    this.used += need;
    return record;
  }

  /** Bytes reserved and not yet consumed (BPF_RB_AVAIL_DATA counts only committed ones; this is the total). */
  get pending(): number {
    return this.used;
  }

  /** Committed records in order, freeing their space; stops at a record still being written, as the kernel's consumer does. */
  consume(): Buffer[] {
    const out: Buffer[] = [];
    while (this.records.length > 0 && this.records[0]!.state !== 'busy') {
      const record = this.records.shift()!;
      this.used -= RingbufMap.footprint(record.data.length);
      if (record.state === 'committed') out.push(record.data);
    }
    return out;
  }

  lookupRef(): Buffer | undefined {
    return undefined;
  }
  updateElem(): number {
    return -Errno.EINVAL;
  }
  deleteElem(): number {
    return -Errno.EINVAL;
  }
  nextKeyOf(): Buffer | undefined {
    return undefined;
  }
  override lookup(): Buffer | undefined {
    throw new MapError(Errno.EINVAL, `map ${this.name}: ring buffers have no elements; use consume()`);
  }
  override update(): void {
    throw new MapError(Errno.EINVAL, `map ${this.name}: ring buffers have no elements`);
  }
}

/** A VM map for a map definition; kernel map types the VM does not model are refused. */
export function createMap(def: MapDefinition): VmMap {
  const T = bpf_map_type;
  switch (def.type) {
    case T.BPF_MAP_TYPE_HASH:
    case T.BPF_MAP_TYPE_PERCPU_HASH:
    case T.BPF_MAP_TYPE_LRU_HASH:
      return new HashMap(def);
    case T.BPF_MAP_TYPE_ARRAY:
    case T.BPF_MAP_TYPE_PERCPU_ARRAY:
      return new ArrayMap(def);
    case T.BPF_MAP_TYPE_LPM_TRIE:
      return new LpmTrieMap(def);
    case T.BPF_MAP_TYPE_RINGBUF:
      return new RingbufMap(def);
  }
  throw new MapError(Errno.EINVAL, `map ${def.name}: map type ${def.type} is not supported by the VM`);
}
