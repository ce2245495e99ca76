// The SaStore that writes the ESP engine's maps (engine/maps.ts): encrypt_sa for egress,
// ingress_sa for ingress, ghash_tables for the per-key GHASH tables, and sa_meta (this module's own
// map) for what the engine does not need but `keys list` shows: the Cilium key ID and when the SA
// was installed. Layouts come from the DSL descriptors, so they are declared once.
//
// The maps are reached through `MapAccess`, with two adapters: kernel maps (an fd, from the
// loader or from a pin) and VM maps (runtime/vm). Everything above the adapters is the same code.
//
// Invariants, in the order install() keeps them:
//   1. A key is never installed twice on egress: the new SA's sequence counter starts at 0, so the
//      same key (with the same salt) would repeat GCM nonces. Equal key bytes are refused.
//   2. The GHASH table for a key is written to a slot no installed SA uses, before the SA that
//      names it; a slot is reused only by an SA with the same key (same table).
//   3. The SA itself is ONE map update (BPF_ANY: an atomic replace for the datapath). There is no
//      moment without an SA for the node pair, and none with half an SA.
//   4. Slots left unused by a replace or remove are wiped (zeroed) by the next install or remove,
//      not at once: a packet that read the old SA just before the swap may still be using it.
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import { dirname, join } from 'node:path';
import { array, encode, type StructType, struct, u8, u32, u64, view } from '../../compiler/dsl/index.ts';
import {
  DF_CLEAR,
  DF_COPY,
  DF_SET,
  EncryptKey,
  EncryptSa,
  IngressKey,
  IngressSa,
  MAX_KEYS,
  MODE_TRANSPORT,
  MODE_TUNNEL,
  encrypt_sa,
  ghash_tables,
  ingress_sa,
} from '../../engine/maps.ts';
import { GHASH_TABLE_BYTES, ghashTableBytes, ghashTableForKey } from '../esp/ghash.ts';
import { BpfError } from '../sys/errors.ts';
import { type FD, type FdLike } from '../sys/fd.ts';
import { mapInfo } from '../sys/info.ts';
import { mapCreate, mapDelete, mapKeys, mapLookup, mapUpdate } from '../sys/map.ts';
import { objGet, objPin } from '../sys/obj.ts';
import { BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH } from '../sys/constants.ts';
import { type VmMap, createMap as createVmMap } from '../vm/maps.ts';
import { type NodeDirectory, ipv4ToNumber, numberToIpv4 } from './nodes.ts';
import { AEAD_GCM, type IcvBits, type SaEntry, type SaId, Secret, type SecurityAssociation, describeSa } from './sa.ts';
import type { SaStore } from './store.ts';

// ---------------------------------------------------------------------------------------------
// Map access

/** What the store needs of a map: the bpf() element commands on exact-size Buffers. */
export interface MapAccess {
  lookup(key: Buffer): Buffer | null;
  update(key: Buffer, value: Buffer, flags?: number): void;
  /** False when the key was absent. */
  delete(key: Buffer): boolean;
  keys(): Iterable<Buffer>;
}

/** A kernel map by fd (from runtime/loader's MapHandle.fd, mapCreate, or objGet on a pin). */
export function kernelMapAccess(fd: FdLike, keySize: number, valueSize: number): MapAccess {
  return {
    lookup: (key) => mapLookup(fd, key, valueSize),
    update: (key, value, flags = 0) => mapUpdate(fd, key, value, flags),
    delete: (key) => mapDelete(fd, key),
    keys: () => mapKeys(fd, keySize),
  };
}

/** A VM map (runtime/vm): the same userspace face, `undefined` becomes null. */
export function vmMapAccess(map: VmMap): MapAccess {
  return {
    lookup: (key) => map.lookup(key) ?? null,
    update: (key, value, flags = 0) => map.update(key, value, flags),
    delete: (key) => map.delete(key),
    keys: () => map.keys(),
  };
}

// ---------------------------------------------------------------------------------------------
// sa_meta: the key runtime's bookkeeping beside the engine's maps (no key material).

