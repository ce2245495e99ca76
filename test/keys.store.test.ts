import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { inspect } from 'node:util';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../runtime/keys/backend.ts';
import { MemorySaStore, StateFileSaStore } from '../runtime/keys/store.ts';
import { describeSaStore, sa } from './keys/store-conformance.ts';

const dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
let last = '';

describeSaStore('memory', () => new MemorySaStore());
describeSaStore(
  'state file',
  () => new StateFileSaStore((last = join(dir, `s${n++}`, 'keys.json'))),
  () => new StateFileSaStore(last),
);

describe('state file security', () => {
  it('is written 0600 in a 0700 directory, and never shows key bytes when printed', async () => {
    const path = join(dir, 'sec', 'keys.json');
    const store = new StateFileSaStore(path);
    await store.install(sa());
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'sec')).mode & 0o777).toBe(0o700);
    const list = await store.list();
    const printed = `${JSON.stringify(list, (_k, v) => (typeof v === 'bigint' ? String(v) : v))} ${inspect(list)} ${list[0].key}`;
    expect(printed).toContain('"key":"[redacted]"');
    expect(printed).toContain('Secret(16 bytes, fp ');
    expect(printed).not.toContain('1111');
  });
  it('refuses a state file others can read', () => {
    const path = join(dir, 'loose.json');
    writeFileSync(path, '{"version":1,"sas":[]}');
    chmodSync(path, 0o644);
    expect(() => new StateFileSaStore(path)).toThrow(/mode 644 lets others read key material; chmod 600 it/);
  });
  it('refuses a file that is not a state file', () => {
    const path = join(dir, 'junk.json');
    writeFileSync(path, 'not json', { mode: 0o600 });
    expect(() => new StateFileSaStore(path)).toThrow(/^state file .*junk.json: not valid JSON/);
  });
  it('unknown backends are a clear error', () => {
    expect(() => openStore('pinned')).toThrow('--backend: "pinned" is not one of state, memory');
  });
});
