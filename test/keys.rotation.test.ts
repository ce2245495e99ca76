// Rotation against the store interface with a fake clock, and traffic through a model of the
// engine's lookups (egress: the pair's SA; ingress: SA by SPI and pair; AES-GCM per RFC 4106 with
// nonce = salt ‖ seq) so "zero loss, zero plaintext" is checked, not assumed. The engine itself
// (issue 5) will run the same scenario through the VM and the kernel.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_GRACE_MS, KeyManager } from '../runtime/keys/rotation.ts';
import type { MemorySaStore } from '../runtime/keys/store.ts';
import { FakeClock, findKeyMaterial, FIXTURE_KEYS, installedKeyBytes, KEY128, KEY128_B, KEY256, line, logged, settle, testLog, TrackedStore } from './keys/fixtures.ts';

// Nothing this file's code logged may carry key bytes.
afterAll(() => {
  expect(logged.length).toBeGreaterThan(0);
  expect(findKeyMaterial(logged, [...FIXTURE_KEYS, ...installedKeyBytes])).toEqual([]);
});

const A = { id: '10.0.0.1', bootId: 'a' };
const B = { id: '10.0.0.2', bootId: 'b' };

const gcm = (keyLength: number): 'aes-128-gcm' | 'aes-256-gcm' => (keyLength === 16 ? 'aes-128-gcm' : 'aes-256-gcm');

class Datapath {
  readonly seq = new Map<string, bigint>();
  delivered = 0;
  lost = 0;
  failClosed = 0;
  plaintextOnWire = 0;

  send(from: string, to: string, src: MemorySaStore, dst: MemorySaStore, payload: Buffer): void {
    const sa = src.egressFor(from, to);
    if (!sa) {
      this.failClosed++; // the engine drops and counts; nothing goes out in clear
      return;
    }
    const slot = `${from}>${to}:${sa.spi}:${sa.key.fingerprint()}`;
    const seq = (this.seq.get(slot) ?? 0n) + 1n;
    this.seq.set(slot, seq);
    const iv = Buffer.alloc(8);
    iv.writeBigUInt64BE(seq);
    const aad = Buffer.alloc(8);
    aad.writeUInt32BE(sa.spi);
    aad.writeUInt32BE(Number(seq & 0xffffffffn), 4);
    const cipher = createCipheriv(gcm(sa.key.length), sa.key.bytes(), Buffer.concat([sa.salt.bytes(), iv]), { authTagLength: sa.icvBits / 8 });
    cipher.setAAD(aad);
    const wire = Buffer.concat([cipher.update(payload), cipher.final()]);
    const tag = cipher.getAuthTag();
    src.count(sa, payload.length);
    if (wire.includes(payload.subarray(0, 16))) this.plaintextOnWire++;

    const rx = dst.ingressFor(to, from, sa.spi);
    if (!rx) {
      this.lost++; // unknown SPI
      return;
    }
    try {
      const d = createDecipheriv(gcm(rx.key.length), rx.key.bytes(), Buffer.concat([rx.salt.bytes(), iv]), { authTagLength: rx.icvBits / 8 });
      d.setAAD(aad);
      d.setAuthTag(tag);
      const out = Buffer.concat([d.update(wire), d.final()]);
      if (!out.equals(payload)) throw new Error('corrupt');
      dst.count(rx, out.length);
      this.delivered++;
    } catch {
      this.lost++; // bad ICV
    }
  }

  /** One packet each way. */
  exchange(storeA: MemorySaStore, storeB: MemorySaStore): void {
    const payload = Buffer.from(`payload ${this.delivered + this.lost} .................`);
    this.send(A.id, B.id, storeA, storeB, payload);
    this.send(B.id, A.id, storeB, storeA, payload);
  }
}

/** Two nodes whose managers announce ingress readiness to each other, as peers would. */
function twoNodes(gate: 'immediate' | 'peer-ack', graceMs?: number) {
  const clock = new FakeClock();
  const storeA = new TrackedStore();
  const storeB = new TrackedStore();
  const announcements: Promise<void>[] = [];
  const managers: { a?: KeyManager; b?: KeyManager } = {};
  managers.a = new KeyManager({
    store: storeA, local: A, peers: [B], clock, log: testLog, egressGate: gate, graceMs,
    onIngressReady: (spis) => announcements.push(managers.b!.peerReady(A.id, spis.get(B.id)!)),
  });
  managers.b = new KeyManager({
    store: storeB, local: B, peers: [A], clock, log: testLog, egressGate: gate, graceMs,
    onIngressReady: (spis) => announcements.push(managers.a!.peerReady(B.id, spis.get(A.id)!)),
  });
  const flush = async () => {
    while (announcements.length) await announcements.shift();
    await settle();
  };
  return { clock, storeA, storeB, a: managers.a, b: managers.b, flush };
}