export const SA_META_EGRESS = 1;
export const SA_META_INGRESS = 2;
/** 0 direction (u32: 1 egress, 2 ingress), 4 mapKey (the encrypt_sa or ingress_sa key, zero-padded). 24 bytes. */
export const SaMetaKey = struct({ direction: u32, mapKey: array(u8, EncryptKey.size) }, { name: 'sa_meta_key' });
/** 0 createdAt (u64, ms since the epoch), 8 keyId (u32, the Cilium key ID), 12 pad. 16 bytes. */
export const SaMeta = struct({ createdAt: u64, keyId: u32 }, { name: 'sa_meta' });

/** Egress map key kind for per-node-pair SAs: selector bytes 0..3 = destination node (be32). */
export const ENCRYPT_KEY_KIND_NODE = 2;

/** The maps this store writes, with their kernel shapes (taken from the DSL declarations). */
export interface KeyMapSpec {
  name: 'encrypt_sa' | 'ingress_sa' | 'ghash_tables' | 'sa_meta';
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}
export const KEY_MAPS: readonly KeyMapSpec[] = [
  { name: 'encrypt_sa', type: BPF_MAP_TYPE_HASH, keySize: EncryptKey.size, valueSize: EncryptSa.size, maxEntries: encrypt_sa.options.maxEntries },
  { name: 'ingress_sa', type: BPF_MAP_TYPE_HASH, keySize: IngressKey.size, valueSize: IngressSa.size, maxEntries: ingress_sa.options.maxEntries },
  { name: 'ghash_tables', type: BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: ghash_tables.options.value.size, maxEntries: ghash_tables.options.maxEntries },
  {
    name: 'sa_meta',
    type: BPF_MAP_TYPE_HASH,
    keySize: SaMetaKey.size,
    valueSize: SaMeta.size,
    maxEntries: encrypt_sa.options.maxEntries + ingress_sa.options.maxEntries,
  },
];
const specOf = (name: KeyMapSpec['name']): KeyMapSpec => KEY_MAPS.find((m) => m.name === name)!;

export interface EngineMaps {
  encryptSa: MapAccess;
  ingressSa: MapAccess;
  ghashTables: MapAccess;
  saMeta: MapAccess;
}

/** Fresh VM maps with the engine's shapes (tests, the VM demo). */
export function createVmKeyMaps(): { maps: EngineMaps; vm: Record<KeyMapSpec['name'], VmMap> } {
  const vm = Object.fromEntries(KEY_MAPS.map((s) => [s.name, createVmMap({ ...s })])) as Record<KeyMapSpec['name'], VmMap>;
  return {
    vm,
    maps: { encryptSa: vmMapAccess(vm.encrypt_sa), ingressSa: vmMapAccess(vm.ingress_sa), ghashTables: vmMapAccess(vm.ghash_tables), saMeta: vmMapAccess(vm.sa_meta) },
  };
}

/** Kernel maps by fd → MapAccess, sizes from KEY_MAPS. */
export function kernelKeyMaps(fds: Record<KeyMapSpec['name'], FdLike>): EngineMaps {
  const acc = (n: KeyMapSpec['name']) => kernelMapAccess(fds[n], specOf(n).keySize, specOf(n).valueSize);
  return { encryptSa: acc('encrypt_sa'), ingressSa: acc('ingress_sa'), ghashTables: acc('ghash_tables'), saMeta: acc('sa_meta') };
}

/** One new kernel map with the engine's shape (BPF_MAP_CREATE). */
export function createKernelKeyMap(name: KeyMapSpec['name']): FD {
  const s = specOf(name);
  return mapCreate({ type: s.type, keySize: s.keySize, valueSize: s.valueSize, maxEntries: s.maxEntries, name: s.name });
}

// ---------------------------------------------------------------------------------------------
// Pinned key-bearing maps: 0600, in a 0700 directory, and refused when others could open them.

export const KEY_MAP_PIN_MODE = 0o600;

