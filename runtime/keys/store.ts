// The one interface through which the key runtime writes SAs. Everything above it (parsers,
// watchers, rotation, CLI) is backend-agnostic; three backends implement it:
//
//   MemorySaStore      — tests and `agent --backend memory`.
//   StateFileSaStore   — a JSON file (mode 0600) so one-shot CLI commands (`keys load`, `keys list`,
//                        `keys rotate`) share state until the engine's maps exist.
//   (to bind)          — pinned kernel maps through runtime/sys and VM maps through runtime/vm:
//                        install() = one BPF_MAP_UPDATE_ELEM into the encryption map (egress) or the
//                        ingress SA map (ingress); remove() = BPF_MAP_DELETE_ELEM; list() = iterate
//                        both maps and read the per-SA counters. Key-bearing pinned maps must be
//                        created with mode 0600.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { AEAD_GCM, type IcvBits, type SaEntry, type SaId, Secret, type SecurityAssociation, sameSlot } from './sa.ts';

export interface SaStore {
  /**
   * Insert, or replace the SA in the same slot (see `sameSlot`: egress has one slot per node pair,
   * ingress one per node pair and SPI). Replacing an egress SA must be a single atomic map update,
   * so the datapath never sees a node pair without a key (it would drop, fail-closed) or half a key.
   * A newly installed SA starts its sequence counter at zero, which is safe only because its key is
   * new: the key runtime never installs a key that is already in place (that would repeat nonces).
   */
  install(sa: SecurityAssociation): Promise<void>;
  /** Remove the SA in that slot; false if there was none. */
  remove(id: SaId): Promise<boolean>;
  /** Every SA with its counters. */
  list(): Promise<SaEntry[]>;
}

function copyEntry(e: SaEntry): SaEntry {
  return { ...e };
}

export class MemorySaStore implements SaStore {
  protected entries: SaEntry[] = [];

  async install(sa: SecurityAssociation): Promise<void> {
    const i = this.entries.findIndex((e) => sameSlot(e, sa));
    const entry: SaEntry = { ...sa, packets: 0n, bytes: 0n };
    if (i >= 0) this.entries[i] = entry;
    else this.entries.push(entry);
  }

  async remove(id: SaId): Promise<boolean> {
    const i = this.entries.findIndex((e) => sameSlot(e, id));
    if (i < 0) return false;
    this.entries.splice(i, 1);
    return true;
  }

  async list(): Promise<SaEntry[]> {
    return this.entries.map(copyEntry);
  }

  /** Synchronous lookups for a datapath model (tests): the SA the engine would use. */
  egressFor(localNode: string, remoteNode: string): SaEntry | undefined {
    return this.entries.find((e) => e.direction === 'egress' && e.localNode === localNode && e.remoteNode === remoteNode);
  }
  ingressFor(localNode: string, remoteNode: string, spi: number): SaEntry | undefined {
    return this.entries.find(
      (e) => e.direction === 'ingress' && e.localNode === localNode && e.remoteNode === remoteNode && e.spi === spi,
    );
  }
  /** What the datapath's counters would do: count a packet against an SA. */
  count(id: SaId, bytes: number): void {
    const e = this.entries.find((x) => sameSlot(x, id));
    if (e) {
      e.packets += 1n;
      e.bytes += BigInt(bytes);
    }
  }
}

interface StoredSa extends Omit<SaEntry, 'key' | 'salt' | 'packets' | 'bytes'> {
  key: string;
  salt: string;
  packets: string;
  bytes: string;
}

/**
 * SAs persisted in a JSON file, so separate CLI invocations see the same state. The file holds key
 * bytes, so it is written 0600 through a temp file and rename (no reader ever sees half a file, and
 * the key never lands in a file with looser permissions).
 */
export class StateFileSaStore extends MemorySaStore {
  constructor(readonly path: string) {
    super();
    if (existsSync(path)) {
      const mode = statSync(path).mode & 0o777;
      if (mode & 0o077) throw new Error(`state file ${path}: mode ${mode.toString(8)} lets others read key material; chmod 600 it`);
      let doc: { version: number; sas: StoredSa[] };
      try {
        doc = JSON.parse(readFileSync(path, 'utf8'));
      } catch (err) {
        throw new Error(`state file ${path}: not valid JSON (${(err as Error).message.split('\n')[0]})`);
      }
      if (doc?.version !== 1 || !Array.isArray(doc.sas)) throw new Error(`state file ${path}: unknown format`);
      this.entries = doc.sas.map((s) => ({
        ...s,
        algorithm: AEAD_GCM,
        icvBits: s.icvBits as IcvBits,
        key: new Secret(Buffer.from(s.key, 'base64')),
        salt: new Secret(Buffer.from(s.salt, 'base64')),
        packets: BigInt(s.packets),
        bytes: BigInt(s.bytes),
      }));
    }
  }

  private save(): void {
    const sas: StoredSa[] = this.entries.map((e) => ({
      ...e,
      key: e.key.bytes().toString('base64'),
      salt: e.salt.bytes().toString('base64'),
      packets: e.packets.toString(),
      bytes: e.bytes.toString(),
    }));
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    // O_EXCL ('wx'): never follow a planted symlink or reuse someone else's file for key bytes.
    writeFileSync(tmp, `${JSON.stringify({ version: 1, sas }, null, 1)}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.path);
  }

  override async install(sa: SecurityAssociation): Promise<void> {
    await super.install(sa);
    this.save();
  }

  override async remove(id: SaId): Promise<boolean> {
    const removed = await super.remove(id);
    if (removed) this.save();
    return removed;
  }
}