describe('key rotation', () => {
  it('peer-ack: staggered key loads rotate with zero loss and zero plaintext; old SPI gone after the grace period', async () => {
    const { clock, storeA, storeB, a, b, flush } = twoNodes('peer-ack');
    const dp = new Datapath();
    await a.applyKeyFile(line('3+'));
    await b.applyKeyFile(line('3+'));
    await flush();
    for (let i = 0; i < 10; i++) dp.exchange(storeA, storeB);

    // Node A's kubelet delivers the new key first; node B's a minute later.
    await a.applyKeyFile(line('4+', KEY256));
    await flush();
    expect(storeA.egressFor(A.id, B.id)!.spi).toBe(3); // B cannot decrypt 4 yet
    expect(storeA.ingressFor(A.id, B.id, 4)).toBeDefined(); // but A already accepts it
    for (let i = 0; i < 10; i++) {
      dp.exchange(storeA, storeB);
      await clock.advance(6_000);
    }
    await b.applyKeyFile(line('4+', KEY256));
    await flush();
    expect(storeA.egressFor(A.id, B.id)!.spi).toBe(4);
    expect(storeB.egressFor(B.id, A.id)!.spi).toBe(4);
    for (let i = 0; i < 10; i++) dp.exchange(storeA, storeB);

    // The grace period runs from the last egress switch: SPI 3 is still accepted just before it ends.
    await clock.advance(DEFAULT_GRACE_MS - 1);
    expect(storeA.ingressFor(A.id, B.id, 3)).toBeDefined();
    await clock.advance(1);
    expect(storeA.ingressFor(A.id, B.id, 3)).toBeUndefined();
    expect(storeB.ingressFor(B.id, A.id, 3)).toBeUndefined();
    for (let i = 0; i < 10; i++) dp.exchange(storeA, storeB);

    expect({ lost: dp.lost, failClosed: dp.failClosed, plaintext: dp.plaintextOnWire, delivered: dp.delivered }).toEqual({ lost: 0, failClosed: 0, plaintext: 0, delivered: 80 });
    expect((await storeA.list()).map((e) => `${e.direction}:${e.spi}`).sort()).toEqual(['egress:4', 'ingress:4']);
    // Counters flow through the store: the current egress SA counted its packets.
    expect((await storeA.list()).find((e) => e.direction === 'egress')!.packets).toBe(20n);
  });

  it('immediate egress switch with staggered loads loses packets (why peer-ack exists)', async () => {
    const { storeA, storeB, a, b, flush } = twoNodes('immediate');
    const dp = new Datapath();
    await a.applyKeyFile(line('3+'));
    await b.applyKeyFile(line('3+'));
    await a.applyKeyFile(line('4+', KEY128_B));
    await flush();
    dp.exchange(storeA, storeB);
    expect(dp.lost).toBe(1); // A → B under SPI 4, which B does not have yet
    expect(dp.plaintextOnWire).toBe(0);
  });

  it('the grace period is configurable and a second rotation keeps every SA a peer may still use', async () => {
    const { clock, storeA, storeB, a, b, flush } = twoNodes('peer-ack', 10_000);
    const dp = new Datapath();
    for (const [spi, key] of [['3+', KEY128], ['4+', KEY128_B], ['5+', KEY256]] as const) {
      await a.applyKeyFile(line(spi, key));
      await b.applyKeyFile(line(spi, key));
      await flush();
      for (let i = 0; i < 5; i++) dp.exchange(storeA, storeB);
      await clock.advance(4_000);
    }
    // Now t = 12 s. Key 3 was left at t = 4 s, key 4 at t = 8 s; each keeps its ingress SA 10 s.
    const ingress = async () => (await storeA.list()).filter((e) => e.direction === 'ingress').map((e) => e.spi).sort();
    expect(await ingress()).toEqual([3, 4, 5]);
    await clock.advance(2_000);
    expect(await ingress()).toEqual([4, 5]);
    await clock.advance(4_000);
    expect(await ingress()).toEqual([5]);
    expect(a.installedKeys()).toMatchObject({ retiring: [] });
    expect(dp.lost + dp.failClosed + dp.plaintextOnWire).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it('a key ID still in its grace period cannot be reused', async () => {
    const { a } = twoNodes('immediate');
    await a.applyKeyFile(line('1+'));
    await a.applyKeyFile(line('5+', KEY128_B));
    await a.applyKeyFile(line('9+', KEY256));
    expect(a.installedKeys().retiring).toEqual([1, 5]);
    // 9 → 1 is a legal forward step (wrapping), but key ID 1 is still accepted on ingress.
    await expect(a.applyKeyFile(line('1+', KEY128))).rejects.toThrow(/keys:1: field 1 \(spi\): key ID 1 is still installed as a retiring key/);
  });

  it('a restarted manager takes over from the store: same key unchanged, changed key refused, grace honoured', async () => {
    const clock = new FakeClock();
    const store = new TrackedStore();
    const first = new KeyManager({ store, local: A, peers: [B], clock, log: testLog, graceMs: 60_000 });
    await first.applyKeyFile(line('3+'));
    await first.applyKeyFile(line('4+', KEY256));
    first.close();
    await clock.advance(30_000);

    const second = new KeyManager({ store, local: A, peers: [B], clock, log: testLog, graceMs: 60_000 });
    await second.restore();
    expect(second.installedKeys().current?.spi).toBe(4);
    expect(second.installedKeys().retiring).toEqual([3]);
    expect(await second.applyKeyFile(line('4+', KEY256))).toBe('unchanged');
    await expect(second.applyKeyFile(line('4+', KEY128_B))).rejects.toThrow(/key changed but the key ID stayed 4/);
    // The grace period still counts from the original switch, not from the restart.
    await clock.advance(29_999);
    expect(store.ingressFor(A.id, B.id, 3)).toBeDefined();
    await clock.advance(1);
    expect(store.ingressFor(A.id, B.id, 3)).toBeUndefined();
  });

  it('a restart in the middle of a peer-ack rotation keeps the new ingress SA', async () => {
    const clock = new FakeClock();
    const store = new TrackedStore();
    const first = new KeyManager({ store, local: A, peers: [B], clock, log: testLog, graceMs: 60_000, egressGate: 'peer-ack' });
    await first.applyKeyFile(line('3+'));
    await clock.advance(1_000);
    await first.applyKeyFile(line('4+', KEY256)); // B has not acked: egress stays on 3
    first.close();
    const second = new KeyManager({ store, local: A, peers: [B], clock, log: testLog, graceMs: 60_000, egressGate: 'peer-ack' });
    await second.restore();
    expect(second.installedKeys().current?.spi).toBe(3);
    await clock.advance(120_000);
    expect(store.ingressFor(A.id, B.id, 4)).toBeDefined(); // not mistaken for a retiring SA
    expect(await second.applyKeyFile(line('4+', KEY256))).toBe('rotated');
    await second.peerReady(B.id, 4);
    expect(store.egressFor(A.id, B.id)!.spi).toBe(4);
    await clock.advance(60_000);
    expect((await store.list()).map((e) => `${e.direction}:${e.spi}`).sort()).toEqual(['egress:4', 'ingress:4']);
  });

  it('peers join and leave', async () => {
    const C = { id: '10.0.0.3', bootId: 'c' };
    const { storeA, a } = twoNodes('immediate');
    await a.applyKeyFile(line('3+'));
    await a.addPeer(C);
    expect(storeA.egressFor(A.id, C.id)!.spi).toBe(3);
    // Re-adding a known peer must not rewrite its SAs (a rewrite restarts the sequence counter).
    storeA.count(storeA.egressFor(A.id, C.id)!, 100);
    await a.addPeer(C);
    expect(storeA.egressFor(A.id, C.id)!.packets).toBe(1n);
    expect(storeA.ingressFor(A.id, C.id, 3)).toBeDefined();
    await a.removePeer(B.id);
    expect((await storeA.list()).every((e) => e.remoteNode === C.id)).toBe(true);
    await expect(a.addPeer(A)).rejects.toThrow(/is the local node/);
  });
});
