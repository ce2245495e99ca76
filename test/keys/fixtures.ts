// Shared fixtures for the key runtime tests: fixed test keys (never real ones), a fake clock, and a
// log sink that the secrets test greps.
import type { Clock, KeyLog } from '../../runtime/keys/rotation.ts';
import type { SecurityAssociation } from '../../runtime/keys/sa.ts';
import { MemorySaStore } from '../../runtime/keys/store.ts';

/** 20 bytes: AES-128 key ‖ salt. */
export const KEY128 = '6d7e1f2a3b4c5d6e7f8091a2b3c4d5e6f7a8b9ca';
/** 36 bytes: AES-256 key ‖ salt. */
export const KEY256 = '00112233445566778899aabbccddeeff102132435465768798a9bacbdcedfe0f1e2d3c4b';
export const KEY128_B = 'c0ffee00c0ffee00c0ffee00c0ffee00deadbeef';

export const line = (spi: string | number, key = KEY128, icv: string | number = 128) => `${spi} rfc4106(gcm(aes)) ${key} ${icv}`;

/** Every line logged by the code under test, so a test can check none carries key bytes. */
export const logged: string[] = [];
export const testLog: KeyLog = (event, fields) => {
  logged.push(`${event} ${JSON.stringify(fields ?? {})}`);
};

/** A clock that moves only when told: timers fire in order as `advance` passes them. */
export class FakeClock implements Clock {
  private t = 1_700_000_000_000;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== handle);
  }
  pending(): number {
    return this.timers.length;
  }
  /** Advance time, firing due timers, and let the async work they start settle. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/**
 * Every way a key could appear in text: hex (either case) and base64 of the key, the salt and
 * key ‖ salt. Substrings of 8+ bytes are enough to find a leak of any part.
 */
export function keyMaterialPatterns(keys: Buffer[]): string[] {
  const out = new Set<string>();
  for (const k of keys) {
    for (const b of [k, k.subarray(0, Math.max(8, k.length - 4))]) {
      if (b.length < 8) continue;
      out.add(b.toString('hex'));
      out.add(b.toString('hex').toUpperCase());
      out.add(b.toString('base64').replace(/=+$/, ''));
      // 8-byte windows catch partial leaks (a truncated key in a message).
      for (let i = 0; i + 8 <= b.length; i += 4) out.add(b.subarray(i, i + 8).toString('hex'));
    }
  }
  return [...out];
}

export function findKeyMaterial(texts: string[], keys: Buffer[]): string[] {
  const patterns = keyMaterialPatterns(keys);
  const hits: string[] = [];
  for (const t of texts) for (const p of patterns) if (t.includes(p)) hits.push(`${p} in: ${t.slice(0, 200)}`);
  return hits;
}

export const FIXTURE_KEYS = [KEY128, KEY128_B, KEY256].map((k) => Buffer.from(k, 'hex'));

/** Key bytes of every SA any TrackedStore saw installed: derived keys must not leak either. */
export const installedKeyBytes: Buffer[] = [];
export class TrackedStore extends MemorySaStore {
  override async install(sa: SecurityAssociation): Promise<void> {
    installedKeyBytes.push(Buffer.from(sa.key.bytes()), Buffer.concat([sa.key.bytes(), sa.salt.bytes()]));
    return super.install(sa);
  }
}