/**
 * Pin the key-bearing maps under `dir` (bpffs) and chmod each pin 0600: BPF_OBJ_GET checks the
 * pin's permissions, so only the owner (root) can open a map holding key material. sa_meta is
 * created when not given. Returns the paths.
 */
export function pinKeyMaps(dir: string, fds: Partial<Record<KeyMapSpec['name'], FdLike>> & Pick<Record<KeyMapSpec['name'], FdLike>, 'encrypt_sa' | 'ingress_sa' | 'ghash_tables'>): string[] {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const paths: string[] = [];
  for (const s of KEY_MAPS) {
    const path = join(dir, s.name);
    let fd = fds[s.name];
    let created: FD | undefined;
    if (fd === undefined) fd = created = createKernelKeyMap(s.name);
    try {
      objPin(fd, path);
      chmodSync(path, KEY_MAP_PIN_MODE);
    } finally {
      created?.close();
    }
    paths.push(path);
  }
  return paths;
}

function pinnedModeError(path: string, mode: number): string | undefined {
  if ((mode & 0o077) === 0) return undefined;
  return `pinned map ${path}: mode ${(mode & 0o777).toString(8)} lets other users open key material; chmod 600 it`;
}

/** Where a map is pinned under `dir`: `dir/NAME` (pinKeyMaps) or `dir/maps/NAME` (the loader's pinMaps). */
function findPin(dir: string, name: string): { path: string; mode: number } | undefined {
  for (const path of [join(dir, name), join(dir, 'maps', name)]) {
    try {
      return { path, mode: statSync(path).mode };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`pinned map ${path}: ${(err as Error).message}`);
    }
  }
  return undefined;
}

export interface PinnedKeyMaps {
  maps: EngineMaps;
  paths: Record<KeyMapSpec['name'], string>;
  close(): void;
}

/**
 * Open the pinned key-bearing maps. Refuses pins that group or others could open, and maps whose
 * shape is not the engine's (an engine built from another layout). sa_meta is created and pinned
 * 0600 when the engine's loader pinned only its own maps.
 */
export function openPinnedKeyMaps(dir: string): PinnedKeyMaps {
  const fds: FD[] = [];
  const paths = {} as Record<KeyMapSpec['name'], string>;
  try {
    for (const s of KEY_MAPS) {
      let pin = findPin(dir, s.name);
      if (!pin && s.name === 'sa_meta') {
        const fd = createKernelKeyMap('sa_meta');
        const path = join(dirname(paths.encrypt_sa), s.name);
        try {
          objPin(fd, path);
          chmodSync(path, KEY_MAP_PIN_MODE);
        } finally {
          fd.close();
        }
        pin = { path, mode: statSync(path).mode };
      }
      if (!pin) throw new Error(`engine maps not pinned under ${dir} (no ${s.name}) — load the engine first`);
      const loose = pinnedModeError(pin.path, pin.mode);
      if (loose) throw new Error(loose);
      let fd: FD;
      try {
        fd = objGet(pin.path);
      } catch (err) {
        throw new Error(`pinned map ${pin.path}: ${err instanceof BpfError ? err.code : (err as Error).message.split('\n')[0]}`);
      }
      fds.push(fd);
      const info = mapInfo(fd);
      if (info.type !== s.type || info.keySize !== s.keySize || info.valueSize !== s.valueSize)
        throw new Error(
          `pinned map ${pin.path}: type ${info.type}, key ${info.keySize} B, value ${info.valueSize} B; the engine layout (engine/maps.ts) wants type ${s.type}, key ${s.keySize} B, value ${s.valueSize} B`,
        );
      paths[s.name] = pin.path;
    }
  } catch (err) {
    for (const fd of fds) fd.close();
    throw err;
  }
  const [e, i, g, m] = fds;
  return { maps: kernelKeyMaps({ encrypt_sa: e, ingress_sa: i, ghash_tables: g, sa_meta: m }), paths, close: () => fds.forEach((fd) => fd.close()) };
}

// ---------------------------------------------------------------------------------------------
// The store

