// Maps: creation with BTF key/value types, pinning by name with reuse of a compatible pin, global
// data initialisation and freezing, and MapHandle, the typed view user space works through.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Btf } from '../../compiler/btf/btf.ts';
import type { MapSpec } from '../../compiler/elf/spec.ts';
import { Pinning } from '../../compiler/elf/spec.ts';
import { BPF_ANY, BPF_MAP_TYPE_LRU_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_PERCPU_HASH } from '../sys/constants.ts';
import {
  BpfError,
  FD,
  mapCreate,
  mapDelete,
  mapFreeze,
  mapInfo,
  mapKeys,
  mapLookup,
  mapUpdate,
  objGet,
  objPin,
  perCpuValueSize,
  possibleCpus,
  syscallOverridden,
  type MapInfo,
} from '../sys/index.ts';
import { copyInto, padTo } from './bytes.ts';
import { decode, encode, type Json } from './codec.ts';
import { LoaderError } from './errors.ts';

const PERCPU = new Set<number>([BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_LRU_PERCPU_HASH]);
// map_flags bits the kernel reports back differently from what was asked (none today); kept as a
// mask so the compatibility check compares what the kernel preserves.
const COMPARED_FLAGS = 0xffffffff;

/** A map in the kernel, with what is known of its layout: spec and BTF when it came from an
 *  object, only the kernel's info when opened by pin or id. */
export class MapHandle {
  constructor(
    readonly name: string,
    readonly fd: FD,
    readonly info: MapInfo,
    /** BTF describing keyTypeId/valueTypeId (the object's, or the kernel's copy of it). */
    readonly btf: Btf | undefined,
    readonly keyTypeId: number,
    readonly valueTypeId: number,
    readonly spec?: MapSpec,
    /** Where it is pinned, when it is. */
    public pinnedAt?: string,
  ) {}

  get keySize(): number {
    return this.info.keySize;
  }
  get valueSize(): number {
    return this.info.valueSize;
  }
  get perCpu(): boolean {
    return PERCPU.has(this.info.type);
  }
  /** Bytes user space passes for a value: per-CPU maps take one 8-aligned copy per CPU. */
  get userValueSize(): number {
    return this.perCpu ? perCpuValueSize(this.info.valueSize) : this.info.valueSize;
  }

  lookup(key: Buffer): Buffer | null {
    return mapLookup(this.fd, key, this.userValueSize);
  }
  update(key: Buffer, value: Buffer, flags: number = BPF_ANY): void {
    mapUpdate(this.fd, key, value, flags);
  }
  delete(key: Buffer): boolean {
    return mapDelete(this.fd, key);
  }
  keys(): Generator<Buffer> {
    return mapKeys(this.fd, this.info.keySize);
  }
  *entries(): Generator<[Buffer, Buffer]> {
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v) yield [k, v];
    }
  }
  /** Number of keys (for arrays: max_entries, every element exists). */
  count(): number {
    let n = 0;
    for (const _ of this.keys()) n++;
    return n;
  }

  // ---- JSON through BTF

  decodeKey(key: Buffer): Json {
    return decode(this.btf, this.keyTypeId, key);
  }
  /** A value as JSON; per-CPU values as an array, one per possible CPU. */
  decodeValue(value: Buffer): Json {
    if (!this.perCpu) return decode(this.btf, this.valueTypeId, value);
    const stride = Math.ceil(this.info.valueSize / 8) * 8;
    return Array.from({ length: value.length / stride }, (_, cpu) => decode(this.btf, this.valueTypeId, value, cpu * stride, this.info.valueSize));
  }
  encodeKey(key: Json): Buffer {
    return encode(this.btf, this.keyTypeId, key, this.info.keySize);
  }
  /** JSON → value bytes; for per-CPU maps one value is copied to every CPU, an array sets each. */
  encodeValue(value: Json): Buffer {
    if (!this.perCpu) return encode(this.btf, this.valueTypeId, value, this.info.valueSize);
    const stride = Math.ceil(this.info.valueSize / 8) * 8;
    const cpus = possibleCpus();
    const out = Buffer.alloc(stride * cpus);
    for (let cpu = 0; cpu < cpus; cpu++) {
      const v = Array.isArray(value) ? value[cpu] ?? null : value;
      if (v !== null) copyInto(encode(this.btf, this.valueTypeId, v, this.info.valueSize), out, cpu * stride);
    }
    return out;
  }

  close(): void {
    this.fd.close();
  }
}

