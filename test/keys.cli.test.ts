// The `keys` and `agent` commands as processes: exit codes, one-line errors, the state file's mode,
// SIGTERM, and the secrets rule — no CLI output except `keys generate` contains key bytes.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseKeyFile } from '../runtime/keys/keyfile.ts';
import { StateFileSaStore } from '../runtime/keys/store.ts';
import { FIXTURE_KEYS, findKeyMaterial, KEY128, line } from './keys/fixtures.ts';

const ENTRY = join(import.meta.dirname, 'keys', 'cli-entry.ts');
const dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-keys-cli-'));
const state = join(dir, 'state', 'keys.json');
const nodeArgs = ['--node', '10.0.0.1', '--peer', '10.0.0.2', '--peer', '10.0.0.3@boot-c', '--state', state];

/** Everything the CLI printed (outside `keys generate`), and every key it could have leaked. */
const outputs: string[] = [];
const secrets: Buffer[] = [...FIXTURE_KEYS];

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', ENTRY, ...args], { encoding: 'utf8', env: { ...process.env, EBPF_TS_KEY_STATE: state } });
  if (args[1] !== 'generate') outputs.push(r.stdout, r.stderr);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function remember(keyLine: string): void {
  const [k] = parseKeyFile(keyLine);
  secrets.push(Buffer.concat([k.key.bytes(), k.salt.bytes()]), Buffer.from(k.key.bytes()));
}

async function rememberState(): Promise<void> {
  for (const sa of await new StateFileSaStore(state).list()) secrets.push(Buffer.from(sa.key.bytes()), Buffer.concat([sa.key.bytes(), sa.salt.bytes()]));
}

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('ebpf-ts keys', () => {
  it('generate prints one valid line; a bad --spi is a one-line usage error', () => {
    const r = cli('keys', 'generate', '--spi', '7', '--aes', '128');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^7\+ rfc4106\(gcm\(aes\)\) [0-9a-f]{40} 128\n$/);
    remember(r.stdout.trim());
    const bad = cli('keys', 'generate', '--spi', '16');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe('ebpf-ts: error: --spi: key IDs are 1–15, got 16\n');
  });

  it('load, list (table and JSON), reload unchanged, state file 0600', async () => {
    const keyFile = join(dir, 'keys');
    const keyLine = cli('keys', 'generate', '--spi', '3').stdout.trim();
    remember(keyLine);
    writeFileSync(keyFile, `${keyLine}\n`);
    const r = cli('keys', 'load', '--from', 'file', keyFile, ...nodeArgs);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('egress switched sa="egress spi 3 10.0.0.1→10.0.0.3"');
    expect(statSync(state).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'state')).mode & 0o777).toBe(0o700);
    await rememberState();

    const again = cli('keys', 'load', '--from', 'file', keyFile, ...nodeArgs);
    expect(again.status).toBe(0);
    expect(again.stdout).toBe(''); // same key, same key ID: nothing to do

    const table = cli('keys', 'list');
    expect(table.status).toBe(0);
    const rows = table.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^DIRECTION\s+SPI\s+KEY-ID\s+LOCAL\s+REMOTE\s+ALGORITHM\s+ICV\s+FINGERPRINT\s+AGE\s+PACKETS\s+BYTES$/);
    expect(rows).toHaveLength(5);
    expect(rows[1]).toMatch(/^egress\s+3\s+3\s+10\.0\.0\.1\s+10\.0\.0\.2\s+rfc4106\(gcm\(aes\)\)\/256\s+128\s+[0-9a-f]{16}\s+\d+s\s+0\s+0$/);
    const json = JSON.parse(cli('keys', 'list', '--json').stdout);
    expect(json.sas).toHaveLength(4);
    expect(Object.keys(json.sas[0]).sort()).toEqual(['ageSeconds', 'algorithm', 'bytes', 'created', 'direction', 'fingerprint', 'icvBits', 'keyId', 'local', 'packets', 'remote', 'spi']);
  });

  it('a bad key file is one line naming line and field; the state is unchanged', () => {
    const before = readFileSync(state, 'utf8');
    const bad = join(dir, 'bad-keys');
    writeFileSync(bad, `${line('4+')}\n${line('5+', KEY128, 100)}\n`);
    const r = cli('keys', 'load', '--from', 'file', bad, ...nodeArgs);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`ebpf-ts: error: ${bad}:2: field 4 (icv-bits): 100 is not a valid ICV length; expected 64, 96 or 128\n`);
    expect(readFileSync(state, 'utf8')).toBe(before);
    const sameId = join(dir, 'same-id');
    writeFileSync(sameId, `${line('3+')}\n`);
    const r2 = cli('keys', 'load', '--from', 'file', sameId, ...nodeArgs);
    expect(r2.stderr).toBe(`ebpf-ts: error: ${sameId}:1: field 1 (spi): the key changed but the key ID stayed 3; a new key needs a higher key ID (4)\n`);
    expect(readFileSync(state, 'utf8')).toBe(before);
    const noPeers = cli('keys', 'load', '--from', 'file', sameId, '--state', state);
    expect(noPeers.status).toBe(2);
    expect(noPeers.stderr).toMatch(/^ebpf-ts: error: no peers: .*--peer NODE.*\n$/);
    expect(cli('keys', 'load', '--from', 'ftp', 'x').stderr).toBe('ebpf-ts: error: --from: expected file, dir, k8s or spire, got "ftp"\n');
  });

  it('rotate --from file: next key ID, file rewritten 0600, old SA kept for the grace period', async () => {
    const keyFile = join(dir, 'keys');
    const r = cli('keys', 'rotate', '--from', 'file', keyFile, ...nodeArgs, '--grace', '1h');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/key rotated file=\S+ keyId=4 previousKeyId=3 fingerprint=[0-9a-f]{16}\n$/);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const text = readFileSync(keyFile, 'utf8');
    remember(text.trim());
    expect(parseKeyFile(text)[0]).toMatchObject({ spi: 4, perNodePair: true });
    await rememberState();
    const json = JSON.parse(cli('keys', 'list', '--json').stdout) as { sas: { direction: string; spi: number; remote: string }[] };
    expect(json.sas.filter((s) => s.remote === '10.0.0.2').map((s) => `${s.direction}:${s.spi}`).sort()).toEqual(['egress:4', 'ingress:3', 'ingress:4']);
    // With no grace left, the next command removes the old SAs.
    const r2 = cli('keys', 'load', '--from', 'file', keyFile, ...nodeArgs, '--grace', '0s');
    expect(r2.stdout).toContain('removed after grace period sa="ingress spi 3 10.0.0.2→10.0.0.1"');
    expect((JSON.parse(cli('keys', 'list', '--json').stdout) as { sas: { spi: number }[] }).sas.every((s) => s.spi === 4)).toBe(true);
    expect(cli('keys', 'rotate', '--from', 'dir', dir).stderr).toMatch(/^ebpf-ts: error: --from dir: a mounted secret is read-only/);
  });
});

