import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { KeyManager } from '../runtime/keys/rotation.ts';
import { SecretDirSource } from '../runtime/keys/source.ts';
import { FakeClock, findKeyMaterial, FIXTURE_KEYS, installedKeyBytes, KEY128, KEY128_B, KEY256, line, logged, testLog, TrackedStore } from './keys/fixtures.ts';

// Nothing this file's code logged may carry key bytes.
afterAll(() => {
  expect(logged.length).toBeGreaterThan(0);
  expect(findKeyMaterial(logged, [...FIXTURE_KEYS, ...installedKeyBytes])).toEqual([]);
});

/** Kubelet's atomic writer, step by step: new timestamped dir, ..data_tmp symlink, rename over ..data. */
class KubeletVolume {
  private generation = 0;
  private current?: string;
  constructor(readonly dir: string) {}
  write(keys: string): void {
    const name = `..2026_01_01_00_00_${String(this.generation++).padStart(2, '0')}.${process.pid}`;
    mkdirSync(join(this.dir, name));
    writeFileSync(join(this.dir, name, 'keys'), keys, { mode: 0o400 });
    symlinkSync(name, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    if (this.generation === 1) symlinkSync('..data/keys', join(this.dir, 'keys'));
    if (this.current) rmSync(join(this.dir, this.current), { recursive: true });
    this.current = name;
  }
}

async function until(cond: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('mounted secret watcher', () => {
  it('follows kubelet ..data swaps, rejects a bad file keeping keys, then takes a good one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-ipsec-'));
    dirs.push(dir);
    const volume = new KubeletVolume(dir);
    volume.write(`${line('3+')}\n`);

    const store = new TrackedStore();
    const manager = new KeyManager({ store, local: { id: 'n1', bootId: '' }, peers: [{ id: 'n2', bootId: '' }], clock: new FakeClock(), log: testLog });
    const errors: string[] = [];
    const source = new SecretDirSource(dir, { debounceMs: 20, pollMs: 60_000, onError: (e) => errors.push(e.message) });
    const applied: string[] = [];
    await source.start(async (text, origin) => {
      applied.push(await manager.applyKeyFile(text, origin));
    });
    const egressSpi = async () => store.egressFor('n1', 'n2')?.spi;
    expect(await egressSpi()).toBe(3);

    volume.write(`${line('4+', KEY128_B)}\n`);
    await until(async () => (await egressSpi()) === 4, 'key ID 4 after the first swap');

    // A bad file arrives through the same swap: reported with line and field, keys unchanged.
    const before = (await store.list()).map((e) => `${e.direction}:${e.spi}:${e.key.fingerprint()}`).sort();
    volume.write(`${line('5+', KEY256, 100)}\n`);
    await until(async () => errors.length > 0, 'the error for the bad file');
    expect(errors[0]).toBe(`${join(dir, 'keys')}:1: field 4 (icv-bits): 100 is not a valid ICV length; expected 64, 96 or 128`);
    expect((await store.list()).map((e) => `${e.direction}:${e.spi}:${e.key.fingerprint()}`).sort()).toEqual(before);

    volume.write(`${line('5+', KEY256)}\n`);
    await until(async () => (await egressSpi()) === 5, 'key ID 5 after the fix');
    expect(applied).toEqual(['installed', 'rotated', 'rotated']);
    await source.close();
    expect(errors).toHaveLength(1);
    expect(JSON.stringify(errors)).not.toContain(KEY128.slice(0, 20));
  });

  it('a poll catches a change without an event, and an unchanged file is not re-applied', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-ipsec-'));
    dirs.push(dir);
    const volume = new KubeletVolume(dir);
    volume.write(line('3+'));
    const seen: string[] = [];
    const source = new SecretDirSource(dir, { pollMs: 30, debounceMs: 5 });
    await source.start(async (text) => {
      seen.push(text);
    });
    await new Promise((r) => setTimeout(r, 120)); // several polls, same content
    expect(seen).toHaveLength(1);
    volume.write(line('4+', KEY128_B));
    await until(async () => seen.length === 2, 'the second key');
    await source.close();
  });

  it('a missing directory fails at start with one clear line', async () => {
    const source = new SecretDirSource(join(tmpdir(), 'ebpf-ts-no-such-dir'));
    await expect(source.start(async () => {})).rejects.toThrow(/ebpf-ts-no-such-dir\/keys: no such file$/);
  });
});