export interface CreateMapOptions {
  /** Kernel name (≤ 15 bytes). */
  kernelName: string;
  btfFd?: FD;
  btf?: Btf;
  /** Where a Pinning.BY_NAME map is pinned; undefined disables pinning. */
  pinPath?: string;
}

/** Why a pinned map cannot stand in for `spec`; undefined when it can (libbpf's map_is_reuse_compat). */
export function incompatibility(spec: MapSpec, info: MapInfo): string | undefined {
  const diffs: string[] = [];
  if (info.type !== spec.type) diffs.push(`type ${info.type} ≠ ${spec.type}`);
  if (info.keySize !== spec.keySize) diffs.push(`key size ${info.keySize} ≠ ${spec.keySize}`);
  if (info.valueSize !== spec.valueSize) diffs.push(`value size ${info.valueSize} ≠ ${spec.valueSize}`);
  if (info.maxEntries !== spec.maxEntries) diffs.push(`max_entries ${info.maxEntries} ≠ ${spec.maxEntries}`);
  if ((info.flags & COMPARED_FLAGS) !== (spec.flags & COMPARED_FLAGS)) diffs.push(`flags 0x${info.flags.toString(16)} ≠ 0x${spec.flags.toString(16)}`);
  return diffs.length > 0 ? diffs.join(', ') : undefined;
}

export interface CreatedMap {
  handle: MapHandle;
  /** True when an existing pin was reused (so it must not be initialised again). */
  reused: boolean;
}

/** Create (or reuse by pin) the map of `spec`, initialise global data, freeze .rodata. */
export function createMap(spec: MapSpec, o: CreateMapOptions): CreatedMap {
  const pinPath = spec.pinning === Pinning.BY_NAME ? o.pinPath : undefined;
  if (pinPath) {
    const existing = openPinned(pinPath);
    if (existing) {
      const info = mapInfo(existing);
      const why = incompatibility(spec, info);
      if (why) {
        existing.close();
        throw new LoaderError(`pinned map ${pinPath} is incompatible (${why}); remove it (rm ${pinPath}) or rename the map`);
      }
      return { handle: new MapHandle(spec.name, existing, info, o.btf, spec.keyTypeId, spec.valueTypeId, spec, pinPath), reused: true };
    }
  }
  const withBtf = o.btfFd !== undefined && (spec.keyTypeId !== 0 || spec.valueTypeId !== 0);
  const fd = mapCreate({
    type: spec.type,
    keySize: spec.keySize,
    valueSize: spec.valueSize,
    maxEntries: spec.maxEntries,
    flags: spec.flags,
    name: o.kernelName,
    btfFd: withBtf ? o.btfFd : undefined,
    btfKeyTypeId: withBtf ? spec.keyTypeId : 0,
    btfValueTypeId: withBtf ? spec.valueTypeId : 0,
  });
  try {
    const info = mapInfo(fd);
    const handle = new MapHandle(spec.name, fd, info, withBtf ? o.btf : undefined, withBtf ? spec.keyTypeId : 0, withBtf ? spec.valueTypeId : 0, spec);
    if (spec.initialValue && spec.initialValue.some((b) => b !== 0)) {
      const key = Buffer.alloc(4);
      mapUpdate(fd, key, padTo(spec.initialValue, spec.valueSize));
    }
    if (spec.readOnly) mapFreeze(fd);
    if (pinPath) pin(fd, pinPath), (handle.pinnedAt = pinPath);
    return { handle, reused: false };
  } catch (e) {
    fd.close();
    throw e;
  }
}


/** An fd for the object pinned at `path`, or null when nothing is pinned there. */
export function openPinned(path: string): FD | null {
  try {
    return objGet(path);
  } catch (e) {
    if (e instanceof BpfError && e.code === 'ENOENT') return null;
    throw e;
  }
}

/** Pin, creating the directory first (bpffs allows mkdir). */
export function pin(fd: FD, path: string): void {
  if (!syscallOverridden()) mkdirSync(dirname(path), { recursive: true });
  objPin(fd, path);
}
