// The key manager: turns key generations (a Cilium global key, or SPIRE SVIDs) into per-node-pair
// SAs in an SaStore, and rotates them without dropping a packet or sending one in clear.
//
// A rotation to a new generation runs in three phases, per peer:
//   1. Ingress first: install the new ingress SA (new SPI) beside the old one, so whichever key the
//      peer sends with, this node can decrypt it. Then announce it (`onIngressReady`), so peers may
//      switch to the new key toward us.
//   2. Egress switch: replace the peer's egress SA with the new key in one map update, but only once
//      the peer can decrypt it. With `egressGate: 'peer-ack'` that is when the peer has announced
//      the new SPI (`peerReady`); with `'immediate'` it is right after phase 1 (for one-shot CLI use
//      and sources where every node is known to load keys at the same time).
//   3. Grace: the old ingress SAs stay for `graceMs` (default 5 min, as Cilium's
//      ipsec-key-rotation-duration) after the last egress switch, for packets in flight and peers
//      that switch late; then they are removed. Old egress SAs need no removal: the switch replaced
//      them.
// Every store write happens after the new generation has been fully validated and derived, so a
// bad input never leaves the store half-updated.
import { checkUpdate, type GlobalKey, type InstalledKeys, parseKeyFile, sameKey } from './keyfile.ts';
import { derivePairKey, type NodeEndpoint } from './derive.ts';
import { type Algorithm, type IcvBits, type SaId, type Secret, type SecurityAssociation, describeSa, saFingerprint, sameSlot } from './sa.ts';
import type { SaStore } from './store.ts';

export const DEFAULT_GRACE_MS = 5 * 60_000;

/** A source of per-node-pair keys. */
export interface KeyGeneration {
  /** For logs: "key ID 4", "SVID 3f2a…". Never key material. */
  label: string;
  /** The Cilium key ID, 0 where there is none (SPIRE). */
  keyIndex: number;
  algorithm: Algorithm;
  icvBits: IcvBits;
  /** The SPI used between this node and `peer`; both directions use the same SPI. */
  spiFor(peer: NodeEndpoint): number;
  pairKey(sender: NodeEndpoint, receiver: NodeEndpoint): { key: Secret; salt: Secret };
}

export function globalKeyGeneration(global: GlobalKey): KeyGeneration {
  return {
    label: `key ID ${global.spi}`,
    keyIndex: global.spi,
    algorithm: global.algorithm,
    icvBits: global.icvBits,
    spiFor: () => global.spi,
    pairKey: (sender, receiver) => derivePairKey(global, sender, receiver),
  };
}

/** Timers through an interface, so tests drive rotation with a fake clock. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.(); // a pending removal must not keep a finished CLI process alive
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** One log event. Fields are identifiers, SPIs and fingerprints only: never key bytes. */
export type KeyLog = (event: string, fields?: Record<string, string | number>) => void;

export interface KeyManagerOptions {
  store: SaStore;
  local: NodeEndpoint;
  peers?: NodeEndpoint[];
  graceMs?: number;
  egressGate?: 'immediate' | 'peer-ack';
  clock?: Clock;
  log?: KeyLog;
  /** Called after this node's ingress SAs for a generation are in place (phase 1). */
  onIngressReady?: (spiByPeer: Map<string, number>) => void;
}

interface Retiring {
  label: string;
  keyIndex: number;
  ids: SaId[];
  /** Set once every peer's egress has left this generation. */
  removeAt?: number;
}

