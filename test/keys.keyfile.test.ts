import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type GlobalKey, KeyFileError, checkUpdate, isNewerKeyId, parseKeyFile, sameKey } from '../runtime/keys/keyfile.ts';
import { KeyManager } from '../runtime/keys/rotation.ts';
import { FakeClock, KEY128, KEY128_B, KEY256, line, testLog, TrackedStore } from './keys/fixtures.ts';

describe('Cilium key file: valid input', () => {
  it('parses the AEAD form with and without "+", AES-128 and AES-256, all ICV lengths', () => {
    const [k] = parseKeyFile(`3+ rfc4106(gcm(aes)) ${KEY128} 128\n`);
    expect(k).toMatchObject({ spi: 3, perNodePair: true, algorithm: 'rfc4106(gcm(aes))', icvBits: 128, line: 1 });
    expect(k.key.bytes().toString('hex')).toBe(KEY128.slice(0, 32));
    expect(k.salt.bytes().toString('hex')).toBe(KEY128.slice(32));
    const [k256] = parseKeyFile(line(15, KEY256, 96));
    expect(k256).toMatchObject({ spi: 15, perNodePair: false, icvBits: 96 });
    expect(k256.key.length).toBe(32);
    expect(k256.salt.length).toBe(4);
    expect(parseKeyFile(line(1, KEY128, 64))[0].icvBits).toBe(64);
  });

  it('accepts the 0x prefix Cilium v1.4 docs used, CRLF, tabs, and runs of spaces', () => {
    const [k] = parseKeyFile(`  7+\trfc4106(gcm(aes))   0x${KEY128}  128\r\n`);
    expect(k.spi).toBe(7);
    expect(k.key.bytes().toString('hex')).toBe(KEY128.slice(0, 32));
  });

  it('keeps several lines oldest first; the last is in force', () => {
    const keys = parseKeyFile(`${line('2+')}\n\n${line('3+', KEY128_B)}\n`);
    expect(keys.map((k) => [k.spi, k.line])).toEqual([
      [2, 1],
      [3, 3],
    ]);
  });

  it('key IDs advance cyclically, wrapping 15 → 1', () => {
    expect(isNewerKeyId(3, 4)).toBe(true);
    expect(isNewerKeyId(15, 1)).toBe(true);
    expect(isNewerKeyId(14, 6)).toBe(true); // 7 steps
    expect(isNewerKeyId(14, 7)).toBe(false); // 8 steps: ambiguous with a rollback
    expect(isNewerKeyId(4, 3)).toBe(false);
    expect(isNewerKeyId(4, 4)).toBe(false);
  });

  it('the key object never prints its bytes', () => {
    const [k] = parseKeyFile(line(3));
    const shown = `${k.key} ${JSON.stringify(k)} ${inspect(k)}`;
    expect(shown).not.toContain(KEY128.slice(0, 32));
    expect(shown).not.toContain(KEY128.slice(32));
  });
});

