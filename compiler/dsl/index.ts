// The DSL: what programs import. Everything here is ordinary TypeScript that runs in Node with
// the semantics the compiler gives the same source in BPF (see README.md in this folder), so any
// DSL program is its own reference implementation.
//
// Layouts are values (descriptors), not only types: `struct({...})` keeps field sizes and offsets
// at run time, which is what lets a packet view or a map work in plain Node and what the
// compiler reads (statically, from the same initialiser) to lay out BPF memory and BTF.

import * as nodeCrypto from 'node:crypto';

// ---------------------------------------------------------------------------------------------
// Integer types. 8/16/32-bit integers are `number`, 64-bit integers are `bigint`.

export type u8 = number;
export type u16 = number;
export type u32 = number;
export type i8 = number;
export type i16 = number;
export type i32 = number;
export type u64 = bigint;
export type i64 = bigint;
/** A 16/32-bit integer stored in network byte order; its value is the host integer. */
export type be16 = number;
export type be32 = number;

export interface IntType<V extends number | bigint = number | bigint> {
  readonly kind: 'int';
  readonly name: string;
  readonly size: 1 | 2 | 4 | 8;
  readonly signed: boolean;
  readonly bigEndian: boolean;
  /** Phantom: the JavaScript type of a value. */
  readonly __value?: V;
}
export interface ArrayType<E extends Type = Type> {
  readonly kind: 'array';
  readonly element: E;
  readonly length: number;
  readonly size: number;
  readonly align: number;
}
export interface StructField {
  readonly name: string;
  readonly type: Type;
  readonly offset: number;
}
export interface StructType<F extends Record<string, Type> = Record<string, Type>> {
  readonly kind: 'struct';
  readonly name: string;
  readonly fields: F;
  readonly layout: readonly StructField[];
  readonly size: number;
  readonly align: number;
}
/** A referenced kernel object kept in a map value (`struct T __kptr *`): 8 bytes in BPF. In Node
 *  the field holds the object itself (beside the bytes, which stay zero as the kernel shows them
 *  to userspace). Written only through kptrXchg. */
export interface KptrType<O extends object = object> {
  readonly kind: 'kptr';
  /** The kernel struct: 'bpf_crypto_ctx'. */
  readonly target: string;
  readonly size: 8;
  readonly align: 8;
  /** Phantom: the Node object type. */
  readonly __object?: O;
}
export type Type = IntType | ArrayType<any> | StructType<any> | KptrType<any>;
/** `struct bpf_spin_lock { u32 val; }`: a struct descriptor the kernel recognises by its name (4
 *  bytes, alignment 4). A map value (hash or array map) may hold one, as a top-level field; it is
 *  taken and released only with spinLock / spinUnlock, never read or written as data. */
export interface SpinLockType extends StructType<{ val: IntType<number> }> {
  readonly lock: 'bpf_spin_lock';
}
/** The value of a spin lock field: opaque (pass the view and the field name to spinLock). */
export interface SpinLock {
  readonly __spinLock: unique symbol;
}

function int<V extends number | bigint>(name: string, size: 1 | 2 | 4 | 8, signed: boolean, bigEndian = false): IntType<V> {
  return Object.freeze({ kind: 'int', name, size, signed, bigEndian }) as IntType<V>;
}
export const u8 = int<number>('u8', 1, false);
export const u16 = int<number>('u16', 2, false);
export const u32 = int<number>('u32', 4, false);
export const i8 = int<number>('i8', 1, true);
export const i16 = int<number>('i16', 2, true);
export const i32 = int<number>('i32', 4, true);
export const u64 = int<bigint>('u64', 8, false);
export const i64 = int<bigint>('i64', 8, true);
export const be16 = int<number>('be16', 2, false, true);
export const be32 = int<number>('be32', 4, false, true);

const alignOf = (t: Type): number => (t.kind === 'int' ? t.size : t.align);

/** A kernel object type that may live in a kptr field (the class's `btfName` is its kernel struct). */
export interface KernelObjectClass<O extends object> {
  readonly btfName: string;
  prototype: O;
}
/** `kptr(CryptoCtx)`: a kptr field of a map value struct. */
export function kptr<O extends object>(target: KernelObjectClass<O>): KptrType<O> {
  return Object.freeze({ kind: 'kptr', target: target.btfName, size: 8, align: 8 }) as KptrType<O>;
}
const sizeOf = (t: Type): number => t.size;

/** A fixed-length array of `length` elements. */
export function array<E extends Type>(element: E, length: number): ArrayType<E> {
  return Object.freeze({ kind: 'array', element, length, size: sizeOf(element) * length, align: alignOf(element) }) as ArrayType<E>;
}

/** A struct with C layout (natural alignment, padding between fields and at the end). */
export function struct<F extends Record<string, Type>>(fields: F, options: { name?: string; packed?: boolean } = {}): StructType<F> {
  const layout: StructField[] = [];
  let offset = 0;
  let align = 1;
  for (const [name, type] of Object.entries(fields)) {
    const a = options.packed ? 1 : alignOf(type);
    offset = Math.ceil(offset / a) * a;
    layout.push({ name, type, offset });
    offset += sizeOf(type);
    align = Math.max(align, a);
  }
  const size = Math.ceil(offset / align) * align;
  return Object.freeze({ kind: 'struct', name: options.name ?? 'anon', fields, layout, size, align }) as StructType<F>;
}

/** The `struct bpf_spin_lock` field type: `struct({ lock: bpfSpinLock, top: u64, … })`. */
export const bpfSpinLock: SpinLockType = Object.freeze({ ...struct({ val: u32 }, { name: 'bpf_spin_lock' }), lock: 'bpf_spin_lock' as const });

/** The JavaScript value of a field of type T: integers by value, arrays and structs as live views. */
export type Value<T> =
  T extends IntType<infer V> ? V : T extends SpinLockType ? SpinLock : T extends ArrayType<infer E> ? ArrayView<Value<E>> : T extends StructType<infer F> ? View<F> : T extends KptrType<infer O> ? O | null : never;
/** Plain data accepted where a value is written (struct literals, integers; a string for a u8
 *  array: its Latin-1 bytes, zero-padded). kptr fields cannot be initialised (they start NULL). */
export type Init<T> =
  T extends IntType<infer V> ? V : T extends ArrayType<infer E> ? ArrayLike<Init<E>> | (E extends IntType<number> ? string : never) : T extends StructType<infer F> ? { [K in keyof F as F[K] extends KptrType<any> | SpinLockType ? never : K]: Init<F[K]> } : T extends KptrType<any> ? null : never;