export class KeyManager {
  readonly store: SaStore;
  readonly local: NodeEndpoint;
  readonly graceMs: number;
  private readonly gate: 'immediate' | 'peer-ack';
  private readonly clock: Clock;
  private readonly log: KeyLog;
  private readonly onIngressReady?: (spiByPeer: Map<string, number>) => void;
  private readonly peers = new Map<string, NodeEndpoint>();
  private current?: { generation: KeyGeneration; global?: GlobalKey; ingress: SaId[]; restored?: { egress: SecurityAssociation } };
  private retiring: Retiring[] = [];
  /** Peers whose egress still uses an older generation, and the SPI they must ack. */
  private pendingEgress = new Map<string, number>();
  /** SPIs peers have announced, possibly before this node had the key. */
  private acked = new Map<string, number>();
  private timer: unknown;
  /** Store writes are serialised: a rotation never interleaves with another change. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: KeyManagerOptions) {
    this.store = opts.store;
    this.local = opts.local;
    this.graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
    if (!(this.graceMs >= 0)) throw new Error(`grace period must be ≥ 0 ms, got ${this.graceMs}`);
    this.gate = opts.egressGate ?? 'immediate';
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? (() => {});
    this.onIngressReady = opts.onIngressReady;
    for (const p of opts.peers ?? []) this.peers.set(p.id, p);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /** Key IDs in use, for Cilium's "a new key needs a higher key ID" check. */
  installedKeys(): InstalledKeys {
    const c = this.current;
    const retiring = this.retiring.map((r) => r.keyIndex).filter((k) => k > 0);
    if (!c || c.generation.keyIndex === 0) return { retiring };
    return {
      current: {
        spi: c.generation.keyIndex,
        sameAs: (key) => {
          if (c.global) return sameKey(c.global, key);
          // Restored from the store, the global key is not known; the same global key derives the
          // same pair key, so compare one derived SA with the installed one.
          const sa = c.restored!.egress;
          const peer = this.peers.get(sa.remoteNode) ?? { id: sa.remoteNode, bootId: '' };
          const derived = derivePairKey(key, this.local, peer);
          return key.spi === sa.keyIndex && derived.key.equals(sa.key) && derived.salt.equals(sa.salt) && key.icvBits === sa.icvBits;
        },
      },
      retiring,
    };
  }

  /**
   * Take over what a previous run left in the store (an agent restart, or the next one-shot CLI
   * command): the newest egress generation is current, older ingress SAs are retiring. Their grace
   * period runs from the current egress SAs' creation, i.e. when egress last switched.
   */
  restore(): Promise<void> {
    return this.serial(async () => {
      const mine = (await this.store.list()).filter((e) => e.localNode === this.local.id);
      const egress = mine.filter((e) => e.direction === 'egress').sort((x, y) => y.createdAt - x.createdAt);
      if (egress.length === 0) return;
      const newest = egress[0];
      for (const e of mine) if (!this.peers.has(e.remoteNode)) this.peers.set(e.remoteNode, { id: e.remoteNode, bootId: '' });
      // Per peer, the egress SA says which SPI is in force (SPIRE SPIs differ per pair).
      const egressOf = new Map(egress.map((e) => [e.remoteNode, e]));
      const generation: KeyGeneration = {
        label: newest.keyIndex ? `key ID ${newest.keyIndex}` : `SPI ${newest.spi}`,
        keyIndex: newest.keyIndex,
        algorithm: newest.algorithm,
        icvBits: newest.icvBits,
        spiFor: (peer) => egressOf.get(peer.id)?.spi ?? newest.spi,
        pairKey: () => {
          throw new Error('the key in force was restored from the store; load the key file again to derive keys for new peers');
        },
      };
      const isCurrent = (e: SaEntryLike) => egressOf.get(e.remoteNode)?.spi === e.spi;
      this.current = { generation, ingress: mine.filter((e) => e.direction === 'ingress' && isCurrent(e)).map(idOf), restored: { egress: newest } };
      // Ingress SAs newer than the last egress switch belong to a rotation that was waiting for
      // peers when the previous run stopped: leave them, the next load adopts them.
      const switchedAt = Math.max(...egress.map((x) => x.createdAt));
      const old = mine.filter((e) => e.direction === 'ingress' && !isCurrent(e) && e.createdAt <= switchedAt);
      const byKey = new Map<string, Retiring>();
      for (const e of old) {
        const k = `${e.keyIndex}/${e.spi}`;
        if (!byKey.has(k)) byKey.set(k, { label: e.keyIndex ? `key ID ${e.keyIndex}` : `SPI ${e.spi}`, keyIndex: e.keyIndex, ids: [], removeAt: switchedAt + this.graceMs });
        byKey.get(k)!.ids.push(idOf(e));
      }
      this.retiring = [...byKey.values()];
      this.scheduleRetirement();
    });
  }

  currentLabel(): string | undefined {
    return this.current?.generation.label;
  }