// Each malformed input: the text, then what the message must say (line and field included).
const malformed: [string, string, RegExp][] = [
  ['empty file', '', /^keys:1: file: no keys/],
  ['only blank lines', '\n  \n\t\n', /^keys:1: file: no keys/],
  ['one field', '3', /^keys:1: 1 field: too few fields/],
  ['three fields', `3 rfc4106(gcm(aes)) ${KEY128}`, /^keys:1: 3 fields: too few fields/],
  ['seven fields', `3 hmac(sha256) aa cbc(aes) bb 10.0.0.1 extra`, /^keys:1: 7 fields: too many fields/],
  ['SPI not a number', line('x'), /^keys:1: field 1 \(spi\): "x" is not a key ID/],
  ['SPI zero', line(0), /^keys:1: field 1 \(spi\): 0 is not a valid key ID/],
  ['SPI 16', line(16), /^keys:1: field 1 \(spi\): 16 is out of range; key IDs are 1–15/],
  ['SPI 255', line('255+'), /^keys:1: field 1 \(spi\): 255 is out of range/],
  ['SPI negative', line(-1), /^keys:1: field 1 \(spi\): "-1" is not a key ID/],
  ['SPI hex', line('0x3'), /^keys:1: field 1 \(spi\): "0x3" is not a key ID/],
  ['SPI double plus', line('3++'), /^keys:1: field 1 \(spi\): "3\+\+" has more than one '\+'/],
  ['SPI plus first', line('+3'), /^keys:1: field 1 \(spi\): "\+3" is not a key ID/],
  ['SPI missing, key first: the key is not echoed', `${KEY128} rfc4106(gcm(aes)) 128`, /^keys:1: 3 fields: too few fields/],
  ['key and ICV swapped: the key is not echoed', `3 rfc4106(gcm(aes)) 128 ${KEY128}`, /^keys:1: field 3 \(aead-key\): odd number of hex digits \(3\)/],
  ['key in the SPI field is not echoed', `${KEY128} rfc4106(gcm(aes)) ${KEY128} 128`, /^keys:1: field 1 \(spi\): <40 hex digits> is not a key ID/],
  ['SPI missing (algorithm first)', `rfc4106(gcm(aes)) ${KEY128} 128 3`, /^keys:1: field 1 \(spi\): "rfc4106\(gcm\(aes\)\)" is not a key ID/],
  ['AEAD algorithm not rfc*', `3 gcm(aes) ${KEY128} 128`, /^keys:1: field 2 \(aead-algo\): "gcm\(aes\)" is not an AEAD algorithm/],
  ['AEAD algorithm unsupported', `3 rfc7539esp(chacha20,poly1305) ${KEY128} 128`, /^keys:1: field 2 \(aead-algo\): "rfc7539esp\(chacha20,poly…" is not supported/],
  ['AEAD algorithm wrong case', `3 RFC4106(GCM(AES)) ${KEY128} 128`, /^keys:1: field 2 \(aead-algo\): .* is not an AEAD algorithm/],
  ['key not hex', line(3, `${KEY128.slice(0, 38)}zz`), /^keys:1: field 3 \(aead-key\): not hex: character 39 of the key/],
  ['key odd length', line(3, KEY128.slice(0, 39)), /^keys:1: field 3 \(aead-key\): odd number of hex digits \(39\)/],
  ['key empty quotes', line(3, '""'), /^keys:1: field 3 \(aead-key\): key is empty/],
  ['key only 0x', line(3, '0x'), /^keys:1: field 3 \(aead-key\): key is empty/],
  ['key 16 bytes (no salt)', line(3, KEY128.slice(0, 32)), /^keys:1: field 3 \(aead-key\): 16 bytes; expected AES key ‖ 4-byte salt: 20 bytes/],
  ['key 28 bytes (AES-192)', line(3, KEY256.slice(0, 56)), /^keys:1: field 3 \(aead-key\): 28 bytes is AES-192/],
  ['key 40 bytes', line(3, `${KEY256}00000000`), /^keys:1: field 3 \(aead-key\): 40 bytes/],
  ['key all zeros', line(3, `${'00'.repeat(16)}01020304`), /^keys:1: field 3 \(aead-key\): the AES key is all zeros/],
  ['ICV not a number', line(3, KEY128, 'abc'), /^keys:1: field 4 \(icv-bits\): "abc" is not a number/],
  ['ICV 256 (Cilium accepts, GCM cannot)', line(3, KEY128, 256), /^keys:1: field 4 \(icv-bits\): 256 is accepted by Cilium but RFC 4106/],
  ['ICV 32', line(3, KEY128, 32), /^keys:1: field 4 \(icv-bits\): 32 is not a valid ICV length; expected 64, 96 or 128/],
  ['ICV in bytes', line(3, KEY128, 16), /^keys:1: field 4 \(icv-bits\): 16 is not a valid ICV length/],
  ['auth+enc form rejected', `3 hmac(sha256) ${'ab'.repeat(32)} cbc(aes) ${'cd'.repeat(16)}`, /^keys:1: field 2 \(auth-algo\): the auth\+enc form \(hmac\(sha256\) \+ cbc\(aes\)\) is not supported/],
  ['auth+enc form with IP rejected', `3+ hmac(sha256) ${'ab'.repeat(32)} cbc(aes) ${'cd'.repeat(16)} 10.0.0.1`, /^keys:1: field 2 \(auth-algo\): the auth\+enc form/],
  ['auth algo unknown', `3 sha256 ${'ab'.repeat(32)} cbc(aes) ${'cd'.repeat(16)}`, /^keys:1: field 2 \(auth-algo\): "sha256" is not a known authentication algorithm/],
  ['auth key not hex', `3 hmac(sha256) xyz cbc(aes) ${'cd'.repeat(16)}`, /^keys:1: field 3 \(auth-key\): not hex: character 1/],
  ['enc algo unknown', `3 hmac(sha256) ${'ab'.repeat(32)} aes ${'cd'.repeat(16)}`, /^keys:1: field 4 \(enc-algo\): "aes" is not a known encryption algorithm/],
  ['enc key odd', `3 hmac(sha256) ${'ab'.repeat(32)} cbc(aes) abc`, /^keys:1: field 5 \(enc-key\): odd number of hex digits \(3\)/],
  ['auth+enc bad IP', `3 hmac(sha256) ${'ab'.repeat(32)} cbc(aes) ${'cd'.repeat(16)} 10.0.0.300`, /^keys:1: field 6 \(ip\): "10.0.0.300" is not an IP address/],
  ['AEAD with 5 fields', `3 rfc4106(gcm(aes)) ${KEY128} 128 extra`, /^keys:1: field 2 \(auth-algo\): "rfc4106\(gcm\(aes\)\)" is an AEAD algorithm; the AEAD form has exactly 4 fields/],
  ['bad second line', `${line('3+')}\n${line('4+', KEY128, 100)}`, /^keys:2: field 4 \(icv-bits\): 100 is not a valid ICV length/],
  ['same SPI twice, different keys', `${line(3)}\n${line(3, KEY128_B)}`, /^keys:2: field 1 \(spi\): key ID 3 appears on line 1 with a different key/],
  ['lines not oldest first', `${line(5)}\n${line(4, KEY128_B)}`, /^keys:2: field 1 \(spi\): key ID 4 is not newer than 5 on line 1/],
  ['non-ASCII character', `${line(3)} é`, /^keys:1: column 66: non-printable or non-ASCII character/],
  ['NUL byte on line 2', `${line(3)}\n\0`, /^keys:2: line: contains a NUL byte/],
];