export type OuterMode = 'tunnel' | 'transport';
export type DfPolicy = 'copy' | 'set' | 'clear';

/** How egress packets leave: the outer header and the device binding. */
export interface OuterOptions {
  /** Default tunnel (a new outer IPv4 header between the node addresses). */
  mode?: OuterMode;
  /** Outer TTL, default 64. */
  ttl?: number;
  /** Outer DF bit: copied from the inner header (default), always set, or always clear. */
  df?: DfPolicy;
  /** The bound device does ESP itself (only mark and redirect); default false. */
  offload?: boolean;
}

export interface EngineSaStoreOptions extends OuterOptions {
  maps: EngineMaps;
  nodes: NodeDirectory;
  /** This node's name, as the SAs carry it in `localNode`. */
  localNode: string;
  /**
   * Called when a key gets a new slot, after its GHASH table is written and before any SA names
   * the slot: the engine runtime creates the slot's bpf_crypto context here (crypto_keys +
   * the crypto_setup syscall program), so the datapath never sees an SA without its AES context.
   * `key` is only valid during the call.
   */
  onKeySlot?: (slot: number, key: Buffer) => void;
}

const MODES: Record<OuterMode, number> = { tunnel: MODE_TUNNEL, transport: MODE_TRANSPORT };
const DFS: Record<DfPolicy, number> = { copy: DF_COPY, set: DF_SET, clear: DF_CLEAR };
/** RFC 4303 without ESN: the 32-bit sequence number must not cycle. */
const SEQ_LIMIT_32 = 0xffff_ffffn;

type StructLike = StructType<any>;
/** The bytes of one array field of a struct value, by its declared offset. */
function fieldBytes(type: StructLike, value: Buffer, name: string): Buffer {
  const f = type.layout.find((x) => x.name === name);
  if (!f) throw new Error(`${type.name} has no field ${name}`);
  return value.subarray(f.offset, f.offset + f.type.size);
}
const toBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const u32Key = (n: number): Buffer => toBuffer(encode(u32, n));

interface Installed {
  slot: number;
  /** A view into `value`: compare, never keep. */
  key: Buffer;
  value: Buffer;
}

/** Constant-time comparison of a Secret with key bytes read back from a map. */
function sameKey(secret: Secret, bytes: Buffer): boolean {
  return bytes.length === secret.length && timingSafeEqual(secret.bytes(), bytes);
}

export class EngineSaStore implements SaStore {
  readonly #maps: EngineMaps;
  readonly #onKeySlot?: (slot: number, key: Buffer) => void;
  readonly #nodes: NodeDirectory;
  readonly #local: string;
  readonly #outer: Required<OuterOptions>;