  /**
   * Parse and check a key file, then rotate to its key. On any error nothing is written and the
   * running keys stay installed. Returns what happened, for the caller's log.
   */
  applyKeyFile(text: string, source = 'keys'): Promise<'unchanged' | 'installed' | 'rotated'> {
    return this.serial(async () => {
      const keys = parseKeyFile(text, source);
      const verdict = checkUpdate(this.installedKeys(), keys, source);
      if (verdict.kind === 'unchanged') return 'unchanged';
      const first = this.current === undefined;
      if (!verdict.next.perNodePair) {
        this.log('key has no "+": deriving per-node-pair keys anyway (a shared GCM key reuses nonces, GHSA-pwqm-x5x6-5586)', {
          source,
          line: verdict.next.line,
        });
      }
      await this.rotateLocked(globalKeyGeneration(verdict.next), verdict.next);
      return first ? 'installed' : 'rotated';
    });
  }

  /** Rotate to a generation from another source (SPIRE). */
  applyGeneration(generation: KeyGeneration): Promise<void> {
    return this.serial(() => this.rotateLocked(generation));
  }

  private sa(generation: KeyGeneration, direction: 'ingress' | 'egress', peer: NodeEndpoint): SecurityAssociation {
    const [sender, receiver] = direction === 'egress' ? [this.local, peer] : [peer, this.local];
    const { key, salt } = generation.pairKey(sender, receiver);
    return {
      direction,
      localNode: this.local.id,
      remoteNode: peer.id,
      spi: generation.spiFor(peer),
      keyIndex: generation.keyIndex,
      algorithm: generation.algorithm,
      key,
      salt,
      icvBits: generation.icvBits,
      createdAt: this.clock.now(),
    };
  }

  private async rotateLocked(generation: KeyGeneration, global?: GlobalKey): Promise<void> {
    const peers = [...this.peers.values()];
    // Derive everything before the first write.
    const ingress = peers.map((p) => this.sa(generation, 'ingress', p));
    const egress = new Map(peers.map((p) => [p.id, this.sa(generation, 'egress', p)]));
    const previous = this.current;
    const installed = await this.store.list();
    const unchanged = (sa: SecurityAssociation) =>
      installed.some((e) => e.direction === sa.direction && e.remoteNode === sa.remoteNode && e.localNode === sa.localNode && e.spi === sa.spi && e.key.equals(sa.key) && e.salt.equals(sa.salt));

    // Phase 1: ingress.
    for (const sa of ingress) {
      if (unchanged(sa)) continue;
      if (previous?.ingress.some((id) => id.remoteNode === sa.remoteNode && id.spi === sa.spi)) {
        // Same SPI, new key (only SPIRE can get here: key files are checked by checkUpdate): the old
        // SA is overwritten, so packets in flight under the old key will fail their ICV.
        this.log('SPI reused with a new key; in-flight packets under the old key will be dropped', { sa: describeSa(sa) });
      }
      await this.store.install(sa);
      this.log('installed', { sa: describeSa(sa), generation: generation.label, fingerprint: saFingerprint(sa) });
    }
    this.current = { generation, global, ingress: ingress.map(idOf) };
    // An SA installed again by this generation is not retiring any more (a restored, half-done rotation).
    const keep = new Set(ingress.map(slotKey));
    for (const r of this.retiring) r.ids = r.ids.filter((id) => !keep.has(slotKey(id)));
    this.retiring = this.retiring.filter((r) => r.ids.length > 0);
    if (previous) {
      const ids = previous.ingress.filter((id) => !keep.has(slotKey(id)));
      if (ids.length > 0) this.retiring.push({ label: previous.generation.label, keyIndex: previous.generation.keyIndex, ids });
    }

    this.onIngressReady?.(new Map(ingress.map((sa) => [sa.remoteNode, sa.spi])));

    // Phase 2: egress, per peer, when the peer can decrypt.
    this.pendingEgress.clear();
    for (const peer of peers) {
      const sa = egress.get(peer.id)!;
      if (unchanged(sa)) continue;
      if (this.gate === 'immediate' || this.acked.get(peer.id) === sa.spi || !previous) {
        await this.switchEgress(sa, generation);
      } else {
        this.pendingEgress.set(peer.id, sa.spi);
        this.log('egress waits for peer', { peer: peer.id, spi: sa.spi });
      }
    }
    this.scheduleRetirement();
  }