export type View<F extends Record<string, Type>> = { -readonly [K in keyof F]: F[K] extends KptrType<any> ? Readonly<Value<F[K]>> : Value<F[K]> };
/** Whether a descriptor is `struct bpf_spin_lock` (the kernel goes by the name too). */
export const isSpinLock = (t: Type): boolean => t.kind === 'struct' && t.name === 'bpf_spin_lock';
/** The view type of a struct descriptor: `type EthHdr = Infer<typeof EthHdr>`. */
export type Infer<S extends Type> = Value<S>;
export interface ArrayView<V> {
  readonly length: number;
  [index: number]: V;
  /** `for (const x of arr)`: the elements in order (values of integers, views of aggregates). */
  [Symbol.iterator](): Iterator<V>;
}
/** A map value or packet location of integer type: a live reference. */
export interface Cell<V> {
  value: V;
}
/** What a lookup returns: a live view of a struct, or a Cell for an integer value. */
export type Ref<T extends Type> = T extends IntType<infer V> ? Cell<V> : T extends StructType<infer F> ? View<F> : T extends ArrayType<infer E> ? ArrayView<Value<E>> : never;

// ---------------------------------------------------------------------------------------------
// Memory views in Node. Reads and writes go through DataView, with the wrap-around semantics of
// BPF stores (a u8 store keeps the low 8 bits).

function readInt(dv: DataView, off: number, t: IntType): number | bigint {
  const le = !t.bigEndian;
  switch (t.size) {
    case 1:
      return t.signed ? dv.getInt8(off) : dv.getUint8(off);
    case 2:
      return t.signed ? dv.getInt16(off, le) : dv.getUint16(off, le);
    case 4:
      return t.signed ? dv.getInt32(off, le) : dv.getUint32(off, le);
    case 8:
      return t.signed ? dv.getBigInt64(off, le) : dv.getBigUint64(off, le);
  }
}
function writeInt(dv: DataView, off: number, t: IntType, v: number | bigint): void {
  const le = !t.bigEndian;
  if (t.size === 8) {
    dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), le);
    return;
  }
  const n = Number(typeof v === 'bigint' ? BigInt.asUintN(32, v) : v);
  if (t.size === 1) dv.setUint8(off, n & 0xff);
  else if (t.size === 2) dv.setUint16(off, n & 0xffff, le);
  else dv.setUint32(off, n >>> 0, le);
}

/** Where each live view (struct, array or Cell) points: what helpers taking a buffer read in Node. */
const memoryOfView = new WeakMap<object, { type: Type; bytes: Uint8Array; offset: number }>();

/** The bytes behind a view, a Cell or a stack buffer (Node only; helpers use it). */
export function memoryOf(v: object): { type: Type; bytes: Uint8Array; offset: number } {
  const m = memoryOfView.get(v);
  if (!m) throw new TypeError('not a view of BPF memory');
  return m;
}
const remember = <V extends object>(v: V, type: Type, bytes: Uint8Array, offset: number): V => {
  memoryOfView.set(v, { type, bytes, offset });
  return v;
};

/** A live view of `type` at `offset` in `bytes`. */
export function view<T extends Type>(type: T, bytes: Uint8Array, offset = 0): Value<T> {
  if (type.kind !== 'int' && type.kind !== 'kptr') return remember(viewOf(type, bytes, offset) as object, type, bytes, offset) as Value<T>;
  return viewOf(type, bytes, offset);
}
// kptr fields in Node: the objects live beside the bytes, keyed by the memory and the absolute offset.
const kptrFields = new WeakMap<ArrayBufferLike, Map<number, object>>();
function kptrGet(bytes: Uint8Array, offset: number): object | null {
  return kptrFields.get(bytes.buffer)?.get(bytes.byteOffset + offset) ?? null;
}
function kptrSet(bytes: Uint8Array, offset: number, o: object | null): object | null {
  let m = kptrFields.get(bytes.buffer);
  if (!m) kptrFields.set(bytes.buffer, (m = new Map()));
  const old = m.get(bytes.byteOffset + offset) ?? null;
  if (o) m.set(bytes.byteOffset + offset, o);
  else m.delete(bytes.byteOffset + offset);
  return old;
}
/** Drop the kptrs stored in `bytes` (an array map update frees the old element's kptrs). */
function kptrClear(bytes: Uint8Array): void {
  const m = kptrFields.get(bytes.buffer);
  if (!m) return;
  for (const k of [...m.keys()]) if (k >= bytes.byteOffset && k < bytes.byteOffset + bytes.byteLength) m.delete(k);
}

function viewOf<T extends Type>(type: T, bytes: Uint8Array, offset = 0): Value<T> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (type.kind === 'int') return readInt(dv, offset, type) as Value<T>;
  if (type.kind === 'kptr') return kptrGet(bytes, offset) as Value<T>;
  if (type.kind === 'array') {
    const t = type as ArrayType;
    const elements = function* (): Generator<unknown> {
      for (let i = 0; i < t.length; i++) yield view(t.element, bytes, offset + i * t.element.size);
    };
    return new Proxy({ length: t.length, [Symbol.iterator]: elements } as ArrayView<unknown>, {
      get(target, p) {
        if (typeof p === 'string' && /^\d+$/.test(p)) {
          const i = Number(p);
          if (i >= t.length) throw new RangeError(`index ${i} out of bounds (length ${t.length})`);
          return view(t.element, bytes, offset + i * t.element.size);
        }
        return Reflect.get(target, p);
      },
      set(_target, p, v) {
        if (typeof p !== 'string' || !/^\d+$/.test(p)) return false;
        const i = Number(p);
        if (i >= t.length) throw new RangeError(`index ${i} out of bounds (length ${t.length})`);
        store(t.element, bytes, offset + i * t.element.size, v);
        return true;
      },
    }) as Value<T>;
  }
  const s = type as StructType;
  const obj = {};
  for (const f of s.layout) {
    Object.defineProperty(obj, f.name, {
      enumerable: true,
      get: () => view(f.type, bytes, offset + f.offset),
      set: (v) => {
        if (f.type.kind === 'kptr') throw new TypeError(`kptr field ${f.name}: write it with kptrXchg`);
        store(f.type, bytes, offset + f.offset, v);
      },
    });
  }
  return obj as Value<T>;
}