  constructor(o: EngineSaStoreOptions) {
    this.#onKeySlot = o.onKeySlot;
    this.#maps = o.maps;
    this.#nodes = o.nodes;
    this.#local = o.localNode;
    this.#outer = { mode: o.mode ?? 'tunnel', ttl: o.ttl ?? 64, df: o.df ?? 'copy', offload: o.offload ?? false };
    if (!MODES[this.#outer.mode]) throw new Error(`outer mode "${this.#outer.mode}": expected tunnel or transport`);
    if (DFS[this.#outer.df] === undefined) throw new Error(`outer DF "${this.#outer.df}": expected copy, set or clear`);
    if (!Number.isInteger(this.#outer.ttl) || this.#outer.ttl < 1 || this.#outer.ttl > 255) throw new Error(`outer TTL ${this.#outer.ttl}: expected 1–255`);
    this.#nodes.resolve(this.#local); // the local node must have an address
  }

  // --- map keys

  #egressKey(remoteNode: string): Buffer {
    const selector = Buffer.alloc(16);
    selector.writeUInt32BE(ipv4ToNumber(this.#nodes.resolve(remoteNode).ip), 0);
    return toBuffer(encode(EncryptKey, { kind: ENCRYPT_KEY_KIND_NODE, selector }));
  }
  #ingressKey(localNode: string, remoteNode: string, spi: number): Buffer {
    const src = ipv4ToNumber(this.#nodes.resolve(remoteNode).ip);
    const dst = ipv4ToNumber(this.#nodes.resolve(localNode).ip);
    return toBuffer(encode(IngressKey, { spi, src, dst }));
  }
  #metaKey(direction: number, mapKey: Buffer): Buffer {
    return toBuffer(encode(SaMetaKey, { direction, mapKey }));
  }

  #checkLocal(sa: SaId): void {
    if (sa.localNode !== this.#local) throw new Error(`${describeSa(sa)}: this store writes the maps of node ${this.#local}, not ${sa.localNode}`);
  }

  // --- GHASH table slots

  /** Every slot an installed SA names, with that SA's key; wipe the values when done (#forget). */
  #slotsInUse(): Installed[] {
    const out: Installed[] = [];
    for (const [map, type] of [
      [this.#maps.encryptSa, EncryptSa],
      [this.#maps.ingressSa, IngressSa],
    ] as const) {
      for (const k of map.keys()) {
        const v = map.lookup(k);
        if (!v) continue;
        const sa = view(type, v) as { keyIndex: number; keyLength: number };
        out.push({ slot: sa.keyIndex, key: fieldBytes(type, v, 'key').subarray(0, sa.keyLength), value: v });
      }
    }
    return out;
  }

  #forget(inUse: Installed[]): void {
    for (const x of inUse) x.value.fill(0);
  }

  /** Zero the tables of slots no SA names (key material must not linger; invariant 4). */
  #wipeUnused(inUse: Installed[]): void {
    const used = new Set(inUse.map((x) => x.slot));
    for (let slot = 1; slot < MAX_KEYS; slot++) {
      if (used.has(slot)) continue;
      const t = this.#maps.ghashTables.lookup(u32Key(slot));
      if (t && t.some((b) => b !== 0)) this.#maps.ghashTables.update(u32Key(slot), Buffer.alloc(GHASH_TABLE_BYTES));
      t?.fill(0);
    }
  }

  /** A slot whose table is this key's: one already holding it, else a free one, written now (invariant 2). */
  #slotFor(key: Secret, inUse: Installed[]): number {
    const same = inUse.find((x) => sameKey(key, x.key));
    if (same) return same.slot;
    const used = new Set(inUse.map((x) => x.slot));
    let slot = 1; // slot 0 stays empty: a zeroed SA value must not find a table
    while (slot < MAX_KEYS && used.has(slot)) slot++;
    if (slot >= MAX_KEYS) throw new Error(`no free GHASH table slot: ${MAX_KEYS - 1} distinct keys are installed`);
    const m = ghashTableForKey(key.bytes());
    const table = toBuffer(ghashTableBytes(m));
    m.fill(0n);
    try {
      this.#maps.ghashTables.update(u32Key(slot), table);
    } finally {
      table.fill(0);
    }
    if (this.#onKeySlot) {
      const key_ = Buffer.from(key.bytes());
      try {
        this.#onKeySlot(slot, key_);
      } finally {
        key_.fill(0);
      }
    }
    return slot;
  }

  // --- SaStore

  async install(sa: SecurityAssociation): Promise<void> {
    this.#checkLocal(sa);
    const what = describeSa(sa);
    if (sa.algorithm !== AEAD_GCM) throw new Error(`${what}: algorithm ${sa.algorithm} is not supported by the engine (only ${AEAD_GCM})`);
    if (sa.key.length !== 16 && sa.key.length !== 32) throw new Error(`${what}: AES key is ${sa.key.length} bytes; the engine takes 16 or 32`);
    if (sa.salt.length !== 4) throw new Error(`${what}: salt is ${sa.salt.length} bytes, expected 4`);
    if (![64, 96, 128].includes(sa.icvBits)) throw new Error(`${what}: ICV ${sa.icvBits} bits, expected 64, 96 or 128`);
    if (!Number.isInteger(sa.spi) || sa.spi < 1 || sa.spi > 0xffff_ffff) throw new Error(`${what}: SPI must be 1–4294967295`);
    if (!Number.isInteger(sa.keyIndex) || sa.keyIndex < 0 || sa.keyIndex > 0xffff_ffff) throw new Error(`${what}: key ID ${sa.keyIndex} is not a u32`);

    const egress = sa.direction === 'egress';
    const map = egress ? this.#maps.encryptSa : this.#maps.ingressSa;
    const mapKey = egress ? this.#egressKey(sa.remoteNode) : this.#ingressKey(sa.localNode, sa.remoteNode, sa.spi);
    const inUse = this.#slotsInUse();
    this.#wipeUnused(inUse);

    if (egress) {
      // Invariant 1: a new egress SA starts at seq 0, so its key must be new to encrypt_sa.
      for (const k of this.#maps.encryptSa.keys()) {
        const v = this.#maps.encryptSa.lookup(k);
        if (!v) continue;
        const keyLength = (view(EncryptSa, v) as { keyLength: number }).keyLength;
        const same = sameKey(sa.key, fieldBytes(EncryptSa, v, 'key').subarray(0, keyLength));
        const spi = (view(EncryptSa, v) as { spi: number }).spi;
        v.fill(0);
        if (same) {
          this.#forget(inUse);
          const where = k.equals(mapKey) ? 'in this slot already' : `for another node pair (spi ${spi})`;
          throw new Error(`${what}: refused: this key is installed ${where}; an egress SA restarts its sequence numbers, so reusing a key would repeat GCM nonces`);
        }
      }
    } else {
      const old = map.lookup(mapKey);
      if (old) {
        const keyLength = (view(IngressSa, old) as { keyLength: number }).keyLength;
        const same = sameKey(sa.key, fieldBytes(IngressSa, old, 'key').subarray(0, keyLength));
        old.fill(0);
        if (same) {
          this.#forget(inUse);
          throw new Error(`${what}: refused: this key is installed in this slot already; installing it again would reset its replay window`);
        }
      }
    }

    let slot: number;
    try {
      slot = this.#slotFor(sa.key, inUse);
    } finally {
      this.#forget(inUse);
    }

    const key = Buffer.alloc(32);
    sa.key.bytes().copy(key);
    const common = { key, salt: sa.salt.bytes(), keyLength: sa.key.length, icvLength: sa.icvBits / 8, keyIndex: slot, esn: 0 };
    let value: Buffer;
    if (egress) {
      const local = this.#nodes.resolve(sa.localNode);
      const remote = this.#nodes.resolve(sa.remoteNode);
      value = toBuffer(
        encode(EncryptSa, {
          ...common,
          seq: 1n, // the next sequence number to send: RFC 4303 §3.3.3 starts at 1
          seqLimit: SEQ_LIMIT_32,
          packets: 0n,
          bytes: 0n,
          spi: sa.spi,
          outerSrc: ipv4ToNumber(local.ip),
          outerDst: ipv4ToNumber(remote.ip),
          ifindex: remote.ifindex ?? 0,
          mode: MODES[this.#outer.mode],
          offload: this.#outer.offload ? 1 : 0,
          ttl: this.#outer.ttl,
          df: DFS[this.#outer.df],
          dropped: 0n,
        }),
      );
    } else {
      // Window, top and counters zero: a fresh SA has seen no sequence number yet.
      // mode: what the SA opens (tunnel: next header 4 only; transport: the datagram's own L4).
      value = toBuffer(encode(IngressSa, { ...common, top: 0n, window: [], packets: 0n, bytes: 0n, replayDrops: 0n, icvDrops: 0n, mode: MODES[this.#outer.mode] }));
    }
    key.fill(0);

    const metaKey = this.#metaKey(egress ? SA_META_EGRESS : SA_META_INGRESS, mapKey);
    const previousMeta = this.#maps.saMeta.lookup(metaKey);
    this.#maps.saMeta.update(metaKey, toBuffer(encode(SaMeta, { createdAt: BigInt(sa.createdAt), keyId: sa.keyIndex })));
    try {
      map.update(mapKey, value); // invariant 3: the one write the datapath sees
    } catch (err) {
      if (previousMeta) this.#maps.saMeta.update(metaKey, previousMeta);
      else this.#maps.saMeta.delete(metaKey);
      throw new Error(`${what}: ${egress ? 'encrypt_sa' : 'ingress_sa'} update failed: ${(err as Error).message.split('\n')[0]}`);
    } finally {
      value.fill(0);
    }
  }

  async remove(id: SaId): Promise<boolean> {
    if (id.localNode !== this.#local) return false;
    const egress = id.direction === 'egress';
    const map = egress ? this.#maps.encryptSa : this.#maps.ingressSa;
    const mapKey = egress ? this.#egressKey(id.remoteNode) : this.#ingressKey(id.localNode, id.remoteNode, id.spi);
    const inUse = this.#slotsInUse();
    this.#forget(inUse);
    this.#wipeUnused(inUse);
    if (!map.delete(mapKey)) return false;
    this.#maps.saMeta.delete(this.#metaKey(egress ? SA_META_EGRESS : SA_META_INGRESS, mapKey));
    return true;
  }

  async list(): Promise<SaEntry[]> {
    const out: SaEntry[] = [];
    const meta = (direction: number, k: Buffer) => {
      const m = this.#maps.saMeta.lookup(this.#metaKey(direction, k));
      return m ? (view(SaMeta, m) as { createdAt: bigint; keyId: number }) : undefined;
    };
    for (const k of this.#maps.encryptSa.keys()) {
      const key = view(EncryptKey, k) as { kind: number };
      if (key.kind !== ENCRYPT_KEY_KIND_NODE) continue; // policy-chosen keys of other kinds are not node-pair SAs
      const v = this.#maps.encryptSa.lookup(k);
      if (!v) continue;
      const sa = view(EncryptSa, v) as { spi: number; keyLength: number; icvLength: number; keyIndex: number; packets: bigint; bytes: bigint };
      const m = meta(SA_META_EGRESS, k);
      out.push({
        direction: 'egress',
        localNode: this.#local,
        remoteNode: this.#nodes.nameOf(numberToIpv4(fieldBytes(EncryptKey, k, 'selector').readUInt32BE(0))),
        spi: sa.spi,
        keyIndex: m ? m.keyId : sa.keyIndex,
        algorithm: AEAD_GCM,
        key: new Secret(fieldBytes(EncryptSa, v, 'key').subarray(0, sa.keyLength)),
        salt: new Secret(fieldBytes(EncryptSa, v, 'salt')),
        icvBits: (sa.icvLength * 8) as IcvBits,
        createdAt: m ? Number(m.createdAt) : 0,
        packets: sa.packets,
        bytes: sa.bytes,
      });
      v.fill(0);
    }
    const localIp = this.#nodes.resolve(this.#local).ip;
    for (const k of this.#maps.ingressSa.keys()) {
      const key = view(IngressKey, k) as { spi: number; src: number; dst: number };
      const v = this.#maps.ingressSa.lookup(k);
      if (!v) continue;
      const sa = view(IngressSa, v) as { keyLength: number; icvLength: number; keyIndex: number; packets: bigint; bytes: bigint };
      const m = meta(SA_META_INGRESS, k);
      const dst = numberToIpv4(key.dst);
      out.push({
        direction: 'ingress',
        localNode: dst === localIp ? this.#local : this.#nodes.nameOf(dst),
        remoteNode: this.#nodes.nameOf(numberToIpv4(key.src)),
        spi: key.spi,
        keyIndex: m ? m.keyId : sa.keyIndex,
        algorithm: AEAD_GCM,
        key: new Secret(fieldBytes(IngressSa, v, 'key').subarray(0, sa.keyLength)),
        salt: new Secret(fieldBytes(IngressSa, v, 'salt')),
        icvBits: (sa.icvLength * 8) as IcvBits,
        createdAt: m ? Number(m.createdAt) : 0,
        packets: sa.packets,
        bytes: sa.bytes,
      });
      v.fill(0);
    }
    return out;
  }
}
