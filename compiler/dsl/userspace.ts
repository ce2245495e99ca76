// Userspace side of a DSL file: what the JavaScript emitted by the compiler (compileFile(...).js)
// holds in place of programs and maps. A program becomes a reference to its object; a map
// declaration a typed handle whose key/value encoding comes from the same struct descriptors the
// BPF side was compiled from. A handle binds to any map with Buffer-level lookup/update/delete/
// keys: a kernel map (runtime/loader MapHandle) or a VM map (runtime/vm VmMap).

import { type Init, type Type, encode, isSpinLock, u32, view } from './index.ts';

/** A program in the emitted JavaScript: which object file and which program in it. */
export interface ProgramRef {
  readonly object: string;
  readonly program: string;
}

/** The Buffer-level map interface the loader's MapHandle and the VM's VmMap share. */
export interface RawMap {
  lookup(key: Buffer): Buffer | null | undefined;
  update(key: Buffer, value: Buffer, flags?: number): void;
  delete(key: Buffer): boolean;
  keys(): Iterable<Buffer>;
}

/** The plain JavaScript value of `type` stored at `offset` (numbers, bigints, arrays, objects). */
export function decode(type: Type, bytes: Uint8Array, offset = 0): unknown {
  if (type.kind === 'int') return view(type, bytes, offset);
  if (type.kind === 'kptr') return null; // userspace sees kptr fields as zero
  if (type.kind === 'array') return Array.from({ length: type.length }, (_, i) => decode(type.element, bytes, offset + i * type.element.size));
  // A bpf_spin_lock field is left out, as Init leaves it out (the kernel shows it as zero).
  return Object.fromEntries(type.layout.filter((f) => !isSpinLock(f.type)).map((f) => [f.name, decode(f.type, bytes, offset + f.offset)]));
}

export class MapHandle<K extends Type, V extends Type> {
  constructor(
    readonly name: string,
    readonly kind: string,
    readonly key: K,
    readonly value: V,
    readonly maxEntries: number,
    readonly flags: number,
  ) {}
  encodeKey(k: Init<K>): Buffer {
    return Buffer.from(encode(this.key, k as never));
  }
  encodeValue(v: Init<V>): Buffer {
    return Buffer.from(encode(this.value, v as never));
  }
  decodeKey(b: Uint8Array): Init<K> {
    return decode(this.key, b) as Init<K>;
  }
  /** A value as read: per-CPU maps give round_up(size, 8) bytes per CPU, decoded as an array. */
  decodeValue(b: Uint8Array): Init<V> | Init<V>[] {
    if (this.kind.startsWith('percpu_') && b.length > this.value.size) {
      const stride = Math.ceil(this.value.size / 8) * 8;
      return Array.from({ length: Math.floor(b.length / stride) }, (_, i) => decode(this.value, b, i * stride) as Init<V>);
    }
    return decode(this.value, b) as Init<V>;
  }
  bind(raw: RawMap): BoundMap<K, V> {
    return new BoundMap(this, raw);
  }
}

/** A handle bound to a map: typed get/set/delete/entries over the Buffer-level map. */
export class BoundMap<K extends Type, V extends Type> {
  constructor(
    readonly handle: MapHandle<K, V>,
    readonly raw: RawMap,
  ) {}
  get(key: Init<K>): Init<V> | Init<V>[] | null {
    const v = this.raw.lookup(this.handle.encodeKey(key));
    return v ? this.handle.decodeValue(v) : null;
  }
  set(key: Init<K>, value: Init<V>, flags = 0): void {
    this.raw.update(this.handle.encodeKey(key), this.handle.encodeValue(value), flags);
  }
  delete(key: Init<K>): boolean {
    return this.raw.delete(this.handle.encodeKey(key));
  }
  *entries(): Generator<[Init<K>, Init<V> | Init<V>[]]> {
    for (const k of this.raw.keys()) {
      const v = this.raw.lookup(k);
      if (v) yield [this.handle.decodeKey(k), this.handle.decodeValue(v)];
    }
  }
}

/** Used by the emitted JavaScript for each map declaration (array maps are keyed by u32). */
export function mapHandle<K extends Type, V extends Type>(o: { name: string; kind: string; key?: K; value?: V; maxEntries: number; flags: number }): MapHandle<K, V> {
  return new MapHandle(o.name, o.kind, (o.key ?? u32) as K, (o.value ?? u32) as V, o.maxEntries, o.flags);
}