function store(type: Type, bytes: Uint8Array, offset: number, v: unknown): void {
  if (type.kind === 'int') {
    writeInt(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset, type, v as number | bigint);
  } else if (type.kind === 'kptr') {
    // Copies of a value skip kptr fields, as the kernel's copy_map_value does.
  } else if (type.kind === 'array') {
    const src = typeof v === 'string' ? Buffer.from(v, 'latin1') : (v as ArrayLike<unknown>);
    if (typeof v === 'string' && src.length > type.length) throw new RangeError(`'${v}' does not fit in ${type.length} bytes`);
    for (let i = 0; i < type.length; i++) store(type.element, bytes, offset + i * type.element.size, src[i] ?? 0);
  } else if (isSpinLock(type)) {
    // Copies of a value skip the lock, as the kernel's copy_map_value does.
  } else {
    const src = v as Record<string, unknown>;
    for (const f of (type as StructType).layout) store(f.type, bytes, offset + f.offset, src[f.name] ?? (f.type.kind === 'int' && f.type.size === 8 ? 0n : 0));
  }
}

/** The bytes of a value of `type` (struct literal, integer, or view). */
export function encode<T extends Type>(type: T, value: Init<T> | Value<T>): Uint8Array {
  const bytes = new Uint8Array(type.size);
  store(type, bytes, 0, value);
  return bytes;
}
/** A cell (live reference) over an integer at `offset`. */
function cell(type: IntType, bytes: Uint8Array, offset: number): Cell<number | bigint> {
  return remember({
    get value() {
      return view(type, bytes, offset) as number | bigint;
    },
    set value(v) {
      store(type, bytes, offset, v);
    },
  }, type, bytes, offset);
}
function ref<T extends Type>(type: T, bytes: Uint8Array): Ref<T> {
  if (type.kind === 'kptr') throw new TypeError('a kptr is a field of a struct, not a map value by itself');
  return (type.kind === 'int' ? cell(type, bytes, 0) : view(type, bytes, 0)) as Ref<T>;
}

// ---------------------------------------------------------------------------------------------
// Maps. In Node a map keeps its entries as bytes, keyed by the key's bytes, so a lookup returns
// a live view that aliases the entry, as a pointer into a BPF map value does.

export const BPF_ANY = 0n;
export const BPF_NOEXIST = 1n;
export const BPF_EXIST = 2n;
const E2BIG = 7n;
const EEXIST = 17n;
const ENOENT = 2n;
const EINVAL = 22n;