describe('ebpf-ts agent', () => {
  it('watches a mounted secret, logs changes without key material, exits 0 on SIGTERM', async () => {
    const vol = join(dir, 'ipsec');
    mkdirSync(vol);
    const put = (n: number, text: string) => {
      mkdirSync(join(vol, `..v${n}`));
      writeFileSync(join(vol, `..v${n}`, 'keys'), text);
      symlinkSync(`..v${n}`, join(vol, '..data_tmp'));
      renameSync(join(vol, '..data_tmp'), join(vol, '..data'));
    };
    const first = cli('keys', 'generate', '--spi', '5').stdout.trim();
    const second = cli('keys', 'generate', '--spi', '6').stdout.trim();
    remember(first);
    remember(second);
    put(1, `${first}\n`);
    symlinkSync('..data/keys', join(vol, 'keys'));

    const agentState = join(dir, 'agent-state.json');
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'agent', '--from', 'dir', vol, '--node', 'n1', '--peer', 'n2', '--state', agentState], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout!.on('data', (d) => (log += d));
    child.stderr!.on('data', (d) => (log += d));
    const waitFor = async (re: RegExp) => {
      const end = Date.now() + 20_000;
      while (!re.test(log)) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`agent log never matched ${re}:\n${log}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await waitFor(/agent: watching from=dir node=n1 peers=1 generation="key ID 5"/);
    put(2, `${second}\n`);
    await waitFor(/agent: key rotated source=\S+ generation="key ID 6"/);
    put(3, 'garbage\n');
    await waitFor(/agent: key file rejected; keeping installed keys error="\S+:1: 1 field: too few fields/);
    const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(log).toMatch(/agent: signal received; stopping signal=SIGTERM\n.*agent: stopped; installed SAs left in place\n$/);
    outputs.push(log);
    const sas = new StateFileSaStore(agentState);
    expect((await sas.list()).find((s) => s.direction === 'egress')!.spi).toBe(6);
    for (const sa of await sas.list()) secrets.push(Buffer.concat([sa.key.bytes(), sa.salt.bytes()]));
  });
});

describe('secrets rule', () => {
  it('the detector finds hex, upper-case hex, base64 and partial keys', () => {
    const k = Buffer.from(KEY128, 'hex');
    for (const leak of [KEY128, KEY128.toUpperCase(), k.toString('base64'), KEY128.slice(8, 30)]) {
      expect(findKeyMaterial([`x ${leak} y`], [k])).not.toEqual([]);
    }
  });
  it('no CLI output above (except keys generate) contains key bytes', () => {
    expect(outputs.join('').length).toBeGreaterThan(1000);
    expect(secrets.length).toBeGreaterThan(10);
    expect(findKeyMaterial(outputs, secrets)).toEqual([]);
  });
});
