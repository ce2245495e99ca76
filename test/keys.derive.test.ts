import { createHmac, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { derivePairKey, deriveSpiffePairKey, type NodeEndpoint } from '../runtime/keys/derive.ts';
import { generateKeyLine } from '../runtime/keys/generate.ts';
import { parseKeyFile } from '../runtime/keys/keyfile.ts';
import { KeyManager } from '../runtime/keys/rotation.ts';
import { FakeClock, KEY128, KEY256, line, testLog, TrackedStore } from './keys/fixtures.ts';

/** RFC 5869 HKDF written out with HMAC, independent of node:crypto's hkdfSync. */
function hkdfReference(ikm: Buffer, salt: Buffer, info: Buffer, length: number): Buffer {
  const prk = createHmac('sha256', salt).update(ikm).digest();
  const blocks: Buffer[] = [];
  let t: Buffer = Buffer.alloc(0);
  for (let i = 1; Buffer.concat(blocks).length < length; i++) {
    t = createHmac('sha256', prk).update(Buffer.concat([t, info, Buffer.from([i])])).digest();
    blocks.push(t);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

const lp = (s: string) => Buffer.concat([Buffer.from([s.length >> 8, s.length & 0xff]), Buffer.from(s)]);
const A: NodeEndpoint = { id: '10.0.0.1', bootId: 'boot-a' };
const B: NodeEndpoint = { id: '10.0.0.2', bootId: 'boot-b' };
const C: NodeEndpoint = { id: '10.0.0.3', bootId: 'boot-c' };

describe('per-node-pair derivation from a global key', () => {
  it('matches the documented HKDF-SHA256 construction (independent HKDF)', () => {
    const [g] = parseKeyFile(line('5+', KEY256, 128));
    const info = Buffer.concat([Buffer.from('ebpf-ts pair key v1\0'), Buffer.from([5, 32, 16]), lp(A.id), lp(A.bootId), lp(B.id), lp(B.bootId)]);
    const okm = hkdfReference(Buffer.from(KEY256, 'hex'), Buffer.from('ebpf-ts ipsec v1'), info, 36);
    const { key, salt } = derivePairKey(g, A, B);
    expect(key.bytes().toString('hex')).toBe(okm.subarray(0, 32).toString('hex'));
    expect(salt.bytes().toString('hex')).toBe(okm.subarray(32).toString('hex'));
  });

  it('no two directions, pairs, key IDs or boots share a key or a salt', () => {
    const [g3] = parseKeyFile(line('3+'));
    const [g4] = parseKeyFile(line('4+')); // same key bytes, other key ID
    const cases = [
      derivePairKey(g3, A, B),
      derivePairKey(g3, B, A),
      derivePairKey(g3, A, C),
      derivePairKey(g3, C, A),
      derivePairKey(g3, B, C),
      derivePairKey(g4, A, B),
      derivePairKey(g3, { ...A, bootId: 'rebooted' }, B),
    ];
    expect(new Set(cases.map((c) => c.key.bytes().toString('hex'))).size).toBe(cases.length);
    expect(new Set(cases.map((c) => c.salt.bytes().toString('hex'))).size).toBe(cases.length);
    expect(cases.every((c) => c.key.length === 16 && c.salt.length === 4)).toBe(true);
    // And none is the global key itself.
    expect(cases.some((c) => c.key.bytes().toString('hex') === KEY128.slice(0, 32))).toBe(false);
  });

  it('length-prefixing keeps ("ab","c") and ("a","bc") apart', () => {
    const [g] = parseKeyFile(line('3+'));
    const k1 = derivePairKey(g, { id: 'ab', bootId: 'c' }, B);
    const k2 = derivePairKey(g, { id: 'a', bootId: 'bc' }, B);
    expect(k1.key.equals(k2.key)).toBe(false);
  });

  it('both ends install matching SAs: A egress→B equals B ingress←A, and back', async () => {
    const storeA = new TrackedStore();
    const storeB = new TrackedStore();
    const text = line('7+', KEY256);
    await new KeyManager({ store: storeA, local: A, peers: [B], clock: new FakeClock(), log: testLog }).applyKeyFile(text);
    await new KeyManager({ store: storeB, local: B, peers: [A], clock: new FakeClock(), log: testLog }).applyKeyFile(text);
    const aOut = storeA.egressFor(A.id, B.id)!;
    const bIn = storeB.ingressFor(B.id, A.id, 7)!;
    expect(aOut.key.equals(bIn.key) && aOut.salt.equals(bIn.salt)).toBe(true);
    const bOut = storeB.egressFor(B.id, A.id)!;
    const aIn = storeA.ingressFor(A.id, B.id, 7)!;
    expect(bOut.key.equals(aIn.key) && bOut.salt.equals(aIn.salt)).toBe(true);
    expect(aOut.key.equals(aIn.key)).toBe(false);
  });

  it('refuses a pair of a node with itself', () => {
    const [g] = parseKeyFile(line('3+'));
    expect(() => derivePairKey(g, A, A)).toThrow(/no SA with itself/);
  });
});

describe('SPIFFE pair derivation (ECDH P-256 + HKDF)', () => {
  const a = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const b = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const idA = 'spiffe://example.org/node/a';
  const idB = 'spiffe://example.org/node/b';
  it('both ends compute the same key for each direction; directions differ', () => {
    const onA = deriveSpiffePairKey({ ownPrivateKey: a.privateKey, peerPublicKey: b.publicKey, senderId: idA, receiverId: idB, spi: 0x1234 });
    const onB = deriveSpiffePairKey({ ownPrivateKey: b.privateKey, peerPublicKey: a.publicKey, senderId: idA, receiverId: idB, spi: 0x1234 });
    expect(onA.key.equals(onB.key) && onA.salt.equals(onB.salt)).toBe(true);
    const back = deriveSpiffePairKey({ ownPrivateKey: a.privateKey, peerPublicKey: b.publicKey, senderId: idB, receiverId: idA, spi: 0x1234 });
    expect(back.key.equals(onA.key)).toBe(false);
    const otherSpi = deriveSpiffePairKey({ ownPrivateKey: a.privateKey, peerPublicKey: b.publicKey, senderId: idA, receiverId: idB, spi: 0x1235 });
    expect(otherSpi.key.equals(onA.key)).toBe(false);
    expect(onA.key.length).toBe(32);
  });
  it('refuses keys that are not EC P-256', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(() => deriveSpiffePairKey({ ownPrivateKey: rsa.privateKey, peerPublicKey: b.publicKey, senderId: idA, receiverId: idB, spi: 1 })).toThrow(
      /own SVID key is rsa; ECDH needs EC P-256/,
    );
  });
});

describe('keys generate', () => {
  it('produces a valid Cilium line with "+", fresh each time', () => {
    const l1 = generateKeyLine({ spi: 4 });
    const l2 = generateKeyLine({ spi: 4 });
    expect(l1).toMatch(/^4\+ rfc4106\(gcm\(aes\)\) [0-9a-f]{72} 128$/);
    expect(l1).not.toBe(l2);
    const [k] = parseKeyFile(l1);
    expect(k).toMatchObject({ spi: 4, perNodePair: true, icvBits: 128 });
    expect(generateKeyLine({ aesBits: 128 })).toMatch(/^1\+ rfc4106\(gcm\(aes\)\) [0-9a-f]{40} 128$/);
  });
  it('refuses key IDs outside 1–15', () => {
    expect(() => generateKeyLine({ spi: 0 })).toThrow(/key IDs are 1–15/);
    expect(() => generateKeyLine({ spi: 16 })).toThrow(/key IDs are 1–15/);
  });
});