  private async switchEgress(sa: SecurityAssociation, generation: KeyGeneration): Promise<void> {
    await this.store.install(sa);
    this.log('egress switched', { sa: describeSa(sa), generation: generation.label, fingerprint: saFingerprint(sa) });
  }

  /** A peer announced that it can decrypt `spi` from this node: switch egress toward it. */
  peerReady(peerId: string, spi: number): Promise<void> {
    return this.serial(async () => {
      this.acked.set(peerId, spi);
      if (this.pendingEgress.get(peerId) !== spi || !this.current) return;
      const peer = this.peers.get(peerId);
      if (!peer) return;
      this.pendingEgress.delete(peerId);
      await this.switchEgress(this.sa(this.current.generation, 'egress', peer), this.current.generation);
      this.scheduleRetirement();
    });
  }

  /** Start the grace clock of generations no egress uses any more, and arm the removal timer. */
  private scheduleRetirement(): void {
    if (this.pendingEgress.size === 0) {
      const now = this.clock.now();
      for (const r of this.retiring) r.removeAt ??= now + this.graceMs;
    }
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const due = this.retiring.map((r) => r.removeAt).filter((t): t is number => t !== undefined);
    if (due.length === 0) return;
    const wait = Math.max(0, Math.min(...due) - this.clock.now());
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.expire().catch((err) => this.log('removing retired SAs failed', { error: String((err as Error).message ?? err) }));
    }, wait);
  }

  /** Remove the SAs whose grace period has ended. Returns how many were removed. */
  expire(): Promise<number> {
    return this.serial(async () => {
      const now = this.clock.now();
      let removed = 0;
      const still: Retiring[] = [];
      for (const r of this.retiring) {
        if (r.removeAt === undefined || r.removeAt > now) {
          still.push(r);
          continue;
        }
        for (const id of r.ids) {
          if (await this.store.remove(id)) {
            removed++;
            this.log('removed after grace period', { sa: describeSa(id), generation: r.label });
          }
        }
      }
      this.retiring = still;
      this.scheduleRetirement();
      return removed;
    });
  }

  /** A node joined: give it SAs under the current generation. Re-adding a known peer is a no-op. */
  addPeer(peer: NodeEndpoint): Promise<void> {
    return this.serial(async () => {
      if (peer.id === this.local.id) throw new Error(`peer ${peer.id} is the local node`);
      this.peers.set(peer.id, peer);
      if (!this.current) return;
      const { generation } = this.current;
      const installed = await this.store.list();
      for (const sa of [this.sa(generation, 'ingress', peer), this.sa(generation, 'egress', peer)]) {
        // Never re-install a key that is already in place: the map write would restart the SA's
        // sequence counter under the same key, and GCM nonces would repeat.
        if (installed.some((e) => sameSlot(e, sa) && e.spi === sa.spi && e.key.equals(sa.key) && e.salt.equals(sa.salt))) continue;
        await this.store.install(sa);
        if (sa.direction === 'ingress') this.current.ingress = [...this.current.ingress.filter((id) => id.remoteNode !== peer.id), idOf(sa)];
        this.log('peer added', { sa: describeSa(sa), generation: generation.label, fingerprint: saFingerprint(sa) });
      }
    });
  }

  /** A node left: remove every SA toward it. */
  removePeer(peerId: string): Promise<void> {
    return this.serial(async () => {
      this.peers.delete(peerId);
      this.pendingEgress.delete(peerId);
      this.acked.delete(peerId);
      for (const e of await this.store.list()) if (e.remoteNode === peerId && e.localNode === this.local.id) await this.store.remove(e);
      if (this.current) this.current.ingress = this.current.ingress.filter((id) => id.remoteNode !== peerId);
      for (const r of this.retiring) r.ids = r.ids.filter((id) => id.remoteNode !== peerId);
      this.log('peer removed', { peer: peerId });
    });
  }

  /** Stop timers (agent shutdown). Installed SAs stay: the datapath keeps working. */
  close(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}

type SaEntryLike = SaId & { keyIndex: number };

function idOf(sa: SaId): SaId {
  return { direction: sa.direction, localNode: sa.localNode, remoteNode: sa.remoteNode, spi: sa.spi };
}

function slotKey(id: SaId): string {
  return `${id.direction}|${id.localNode}|${id.remoteNode}|${id.direction === 'egress' ? '' : id.spi}`;
}