export interface MapOptions<K extends Type, V extends Type> {
  key: K;
  value: V;
  maxEntries: number;
  flags?: number;
  /** 'name': pinned under /sys/fs/bpf by the map's name. */
  pinning?: 'none' | 'name';
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export abstract class BpfMap<K extends Type, V extends Type> {
  readonly kind: string;
  readonly options: MapOptions<K, V>;
  protected readonly entries = new Map<string, { key: Uint8Array; value: Uint8Array }>();
  constructor(kind: string, options: MapOptions<K, V>) {
    this.kind = kind;
    this.options = options;
  }
  /** A live reference to the value for `key`, or null. */
  lookup(key: Init<K> | Value<K>): Ref<V> | null {
    const e = this.entries.get(hex(encode(this.options.key, key)));
    return e ? ref(this.options.value, e.value) : null;
  }
  /** 0, or a negative errno as bpf_map_update_elem returns it. */
  update(key: Init<K> | Value<K>, value: Init<V> | Value<V>, flags: bigint = BPF_ANY): i64 {
    const k = encode(this.options.key, key);
    const h = hex(k);
    const old = this.entries.get(h);
    if (flags === BPF_NOEXIST && old) return -EEXIST;
    if (flags === BPF_EXIST && !old) return -ENOENT;
    if (!old && this.entries.size >= this.options.maxEntries) return -E2BIG;
    const v = encode(this.options.value, value);
    if (old) {
      old.value.set(v);
      kptrClear(old.value); // the kernel frees the old element's kptrs (bpf_obj_free_fields)
    }
    else this.entries.set(h, { key: k, value: v });
    return 0n;
  }
  /** 0, or a negative errno as bpf_map_delete_elem returns it. */
  delete(key: Init<K> | Value<K>): i64 {
    const e = this.entries.get(hex(encode(this.options.key, key)));
    if (e) kptrClear(e.value);
    return this.entries.delete(hex(encode(this.options.key, key))) ? 0n : -ENOENT;
  }
  /** Userspace: every entry as bytes (for tests and tools). */
  dump(): { key: Uint8Array; value: Uint8Array }[] {
    return [...this.entries.values()];
  }
  /** Userspace/tests: back to the state at declaration (a module imported by several programs
   *  stays loaded in Node, so its maps outlive one program run). */
  reset(): void {
    this.entries.clear();
  }
}

export class HashMap<K extends Type, V extends Type> extends BpfMap<K, V> {}
export class PerCpuHashMap<K extends Type, V extends Type> extends BpfMap<K, V> {}

/** Array maps: keys are u32 indexes; every entry exists and starts zeroed. */
export class ArrayMap<V extends Type> extends BpfMap<IntType<number>, V> {
  constructor(kind: string, options: MapOptions<IntType<number>, V>) {
    super(kind, options);
    this.reset();
  }
  override reset(): void {
    this.entries.clear();
    for (let i = 0; i < this.options.maxEntries; i++) {
      const k = encode(u32, i);
      this.entries.set(hex(k), { key: k, value: new Uint8Array(this.options.value.size) });
    }
  }
  override update(key: number, value: Init<V> | Value<V>, flags: bigint = BPF_ANY): i64 {
    if (key >>> 0 >= this.options.maxEntries) return -E2BIG;
    if (flags === BPF_NOEXIST) return -EEXIST;
    return super.update(key, value, BPF_ANY);
  }
  override delete(_key: number): i64 {
    return -EINVAL;
  }
}
export class PerCpuArrayMap<V extends Type> extends ArrayMap<V> {}

/** The key of an LPM trie: `prefixlen` (u32, host order) first, then the data (be32, byte arrays). */
export type LpmKey = StructType<{ prefixlen: IntType<number> } & Record<string, Type>>;
const ENOSPC = 28n;

/**
 * BPF_MAP_TYPE_LPM_TRIE (always BPF_F_NO_PREALLOC). An entry is (prefix length, the first
 * `prefixlen` bits of the data); `lookup(k)` finds the longest entry whose prefix matches the
 * first min(entry, k.prefixlen) bits of k's data (trie_lookup_elem); `update`/`delete` address
 * the entry of k's prefix length and prefix bits. Keys read back are the bytes last written.
 */
export class LpmTrieMap<K extends LpmKey, V extends Type> extends BpfMap<K, V> {
  private get dataBits(): number {
    return (this.options.key.size - 4) * 8;
  }
  private static prefixOf(k: Uint8Array): number {
    return new DataView(k.buffer, k.byteOffset, 4).getUint32(0, true);
  }
  /** The entry id of a key: prefix length and the data with bits past it cleared. */
  private canonical(k: Uint8Array): string {
    const plen = LpmTrieMap.prefixOf(k);
    const data = k.slice(4);
    for (let bit = plen; bit < data.length * 8; bit++) data[bit >> 3]! &= ~(0x80 >> (bit & 7));
    return `${plen}/${hex(data)}`;
  }
  private static matches(entry: Uint8Array, key: Uint8Array, bits: number): boolean {
    for (let bit = 0; bit < bits; bit++) {
      const m = 0x80 >> (bit & 7);
      if ((entry[4 + (bit >> 3)]! & m) !== (key[4 + (bit >> 3)]! & m)) return false;
    }
    return true;
  }
  override lookup(key: Init<K> | Value<K>): Ref<V> | null {
    const k = encode(this.options.key, key);
    const limit = LpmTrieMap.prefixOf(k);
    let best: { key: Uint8Array; value: Uint8Array } | undefined;
    for (const e of this.entries.values()) {
      const plen = LpmTrieMap.prefixOf(e.key);
      if (plen > limit || (best && plen <= LpmTrieMap.prefixOf(best.key))) continue;
      if (LpmTrieMap.matches(e.key, k, plen)) best = e;
    }
    return best ? ref(this.options.value, best.value) : null;
  }
  override update(key: Init<K> | Value<K>, value: Init<V> | Value<V>, flags: bigint = BPF_ANY): i64 {
    const k = encode(this.options.key, key);
    if (flags > BPF_EXIST || LpmTrieMap.prefixOf(k) > this.dataBits) return -EINVAL;
    const id = this.canonical(k);
    const old = this.entries.get(id);
    if (flags === BPF_NOEXIST && old) return -EEXIST;
    if (flags === BPF_EXIST && !old) return -ENOENT;
    if (!old && this.entries.size >= this.options.maxEntries) return -ENOSPC;
    this.entries.set(id, { key: k, value: encode(this.options.value, value) });
    return 0n;
  }
  override delete(key: Init<K> | Value<K>): i64 {
    const k = encode(this.options.key, key);
    if (LpmTrieMap.prefixOf(k) > this.dataBits) return -EINVAL;
    return this.entries.delete(this.canonical(k)) ? 0n : -ENOENT;
  }
}

/** BPF_MAP_TYPE_RINGBUF: `maxEntries` is the data size in bytes (a power of two ≥ 4096). Programs
 *  only write (ringbufOutput); userspace reads the records in order (`records()`). */
export class RingbufMap {
  readonly kind = 'ringbuf';
  private readonly queue: Uint8Array[] = [];
  private used = 0;
  constructor(readonly options: { maxEntries: number; pinning?: 'none' | 'name' }) {}
  /** Each record takes an 8-byte header and is padded to 8 bytes (kernel/bpf/ringbuf.c). */
  static footprint(size: number): number {
    return 8 + Math.ceil(size / 8) * 8;
  }
  /** bpf_ringbuf_output: 0, or -EAGAIN when the buffer is full (nobody consumed it). */
  output(data: Uint8Array, flags: bigint): i32 {
    if (flags & ~3n) return -22;
    const need = RingbufMap.footprint(data.length);
    // The producer may not get a whole buffer ahead of the consumer (> mask fails).
    if (this.used + need > this.options.maxEntries - 1) return -11;
    this.used += need;
    this.queue.push(data.slice());
    return 0;
  }
  /** Userspace: the records written so far, oldest first. */
  records(): Uint8Array[] {
    return [...this.queue];
  }
  reset(): void {
    this.queue.length = 0;
    this.used = 0;
  }
}
export function ringbufMap(options: { maxEntries: number; pinning?: 'none' | 'name' }): RingbufMap {
  return new RingbufMap(options);
}
/** bpf_ringbuf_output(map, data, sizeof data, flags): copy a view or local() into the ring. */
export function ringbufOutput(map: RingbufMap, data: object, flags: u64 = 0n): i32 {
  const m = memoryOf(data);
  return map.output(m.bytes.subarray(m.offset, m.offset + m.type.size), flags);
}

export function lpmTrieMap<K extends LpmKey, V extends Type>(options: MapOptions<K, V>): LpmTrieMap<K, V> {
  return new LpmTrieMap('lpm_trie', options);
}
export function hashMap<K extends Type, V extends Type>(options: MapOptions<K, V>): HashMap<K, V> {
  return new HashMap('hash', options);
}
export function perCpuHashMap<K extends Type, V extends Type>(options: MapOptions<K, V>): PerCpuHashMap<K, V> {
  return new PerCpuHashMap('percpu_hash', options);
}
export function arrayMap<V extends Type>(options: Omit<MapOptions<IntType<number>, V>, 'key'>): ArrayMap<V> {
  return new ArrayMap('array', { ...options, key: u32 });
}
export function perCpuArrayMap<V extends Type>(options: Omit<MapOptions<IntType<number>, V>, 'key'>): PerCpuArrayMap<V> {
  return new PerCpuArrayMap('percpu_array', { ...options, key: u32 });
}

// ---------------------------------------------------------------------------------------------
// Program contexts. In Node a context wraps a packet buffer; `header()` is the bounds-checked
// typed view: null when the packet is too short, as the compiled check against data_end.

abstract class PacketContext {
  /** The packet bytes (Node only); helpers that resize the packet replace them. */
  packet: Uint8Array;
  constructor(packet: Uint8Array) {
    this.packet = packet;
  }
  /** A live view of `type` at byte `offset` of the packet, or null when the packet is shorter. */
  header<T extends StructType<any> | ArrayType<any>>(type: T, offset: number): Value<T> | null {
    if (offset < 0 || offset + type.size > this.packet.length) return null;
    return view(type, this.packet, offset);
  }
}

/** struct __sk_buff, for tc programs (BPF_PROG_TYPE_SCHED_CLS). */
export class TcContext extends PacketContext {
  /** skb->protocol (host order), taken from the EtherType as BPF_PROG_TEST_RUN does (Node only). */
  protocol: number;
  /** skb->encapsulation, set by bpf_skb_adjust_room with an ENCAP flag (Node only). */
  encapsulation = false;
  constructor(packet: Uint8Array) {
    super(packet);
    this.protocol = packet.length >= 14 ? (packet[12]! << 8) | packet[13]! : 0;
  }
  /** skb->len. */
  get len(): u32 {
    return this.packet.length;
  }
  mark: u32 = 0;
  priority: u32 = 0;
}
/** struct xdp_md, for XDP programs. */
export class XdpContext extends PacketContext {}

export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;
export const TC_ACT_REDIRECT = 7;
export const XDP_ABORTED = 0;
export const XDP_DROP = 1;
export const XDP_PASS = 2;
export const XDP_TX = 3;
export const XDP_REDIRECT = 4;

// ---------------------------------------------------------------------------------------------
// Global data. `rodata(T, init)` is a constant table in .rodata (read-only in BPF: the compiler
// refuses writes), `global(T, init?)` a variable in .data (or .bss without an initialiser). Both
// give the same live reference a map lookup gives: a view for structs and arrays, a Cell for an
// integer. The initialiser is a literal (integers, array and object literals, module constants).

export function rodata<T extends Type>(type: T, init: Init<T>): Readonly<Ref<T>> {
  return ref(type, encode(type, init));
}
export function global<T extends Type>(type: T, init?: Init<T>): Ref<T> {
  const bytes = init === undefined ? new Uint8Array(type.size) : encode(type, init);
  const r = ref(type, bytes);
  initialBytes.set(r as object, { bytes, init: bytes.slice() });
  return r;
}
const initialBytes = new WeakMap<object, { bytes: Uint8Array; init: Uint8Array }>();
/** Userspace/tests: put a map or a `global()` back in its initial state. */
export function resetState(v: unknown): void {
  if (v instanceof BpfMap || v instanceof RingbufMap) return v.reset();
  const g = typeof v === 'object' && v !== null ? initialBytes.get(v) : undefined;
  if (g) g.bytes.set(g.init);
}
/** A zeroed buffer of `type` on the BPF stack (a fresh view in Node, a Cell for an integer): for
 *  helpers and kfuncs that fill memory. `init` (a literal; strings for u8 arrays) is written
 *  over the zeroes. */
export function local<T extends StructType<any> | ArrayType<any> | IntType>(type: T, init?: T extends StructType<any> ? Partial<Init<T>> : Init<T>): Ref<T> {
  return ref(type, init === undefined ? new Uint8Array(type.size) : encode(type, init as Init<T>));
}

// ---------------------------------------------------------------------------------------------
// Atomics (BPF_ATOMIC on map values and global data).

type IntFields<V> = { [K in keyof V]: V[K] extends number | bigint ? K : never }[keyof V];

/** Atomically add `n` to `obj[field]` (a 32- or 64-bit field of a map value, global or Cell) and
 *  return the old value: BPF_ATOMIC | BPF_FETCH | BPF_ADD. The sum wraps like a store. */
export function fetchAdd<V extends object, K extends IntFields<V>>(obj: V, field: K, n: V[K]): V[K] {
  const old = obj[field];
  (obj as Record<K, unknown>)[field] = typeof old === 'bigint' ? BigInt.asUintN(64, old + (n as bigint)) : (old as number) + (n as number);
  return old;
}

// ---------------------------------------------------------------------------------------------
// Spin locks (bpf_spin_lock / bpf_spin_unlock on a `bpfSpinLock` field of a map value).

type LockFields<V> = { [K in keyof V]: V[K] extends SpinLock ? K : never }[keyof V];
/** The locks held now (Node: one program run at a time), by memory and absolute offset. */
const heldLocks = new WeakMap<ArrayBufferLike, Set<number>>();
function lockSlot(obj: object, field: PropertyKey): { set: Set<number>; at: number } {
  const m = memoryOf(obj);
  const f = m.type.kind === 'struct' ? (m.type as StructType).layout.find((x) => x.name === field) : undefined;
  if (!f || !isSpinLock(f.type)) throw new TypeError(`${String(field)} is not a bpfSpinLock field`);
  let set = heldLocks.get(m.bytes.buffer);
  if (!set) heldLocks.set(m.bytes.buffer, (set = new Set()));
  return { set, at: m.bytes.byteOffset + m.offset + f.offset };
}
/** bpf_spin_lock(&obj->field): take the lock of a map value. Until spinUnlock the program may not
 *  call helpers, kfuncs or functions that do, nor take a second lock, nor return (the compiler
 *  checks this: EBPF1415–1417). In Node taking a held lock throws (it would never return). */
export function spinLock<V extends object, K extends LockFields<V>>(obj: V, field: K): void {
  const { set, at } = lockSlot(obj, field);
  if (set.has(at)) throw new Error(`spinLock: ${String(field)} is already held (deadlock)`);
  set.add(at);
}
/** bpf_spin_unlock(&obj->field): release the lock taken by spinLock on the same field. */
export function spinUnlock<V extends object, K extends LockFields<V>>(obj: V, field: K): void {
  const { set, at } = lockSlot(obj, field);
  if (!set.delete(at)) throw new Error(`spinUnlock: ${String(field)} is not held`);
}

// ---------------------------------------------------------------------------------------------
// BPF helpers (the compiler's table: compiler/frontend/helpers.ts). Each is the kernel helper's
// behaviour on a BPF_PROG_TEST_RUN skb (linear, CHECKSUM_NONE, no GSO), Linux 6.18.

/** The errnos helpers return (negated). */
export const Errno = { EFAULT: 14, EINVAL: 22, ENOMEM: 12, EALREADY: 114, ENOTSUPP: 524 } as const;
const { EFAULT, ENOMEM, EALREADY, ENOTSUPP } = Errno;
const EINVAL_N = Errno.EINVAL;
export const BPF_F_RECOMPUTE_CSUM = 1n;
export const BPF_F_INVALIDATE_HASH = 2n;
export const BPF_F_PSEUDO_HDR = 0x10n;
export const BPF_F_MARK_MANGLED_0 = 0x20n;
export const BPF_F_INGRESS = 1n;
export const BPF_ADJ_ROOM_NET = 0;
export const BPF_ADJ_ROOM_MAC = 1;
export const BPF_F_ADJ_ROOM_FIXED_GSO = 1n;
export const BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 = 2n;
export const BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 = 4n;
export const BPF_F_ADJ_ROOM_ENCAP_L4_GRE = 8n;
export const BPF_F_ADJ_ROOM_ENCAP_L4_UDP = 16n;
export const BPF_F_ADJ_ROOM_NO_CSUM_RESET = 32n;
export const BPF_F_ADJ_ROOM_DECAP_L3_IPV4 = 128n;
export const BPF_F_ADJ_ROOM_DECAP_L3_IPV6 = 256n;

const bytesOf = (v: object): Uint8Array => {
  const m = memoryOf(v);
  return m.bytes.subarray(m.offset, m.offset + m.type.size);
};

/** bpf_ktime_get_ns. */
export function ktimeGetNs(): u64 {
  return process.hrtime.bigint();
}
/** bpf_get_prandom_u32. */
export function getPrandomU32(): u32 {
  return (Math.random() * 2 ** 32) >>> 0;
}
/** bpf_skb_load_bytes(skb, offset, buf, sizeof buf): 0, or -EFAULT (buf zeroed) past the end. */
export function loadBytes(skb: TcContext, offset: u32, buf: object): i32 {
  const dst = bytesOf(buf);
  if (offset > 0x7fffffff || offset + dst.length > skb.packet.length) {
    dst.fill(0);
    return -EFAULT;
  }
  dst.set(skb.packet.subarray(offset, offset + dst.length));
  return 0;
}
/** bpf_skb_store_bytes(skb, offset, buf, sizeof buf, flags). */
export function storeBytes(skb: TcContext, offset: u32, buf: object, flags: u64 = 0n): i32 {
  if (flags & ~(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH)) return -EINVAL_N;
  const src = bytesOf(buf);
  if (offset > 0x7fffffff || offset + src.length > skb.packet.length) return -EFAULT;
  skb.packet.set(src, offset);
  return 0;
}

// One's complement arithmetic of include/net/checksum.h on x86-64, values as the host loads them.
const csumAdd = (a: number, b: number): number => {
  const s = (a >>> 0) + (b >>> 0);
  return s >= 2 ** 32 ? (s - 2 ** 32 + 1) >>> 0 : s;
};
const csumFold = (c: number): number => {
  let s = c >>> 0;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
};
const csum16Add = (c: number, a: number): number => {
  const r = (c + a) & 0xffff;
  return (r + (r < a ? 1 : 0)) & 0xffff;
};
function csumPartial(b: Uint8Array, seed: number): number {
  let acc = BigInt(seed >>> 0);
  const padded = new Uint8Array(Math.ceil(b.length / 8) * 8);
  padded.set(b);
  const dv = new DataView(padded.buffer);
  for (let off = 0; off < padded.length; off += 8) {
    acc += dv.getBigUint64(off, true);
    if (acc >= 1n << 64n) acc = (acc & 0xffffffffffffffffn) + 1n;
  }
  let x = (acc & 0xffffffffn) + (acc >> 32n);
  x = (x & 0xffffffffn) + (x >> 32n);
  return Number(x & 0xffffffffn);
}
/** bpf_csum_diff(from, sizeof from, to, sizeof to, seed): the partial sum of `to` minus that of
 *  `from`, folded to 16 bits (not complemented), as every architecture returns it since Linux
 *  6.12 ("bpf: make bpf_csum_diff() consistent across archs"); any sizes are accepted. */
export function csumDiff(from: object, to: object, seed: u32): i64 {
  const sum = csumAdd(csumPartial(bytesOf(to), seed), ~csumPartial(bytesOf(from), 0) >>> 0);
  return BigInt(~csumFold(sum) & 0xffff);
}
function checksumAt(skb: TcContext, offset: u32): DataView | undefined {
  if (offset > 0xffff || offset + 2 > skb.packet.length) return undefined;
  return new DataView(skb.packet.buffer, skb.packet.byteOffset + offset, 2);
}
/** bpf_l3_csum_replace(skb, offset, from, to, size): patch the checksum at `offset` for a 2- or
 *  4-byte field changing from `from` to `to` (values as loaded from the packet, i.e. be16/be32 raw). */
export function l3CsumReplace(skb: TcContext, offset: u32, from: u32, to: u32, size: u64): i32 {
  if (size !== 2n && size !== 4n) return -EINVAL_N;
  const f = checksumAt(skb, offset);
  if (!f) return -EFAULT;
  const sum = f.getUint16(0, true);
  f.setUint16(0, size === 2n ? ~csum16Add(csum16Add(~sum & 0xffff, ~from & 0xffff), to & 0xffff) & 0xffff : csumFold(csumAdd(csumAdd(~sum >>> 0, ~from >>> 0), to)), true);
  return 0;
}
/** bpf_l4_csum_replace(skb, offset, from, to, flags): flags = size | BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0. */
export function l4CsumReplace(skb: TcContext, offset: u32, from: u32, to: u32, flags: u64): i32 {
  const size = flags & 0xfn;
  if (flags & ~(0xfn | BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0) || (size !== 2n && size !== 4n)) return -EINVAL_N;
  const f = checksumAt(skb, offset);
  if (!f) return -EFAULT;
  const sum = f.getUint16(0, true);
  const mangled = (flags & BPF_F_MARK_MANGLED_0) !== 0n;
  if (mangled && sum === 0) return 0;
  const a = size === 2n ? from & 0xffff : from;
  const b = size === 2n ? to & 0xffff : to;
  let r = csumFold(csumAdd(csumAdd(~sum >>> 0, ~a >>> 0), b));
  if (mangled && r === 0) r = 0xffff;
  f.setUint16(0, r, true);
  return 0;
}
function resize(skb: TcContext, at: number, remove: number, insert: number): void {
  const p = skb.packet;
  const out = new Uint8Array(p.length - remove + insert);
  out.set(p.subarray(0, at));
  out.set(p.subarray(at + remove), at + insert);
  skb.packet = out;
}
/** bpf_skb_change_tail(skb, len, 0): trim or zero-extend the packet to `len` bytes. */
export function changeTail(skb: TcContext, len: u32, flags: u64 = 0n): i32 {
  if (flags || len > 16384 - 320 || len < 14) return -EINVAL_N;
  const n = skb.packet.length;
  if (len < n) resize(skb, len, n - len, 0);
  else resize(skb, n, 0, len - n);
  return 0;
}
/** bpf_skb_pull_data(skb, len): a test-run skb is linear; only the length is checked. */
export function pullData(skb: TcContext, len: u32): i32 {
  return len > skb.packet.length ? -ENOMEM : 0;
}
/** bpf_skb_adjust_room(skb, lenDiff, mode, flags): insert zeroed room (or remove bytes) after the
 *  MAC header (BPF_ADJ_ROOM_MAC) or after the fixed L3 header (BPF_ADJ_ROOM_NET). */
export function adjustRoom(skb: TcContext, lenDiff: i32, mode: u32, flags: u64): i32 {
  const IP = 0x0800;
  const IP6 = 0x86dd;
  if (flags & ~(0x1ffn | (0xffn << 56n))) return -EINVAL_N;
  const f = flags & 0x1ffn;
  const innerMac = Number((flags >> 56n) & 0xffn);
  const abs = Math.abs(lenDiff);
  const shrink = lenDiff < 0;
  if (abs > 0xfff) return -EFAULT;
  if (skb.protocol !== IP && skb.protocol !== IP6) return -ENOTSUPP;
  const netBase = skb.protocol === IP ? 20 : 40;
  let off = 14;
  if (mode === BPF_ADJ_ROOM_NET) off += netBase;
  else if (mode !== BPF_ADJ_ROOM_MAC) return -ENOTSUPP;
  let lenMin = netBase;
  const decap = f & (BPF_F_ADJ_ROOM_DECAP_L3_IPV4 | BPF_F_ADJ_ROOM_DECAP_L3_IPV6);
  if (decap) {
    if (!shrink || decap === (BPF_F_ADJ_ROOM_DECAP_L3_IPV4 | BPF_F_ADJ_ROOM_DECAP_L3_IPV6)) return -EINVAL_N;
    lenMin = decap === BPF_F_ADJ_ROOM_DECAP_L3_IPV4 ? 20 : 40;
  }
  const lenCur = skb.packet.length - 14;
  if (shrink ? abs >= lenCur || lenCur - abs < lenMin : skb.packet.length + abs > 16384 - 320) return -ENOTSUPP;
  const encap = (f & (BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_ENCAP_L4_GRE | BPF_F_ADJ_ROOM_ENCAP_L4_UDP | 64n)) !== 0n || innerMac !== 0;
  if (shrink) {
    if (encap) return -EINVAL_N;
    resize(skb, off, abs, 0);
    if (decap) skb.protocol = decap === BPF_F_ADJ_ROOM_DECAP_L3_IPV4 ? IP : IP6;
    return 0;
  }
  if (encap) {
    if (f & BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 && f & BPF_F_ADJ_ROOM_ENCAP_L3_IPV6) return -EINVAL_N;
    if (f & BPF_F_ADJ_ROOM_ENCAP_L4_GRE && f & BPF_F_ADJ_ROOM_ENCAP_L4_UDP) return -EINVAL_N;
    if (f & 64n && innerMac !== 14) return -EINVAL_N;
    if (skb.encapsulation) return -EALREADY;
    if (innerMac > abs) return -EINVAL_N;
  }
  resize(skb, off, 0, abs);
  if (encap) {
    skb.encapsulation = true;
    if (skb.protocol === IP && f & BPF_F_ADJ_ROOM_ENCAP_L3_IPV6) skb.protocol = IP6;
    else if (skb.protocol === IP6 && f & BPF_F_ADJ_ROOM_ENCAP_L3_IPV4) skb.protocol = IP;
  }
  return 0;
}
/** bpf_redirect_neigh(ifindex, params, plen, flags) from tc: the next hop from the kernel's
 *  FIB and neighbour tables (params null, plen 0); TC_ACT_REDIRECT, or TC_ACT_SHOT for flags. */
export function redirectNeigh(ifindex: u32, params: null, plen: 0, flags: u64 = 0n): i32 {
  void ifindex, params, plen;
  return flags !== 0n ? TC_ACT_SHOT : TC_ACT_REDIRECT;
}
/** bpf_redirect(ifindex, flags) from tc: TC_ACT_REDIRECT, or TC_ACT_SHOT for unknown flags. */
export function redirect(ifindex: u32, flags: u64 = 0n): i32 {
  void ifindex;
  return flags & ~BPF_F_INGRESS ? TC_ACT_SHOT : TC_ACT_REDIRECT;
}

// ---------------------------------------------------------------------------------------------
// Syscall programs (BPF_PROG_TYPE_SYSCALL, sleepable): run from userspace with BPF_PROG_TEST_RUN
// on a buffer (ctx_in); the program reads and writes it through `ctx.args(T)`.

export class SyscallContext {
  /** The ctx_in buffer (Node only). */
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
  /** A live view of the buffer as `type` (the caller passes at least type.size bytes). */
  args<T extends StructType<any> | ArrayType<any>>(type: T): Value<T> {
    if (type.size > this.bytes.length) throw new RangeError(`the syscall buffer is ${this.bytes.length} bytes, ${type.size} expected (EINVAL)`);
    return view(type, this.bytes, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// kptrs, dynptrs and the bpf_crypto kfuncs (kernel/bpf/crypto.c, Linux 6.10+; "skcipher" with
// ecb(aes) / cbc(aes)). In Node a crypto context wraps node:crypto; its reference count follows
// the kernel's (create and acquire take a reference, release drops one).

/** bpf_kptr_xchg(&obj->field, ptr): store `ptr` (an owned reference or null) and return the old
 *  one, which the caller now owns (release it or store it again). */
export function kptrXchg<V extends object, K extends keyof V>(obj: V, field: K, ptr: V[K] | null): V[K] | null {
  const m = memoryOf(obj);
  const f = m.type.kind === 'struct' ? (m.type as StructType).layout.find((x) => x.name === field) : undefined;
  if (!f || f.type.kind !== 'kptr') throw new TypeError(`${String(field)} is not a kptr field`);
  return kptrSet(m.bytes, m.offset + f.offset, ptr as object | null) as V[K] | null;
}

/** struct bpf_crypto_params (include/linux/bpf_crypto.h). */
export const CryptoParams = struct(
  { type: array(u8, 14), reserved: array(u8, 2), algo: array(u8, 128), key: array(u8, 256), key_len: u32, authsize: u32 },
  { name: 'bpf_crypto_params' },
);

const AES_MODES: Record<string, 'ecb' | 'cbc'> = { 'ecb(aes)': 'ecb', 'ecb(aes-generic)': 'ecb', 'cbc(aes)': 'cbc', 'cbc(aes-generic)': 'cbc' };
const EOPNOTSUPP_N = 95;
const ENOENT_N = 2;

/** struct bpf_crypto_ctx: a kernel object, held through kptr fields and kfunc results. */
export class CryptoCtx {
  static readonly btfName = 'bpf_crypto_ctx';
  /** The reference count (Node only). */
  usage = 1;
  readonly mode: 'ecb' | 'cbc';
  readonly key: Uint8Array;
  private constructor(mode: 'ecb' | 'cbc', key: Uint8Array) {
    this.mode = mode;
    this.key = key;
  }
  /** @internal */
  static create(mode: 'ecb' | 'cbc', key: Uint8Array): CryptoCtx {
    return new CryptoCtx(mode, key);
  }
}

/** struct bpf_dynptr: a stack object describing memory (Node: the bytes it covers). */
export class Dynptr {
  /** What it covers now (dynptrAdjust narrows it). */
  bytes: Uint8Array;
  readonly rdonly: boolean;
  constructor(bytes: Uint8Array, rdonly = false) {
    this.bytes = bytes;
    this.rdonly = rdonly;
  }
}

const cString = (b: Uint8Array): string => {
  const nul = b.indexOf(0);
  return Buffer.from(b.subarray(0, nul < 0 ? b.length : nul)).toString('latin1');
};

/** bpf_crypto_ctx_create(params, sizeof params, &err): a new context (one reference), or null
 *  with a negative errno in `err`. Only sleepable (syscall) programs may call it. */
export function cryptoCtxCreate(params: Infer<typeof CryptoParams>, err: Cell<i32>): CryptoCtx | null {
  const p = bytesOf(params);
  const fail = (errno: number): null => {
    err.value = -errno;
    return null;
  };
  const L = CryptoParams.layout;
  const at = (name: string): number => L.find((f) => f.name === name)!.offset;
  if (p[at('reserved')] || p[at('reserved') + 1]) return fail(EINVAL_N);
  if (cString(p.subarray(at('type'), at('reserved'))) !== 'skcipher') return fail(ENOENT_N);
  const mode = AES_MODES[cString(p.subarray(at('algo'), at('key')))];
  if (!mode) return fail(EOPNOTSUPP_N);
  if (params.authsize !== 0) return fail(EOPNOTSUPP_N);
  const keyLen = params.key_len;
  if (keyLen !== 16 && keyLen !== 24 && keyLen !== 32) return fail(EINVAL_N);
  err.value = 0;
  return CryptoCtx.create(mode, p.slice(at('key'), at('key') + keyLen));
}
/** bpf_crypto_ctx_acquire: one more reference, or null when the context is being freed. */
export function cryptoCtxAcquire(ctx: CryptoCtx): CryptoCtx | null {
  if (ctx.usage === 0) return null;
  ctx.usage++;
  return ctx;
}
/** bpf_crypto_ctx_release: drop a reference taken by create, acquire or kptrXchg. */
export function cryptoCtxRelease(ctx: CryptoCtx): void {
  ctx.usage--;
}
function crypt(decrypt: boolean, ctx: CryptoCtx, src: Dynptr, dst: Dynptr, siv: Dynptr | null): i32 {
  const sivLen = siv ? siv.bytes.length : 0;
  if (dst.rdonly || !src.bytes.length || !dst.bytes.length || src.bytes.length > dst.bytes.length) return -EINVAL_N;
  if (sivLen !== (ctx.mode === 'cbc' ? 16 : 0)) return -EINVAL_N;
  const input = Buffer.from(src.bytes); // src and dst may overlap
  const whole = input.length - (input.length % 16);
  if (whole > 0) {
    const c = (decrypt ? nodeCrypto.createDecipheriv : nodeCrypto.createCipheriv)(`aes-${ctx.key.length * 8}-${ctx.mode}`, ctx.key, ctx.mode === 'cbc' ? Buffer.from(siv!.bytes) : null);
    c.setAutoPadding(false);
    const out = Buffer.concat([c.update(input.subarray(0, whole)), c.final()]);
    dst.bytes.set(out);
    if (ctx.mode === 'cbc') siv!.bytes.set((decrypt ? input : out).subarray(whole - 16, whole));
  }
  return whole === input.length ? 0 : -EINVAL_N;
}
/** bpf_crypto_encrypt(ctx, src, dst, siv): 0, or -EINVAL (lengths not a multiple of 16, dst
 *  shorter than src, wrong IV size: whole blocks are still processed, as lskcipher does). */
export function cryptoEncrypt(ctx: CryptoCtx, src: Dynptr, dst: Dynptr, siv: Dynptr | null): i32 {
  return crypt(false, ctx, src, dst, siv);
}
/** bpf_crypto_decrypt(ctx, src, dst, siv). */
export function cryptoDecrypt(ctx: CryptoCtx, src: Dynptr, dst: Dynptr, siv: Dynptr | null): i32 {
  return crypt(true, ctx, src, dst, siv);
}
/** bpf_dynptr_from_mem(buf, len, 0, &d): a dynptr over the first `len` bytes (default: all) of
 *  a map value or global. `len` must be provably ≤ sizeof buf (EBPF1202 otherwise: mask it or
 *  check it; the verifier needs the bound too). */
export function dynptrFromMem(buf: object, len?: u32): Dynptr {
  const b = bytesOf(buf);
  if (len === undefined) return new Dynptr(b);
  if (!Number.isInteger(len) || len < 0 || len > b.length) throw new RangeError(`dynptrFromMem: length ${len} exceeds the ${b.length}-byte buffer`);
  return new Dynptr(b.subarray(0, len));
}
/** bpf_dynptr_adjust(d, start, end) (kfunc): narrow the dynptr to bytes [start, end) of what it
 *  covers now. 0, -ERANGE when start or end is past its size, -EINVAL when start > end. */
export function dynptrAdjust(d: Dynptr, start: u32, end: u32): i32 {
  const size = d.bytes.length;
  if (start > size || end > size) return -34;
  if (start > end) return -EINVAL_N;
  d.bytes = d.bytes.subarray(start, end);
  return 0;
}
/** bpf_dynptr_from_skb(skb, 0, &d): a dynptr over the packet (a test-run skb is linear). */
export function dynptrFromSkb(skb: TcContext): Dynptr {
  return new Dynptr(skb.packet);
}
/** bpf_dynptr_slice_rdwr(d, offset, NULL, sizeof T): a view of T inside the dynptr, or null when
 *  it does not fit. (bpf_dynptr_slice gives the same view; the compiler refuses writes to it.) */
export function dynptrSlice<T extends StructType<any> | ArrayType<any>>(d: Dynptr, offset: u32, type: T): Value<T> | null {
  if (offset + type.size > d.bytes.length) return null;
  return view(type, d.bytes, offset);
}

// ---------------------------------------------------------------------------------------------
// bpf_loop (helper 181): up to 2^23 iterations of a callback, without the verifier walking each.

/** bpf_loop(count, callback, ctx, 0): call `callback(i, ctx)` for i = 0, 1, … until it returns 1
 *  or `count` calls were made; returns the number of calls (-E2BIG when count > 2^23). `ctx` is a
 *  local(T) (bpf_loop passes stack memory only) or null. */
export function bpfLoop<C>(count: u32, callback: (index: number, ctx: C) => number, ctx: C): i32 {
  if (count > 1 << 23) return -E2BIG_N;
  for (let i = 0; i < count; i++) if (callback(i, ctx) !== 0) return i + 1;
  return count;
}
const E2BIG_N = 7;
