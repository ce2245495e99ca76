// The DSL: what programs import. Everything here is ordinary TypeScript that runs in Node with
// the semantics the compiler gives the same source in BPF (see README.md in this folder), so any
// DSL program is its own reference implementation.
//
// Layouts are values (descriptors), not only types: `struct({...})` keeps field sizes and offsets
// at run time, which is what lets a packet view or a map work in plain Node and what the
// compiler reads (statically, from the same initialiser) to lay out BPF memory and BTF.

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
export type Type = IntType | ArrayType<any> | StructType<any>;

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

/** The JavaScript value of a field of type T: integers by value, arrays and structs as live views. */
export type Value<T> =
  T extends IntType<infer V> ? V : T extends ArrayType<infer E> ? ArrayView<Value<E>> : T extends StructType<infer F> ? View<F> : never;
/** Plain data accepted where a value is written (struct literals, integers). */
export type Init<T> =
  T extends IntType<infer V> ? V : T extends ArrayType<infer E> ? ArrayLike<Init<E>> : T extends StructType<infer F> ? { [K in keyof F]: Init<F[K]> } : never;
export type View<F extends Record<string, Type>> = { -readonly [K in keyof F]: Value<F[K]> };
/** The view type of a struct descriptor: `type EthHdr = Infer<typeof EthHdr>`. */
export type Infer<S extends Type> = Value<S>;
export interface ArrayView<V> {
  readonly length: number;
  [index: number]: V;
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

/** A live view of `type` at `offset` in `bytes`. */
export function view<T extends Type>(type: T, bytes: Uint8Array, offset = 0): Value<T> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (type.kind === 'int') return readInt(dv, offset, type) as Value<T>;
  if (type.kind === 'array') {
    const t = type as ArrayType;
    return new Proxy({ length: t.length } as ArrayView<unknown>, {
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
      set: (v) => store(f.type, bytes, offset + f.offset, v),
    });
  }
  return obj as Value<T>;
}

function store(type: Type, bytes: Uint8Array, offset: number, v: unknown): void {
  if (type.kind === 'int') {
    writeInt(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset, type, v as number | bigint);
  } else if (type.kind === 'array') {
    const src = v as ArrayLike<unknown>;
    for (let i = 0; i < type.length; i++) store(type.element, bytes, offset + i * type.element.size, src[i] ?? 0);
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
  return {
    get value() {
      return view(type, bytes, offset) as number | bigint;
    },
    set value(v) {
      store(type, bytes, offset, v);
    },
  };
}
function ref<T extends Type>(type: T, bytes: Uint8Array): Ref<T> {
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
    if (old) old.value.set(v);
    else this.entries.set(h, { key: k, value: v });
    return 0n;
  }
  /** 0, or a negative errno as bpf_map_delete_elem returns it. */
  delete(key: Init<K> | Value<K>): i64 {
    return this.entries.delete(hex(encode(this.options.key, key))) ? 0n : -ENOENT;
  }
  /** Userspace: every entry as bytes (for tests and tools). */
  dump(): { key: Uint8Array; value: Uint8Array }[] {
    return [...this.entries.values()];
  }
}

export class HashMap<K extends Type, V extends Type> extends BpfMap<K, V> {}
export class PerCpuHashMap<K extends Type, V extends Type> extends BpfMap<K, V> {}

/** Array maps: keys are u32 indexes; every entry exists and starts zeroed. */
export class ArrayMap<V extends Type> extends BpfMap<IntType<number>, V> {
  constructor(kind: string, options: MapOptions<IntType<number>, V>) {
    super(kind, options);
    for (let i = 0; i < options.maxEntries; i++) {
      const k = encode(u32, i);
      this.entries.set(hex(k), { key: k, value: new Uint8Array(options.value.size) });
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
  /** The packet bytes (Node only). */
  readonly packet: Uint8Array;
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