describe('Cilium key file: malformed input', () => {
  it(`has at least 30 cases`, () => expect(malformed.length).toBeGreaterThanOrEqual(30));

  for (const [name, text, message] of malformed) {
    it(`${name}: error names line and field, installed keys unchanged`, async () => {
      let err: unknown;
      try {
        parseKeyFile(text);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(KeyFileError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain('\n');
      // No message shows key bytes (long hex runs would be key material).
      expect((err as Error).message).not.toMatch(/[0-9a-f]{25,}/i);

      // The property: a running node that is fed this file keeps exactly what it had.
      const store = new TrackedStore();
      const manager = new KeyManager({ store, local: { id: '10.0.0.1', bootId: 'a' }, peers: [{ id: '10.0.0.2', bootId: 'b' }], clock: new FakeClock(), log: testLog });
      await manager.applyKeyFile(line('2+'));
      const before = await store.list();
      await expect(manager.applyKeyFile(text)).rejects.toThrow(message);
      const after = await store.list();
      expect(after.map((e) => [e.direction, e.spi, e.key.bytes().toString('hex')])).toEqual(
        before.map((e) => [e.direction, e.spi, e.key.bytes().toString('hex')]),
      );
      expect(manager.installedKeys().current?.spi).toBe(2);
    });
  }
});

describe('Cilium key file: updates against the installed key', () => {
  const installed = (k: GlobalKey) => ({ spi: k.spi, sameAs: (x: GlobalKey) => sameKey(k, x) });
  const [k3] = parseKeyFile(line(3));
  it('same key and key ID again is no change', () => {
    expect(checkUpdate({ current: installed(k3), retiring: [] }, parseKeyFile(line(3)))).toEqual({ kind: 'unchanged' });
  });
  it('a changed key with the same key ID is refused', () => {
    expect(() => checkUpdate({ current: installed(k3), retiring: [] }, parseKeyFile(line(3, KEY128_B)))).toThrow(
      /^keys:1: field 1 \(spi\): the key changed but the key ID stayed 3; a new key needs a higher key ID \(4\)/,
    );
  });
  it('a lower key ID is refused as a rollback', () => {
    expect(() => checkUpdate({ current: installed(k3), retiring: [] }, parseKeyFile(line(2, KEY128_B)))).toThrow(/key ID 2 is not newer than the installed 3; use 4/);
  });
  it('a key ID still retiring is refused', () => {
    expect(() => checkUpdate({ current: installed(k3), retiring: [4] }, parseKeyFile(line(4, KEY128_B)))).toThrow(/key ID 4 is still installed as a retiring key/);
  });
  it('a higher key ID, and the 15 → 1 wrap, rotate', () => {
    expect(checkUpdate({ current: installed(k3), retiring: [] }, parseKeyFile(line(4, KEY128_B))).kind).toBe('rotate');
    const [k15] = parseKeyFile(line(15));
    expect(checkUpdate({ current: installed(k15), retiring: [] }, parseKeyFile(line(1, KEY128_B))).kind).toBe('rotate');
  });
  it('through the manager: a refused update leaves SAs as they were', async () => {
    const store = new TrackedStore();
    const manager = new KeyManager({ store, local: { id: 'n1', bootId: '' }, peers: [{ id: 'n2', bootId: '' }], clock: new FakeClock(), log: testLog });
    expect(await manager.applyKeyFile(line('3+'))).toBe('installed');
    expect(await manager.applyKeyFile(line('3+'))).toBe('unchanged');
    const before = JSON.stringify((await store.list()).map((e) => [e.spi, e.key.fingerprint()]));
    await expect(manager.applyKeyFile(line('3+', KEY128_B))).rejects.toThrow(/key ID stayed 3/);
    expect(JSON.stringify((await store.list()).map((e) => [e.spi, e.key.fingerprint()]))).toBe(before);
    expect(await manager.applyKeyFile(line('4+', KEY128_B))).toBe('rotated');
    expect((await store.list()).map((e) => `${e.direction}:${e.spi}`).sort()).toEqual(['egress:4', 'ingress:3', 'ingress:4']);
  });
});
