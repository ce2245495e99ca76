// What every SaStore backend must do, as one suite: the memory and state-file backends run it now
// (test/keys.store.test.ts); the pinned-map (runtime/sys) and VM-map (runtime/vm) backends must run
// it too when they are bound, e.g. `describeSaStore('pinned maps', () => openPinnedStore(...))`.
import { describe, expect, it } from 'vitest';
import { Secret, type SecurityAssociation } from '../../runtime/keys/sa.ts';
import type { SaStore } from '../../runtime/keys/store.ts';

export function sa(over: Partial<SecurityAssociation> = {}): SecurityAssociation {
  return {
    direction: 'ingress',
    localNode: '10.0.0.1',
    remoteNode: '10.0.0.2',
    spi: 3,
    keyIndex: 3,
    algorithm: 'rfc4106(gcm(aes))',
    key: new Secret(Buffer.alloc(16, 0x11)),
    salt: new Secret(Buffer.from([1, 2, 3, 4])),
    icvBits: 128,
    createdAt: 1_700_000_000_000,
    ...over,
  };
}

const view = async (store: SaStore) =>
  (await store.list())
    .map((e) => `${e.direction} ${e.localNode}>${e.remoteNode} spi=${e.spi} kid=${e.keyIndex} icv=${e.icvBits} key=${e.key.bytes().toString('hex')} salt=${e.salt.bytes().toString('hex')} at=${e.createdAt} pk=${e.packets}`)
    .sort();

export function describeSaStore(name: string, open: () => SaStore | Promise<SaStore>, reopen?: () => SaStore | Promise<SaStore>): void {
  describe(`SaStore conformance: ${name}`, () => {
    it('install and list round-trip every field; counters start at zero', async () => {
      const store = await open();
      await store.install(sa());
      await store.install(sa({ direction: 'egress', key: new Secret(Buffer.alloc(32, 0x22)), icvBits: 96, spi: 7, keyIndex: 7 }));
      expect(await view(store)).toEqual([
        `egress 10.0.0.1>10.0.0.2 spi=7 kid=7 icv=96 key=${'22'.repeat(32)} salt=01020304 at=1700000000000 pk=0`,
        `ingress 10.0.0.1>10.0.0.2 spi=3 kid=3 icv=128 key=${'11'.repeat(16)} salt=01020304 at=1700000000000 pk=0`,
      ]);
    });

    it('egress has one slot per node pair (install replaces); ingress one per pair and SPI', async () => {
      const store = await open();
      // Each egress SA has its own key: a store may refuse a key already in place (GCM nonces).
      await store.install(sa({ direction: 'egress', spi: 3, key: new Secret(Buffer.alloc(16, 0x41)) }));
      await store.install(sa({ direction: 'egress', spi: 4, keyIndex: 4, key: new Secret(Buffer.alloc(16, 0x42)) }));
      await store.install(sa({ spi: 3 }));
      await store.install(sa({ spi: 4, keyIndex: 4 }));
      await store.install(sa({ spi: 4, keyIndex: 4, key: new Secret(Buffer.alloc(16, 0x33)) }));
      await store.install(sa({ direction: 'egress', remoteNode: '10.0.0.3', key: new Secret(Buffer.alloc(16, 0x43)) }));
      const all = await store.list();
      expect(all.filter((e) => e.direction === 'egress').map((e) => `${e.remoteNode}:${e.spi}`).sort()).toEqual(['10.0.0.2:4', '10.0.0.3:3']);
      expect(all.filter((e) => e.direction === 'ingress').map((e) => e.spi).sort()).toEqual([3, 4]);
      expect(all.find((e) => e.direction === 'ingress' && e.spi === 4)!.key.bytes()[0]).toBe(0x33);
    });

    it('remove takes exactly one slot and reports whether it existed', async () => {
      const store = await open();
      await store.install(sa({ spi: 3 }));
      await store.install(sa({ spi: 4 }));
      expect(await store.remove({ direction: 'ingress', localNode: '10.0.0.1', remoteNode: '10.0.0.2', spi: 3 })).toBe(true);
      expect(await store.remove({ direction: 'ingress', localNode: '10.0.0.1', remoteNode: '10.0.0.2', spi: 3 })).toBe(false);
      expect((await store.list()).map((e) => e.spi)).toEqual([4]);
    });

    if (reopen) {
      it('state survives reopening (another process, an agent restart)', async () => {
        const store = await open();
        await store.install(sa({ direction: 'egress' }));
        await store.install(sa());
        const before = await view(store);
        expect(await view(await reopen())).toEqual(before);
      });
    }
  });
}
