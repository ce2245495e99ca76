// The engine-map SaStore (runtime/keys/engine-store.ts): the SaStore conformance suite over VM maps
// (always) and kernel maps (root); the bytes it writes against the engine's layout (engine/maps.ts)
// and runtime/esp's GHASH table; the refusals that keep GCM nonces unique; pinned maps at 0600 that
// another user cannot open; the node directory; and the CLI over pinned maps, grepped for key bytes.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ghashTableBytes, ghashTableForKey } from '../runtime/esp/ghash.ts';
import {
  EngineSaStore,
  type EngineMaps,
  KEY_MAPS,
  type KeyMapSpec,
  createKernelKeyMap,
  createVmKeyMaps,
  kernelKeyMaps,
  openPinnedKeyMaps,
  pinKeyMaps,
} from '../runtime/keys/engine-store.ts';
import { NodeDirectory, loadNodeDirectory, parseNodeDirectory, parseNodeFlag } from '../runtime/keys/nodes.ts';
import { Secret } from '../runtime/keys/sa.ts';
import type { FD } from '../runtime/sys/fd.ts';
import { describeWith, kernelBpf } from './support/env.ts';
import { describeSaStore, sa } from './keys/store-conformance.ts';
import { findKeyMaterial, KEY128, line } from './keys/fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'ebpf-ts-engine-store-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const nodes = () =>
  new NodeDirectory([
    { name: 'node-a', ip: '10.0.0.1' },
    { name: 'node-b', ip: '10.0.0.2', ifindex: 7 },
    { name: 'node-c', ip: '10.0.0.3' },
  ]);

// ---------------------------------------------------------------------------------------------
// Conformance

let lastVm: EngineMaps | undefined;
describeSaStore(
  'engine maps (VM)',
  () => new EngineSaStore({ maps: (lastVm = createVmKeyMaps().maps), nodes: new NodeDirectory(), localNode: '10.0.0.1' }),
  () => new EngineSaStore({ maps: lastVm!, nodes: new NodeDirectory(), localNode: '10.0.0.1' }),
);

describeWith(kernelBpf(), 'engine maps (kernel)', () => {
  const open: FD[] = [];
  let last: EngineMaps | undefined;
  const kernelMaps = (): EngineMaps => {
    const fds = Object.fromEntries(KEY_MAPS.map((s) => [s.name, createKernelKeyMap(s.name)])) as Record<KeyMapSpec['name'], FD>;
    open.push(...Object.values(fds));
    return (last = kernelKeyMaps(fds));
  };
  afterAll(() => open.forEach((fd) => fd.close()));
  describeSaStore(
    'kernel maps',
    () => new EngineSaStore({ maps: kernelMaps(), nodes: new NodeDirectory(), localNode: '10.0.0.1' }),
    () => new EngineSaStore({ maps: last!, nodes: new NodeDirectory(), localNode: '10.0.0.1' }),
  );
});

// ---------------------------------------------------------------------------------------------
// Bytes in the maps

const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
const SALT = Buffer.from('cafebabe', 'hex');

function vmStore(over: Partial<ConstructorParameters<typeof EngineSaStore>[0]> = {}) {
  const { maps, vm } = createVmKeyMaps();
  return { store: new EngineSaStore({ maps, nodes: nodes(), localNode: 'node-a', ...over }), vm };
}

describe('engine store: map bytes follow engine/maps.ts', () => {
  it('egress: one encrypt_sa entry keyed {kind 2, dst node}, value at the documented offsets', async () => {
    const { store, vm } = vmStore({ ttl: 32, df: 'set' });
    await store.install(sa({ direction: 'egress', localNode: 'node-a', remoteNode: 'node-b', spi: 0x01020304, keyIndex: 5, key: new Secret(KEY), salt: new Secret(SALT), icvBits: 96 }));
    const keys = [...vm.encrypt_sa.keys()];
    expect(keys).toHaveLength(1);
    expect(keys[0].toString('hex')).toBe(`02000000${'0a000002'}${'00'.repeat(12)}`);
    const v = vm.encrypt_sa.lookup(keys[0])!;
    expect(v.length).toBe(104);
    expect(v.readBigUInt64LE(0)).toBe(1n); // the next sequence number to send: a new key starts at 1 (RFC 4303 §3.3.3)
    expect(v.readBigUInt64LE(8)).toBe(0xffffffffn); // seqLimit without ESN
    expect(v.readBigUInt64LE(16)).toBe(0n);
    expect(v.readBigUInt64LE(24)).toBe(0n);
    expect(v.subarray(32, 64).equals(KEY)).toBe(true);
    expect(v.subarray(64, 68).equals(SALT)).toBe(true);
    expect(v.subarray(68, 72).toString('hex')).toBe('01020304'); // spi big-endian
    expect(v.subarray(72, 76).toString('hex')).toBe('0a000001'); // outer src = local node
    expect(v.subarray(76, 80).toString('hex')).toBe('0a000002'); // outer dst = remote node
    expect(v.readUInt32LE(80)).toBe(7); // ifindex from the node directory
    expect([...v.subarray(84, 92)]).toEqual([32, 12, 1 /* tunnel */, 0, v[88], 32, 1 /* DF set */, 0]);
    expect(v.readBigUInt64LE(96)).toBe(0n);
    const slot = v[88];
    expect(slot).toBeGreaterThan(0);
    const table = vm.ghash_tables.lookup(Buffer.from([slot, 0, 0, 0]))!;
    expect(table.equals(Buffer.from(ghashTableBytes(ghashTableForKey(KEY))))).toBe(true);
    // The Cilium key ID and install time live in sa_meta, not in the engine's value.
    const [listed] = await store.list();
    expect(listed).toMatchObject({ direction: 'egress', localNode: 'node-a', remoteNode: 'node-b', spi: 0x01020304, keyIndex: 5, icvBits: 96, createdAt: 1_700_000_000_000 });
  });

  it('ingress: key (spi, src remote, dst local), window zeroed, key at 168', async () => {
    const { store, vm } = vmStore();
    await store.install(sa({ localNode: 'node-a', remoteNode: 'node-c', spi: 9, key: new Secret(KEY.subarray(0, 16)), salt: new Secret(SALT) }));
    const [k] = [...vm.ingress_sa.keys()];
    expect(k.toString('hex')).toBe('00000009' + '0a000003' + '0a000001');
    const v = vm.ingress_sa.lookup(k)!;
    expect(v.length).toBe(216); // 208 lock (bpf_spin_lock, G5): written as zero; 212 mode
    expect(v.subarray(208, 212).every((b) => b === 0)).toBe(true);
    expect([...v.subarray(212, 216)]).toEqual([1 /* tunnel */, 0, 0, 0]);
    expect(v.subarray(0, 136).every((b) => b === 0)).toBe(true); // top and the 1024-bit window
    expect(v.subarray(168, 184).equals(KEY.subarray(0, 16))).toBe(true);
    expect(v.subarray(184, 200).every((b) => b === 0)).toBe(true);
    expect(v.subarray(200, 204).equals(SALT)).toBe(true);
    expect([v[204], v[205], v[207]]).toEqual([16, 16, 0]);
    const table = vm.ghash_tables.lookup(Buffer.from([v[206], 0, 0, 0]))!;
    expect(table.equals(Buffer.from(ghashTableBytes(ghashTableForKey(KEY.subarray(0, 16)))))).toBe(true);
  });

  it('list decodes the datapath counters', async () => {
    const { store, vm } = vmStore();
    await store.install(sa({ direction: 'egress', localNode: 'node-a', remoteNode: 'node-b' }));
    const [k] = [...vm.encrypt_sa.keys()];
    const v = vm.encrypt_sa.lookup(k)!;
    v.writeBigUInt64LE(41n, 16);
    v.writeBigUInt64LE(4242n, 24);
    vm.encrypt_sa.update(k, v);
    const [e] = await store.list();
    expect([e.packets, e.bytes]).toEqual([41n, 4242n]);
  });

  it('transport mode, DF copy, FIB lookup when the directory names no device', async () => {
    const { store, vm } = vmStore({ mode: 'transport' });
    await store.install(sa({ direction: 'egress', localNode: 'node-a', remoteNode: 'node-c' }));
    const v = vm.encrypt_sa.lookup([...vm.encrypt_sa.keys()][0])!;
    expect([v.readUInt32LE(80), v[86], v[89], v[90]]).toEqual([0, 2, 64, 0]);
    await store.install(sa({ direction: 'ingress', localNode: 'node-a', remoteNode: 'node-c', spi: 11 }));
    expect(vm.ingress_sa.lookup([...vm.ingress_sa.keys()][0])![212]).toBe(2); // the ingress SA opens transport ESP
  });
});

describe('engine store: GCM nonces are never repeated', () => {
  it('refuses an egress key that is already installed, in this slot or another', async () => {
    const { store } = vmStore();
    await store.install(sa({ direction: 'egress', localNode: 'node-a', remoteNode: 'node-b', spi: 3 }));
    await expect(store.install(sa({ direction: 'egress', localNode: 'node-a', remoteNode: 'node-b', spi: 4 }))).rejects.toThrow(
      'egress spi 4 node-a→node-b: refused: this key is installed in this slot already; an egress SA restarts its sequence numbers, so reusing a key would repeat GCM nonces',
    );
    await expect(store.install(sa({ direction: 'egress', localNode: 'node-a', remoteNode: 'node-c', spi: 3 }))).rejects.toThrow(/installed for another node pair \(spi 3\)/);
    expect((await store.list()).map((e) => `${e.remoteNode}:${e.spi}`)).toEqual(['node-b:3']);
  });

  it('refuses re-installing an ingress key in its own slot (the replay window would reset)', async () => {
    const { store } = vmStore();
    await store.install(sa({ localNode: 'node-a', remoteNode: 'node-b' }));
    await expect(store.install(sa({ localNode: 'node-a', remoteNode: 'node-b' }))).rejects.toThrow(/reset its replay window/);
  });

  it('a replace takes a new GHASH slot first; the old slot is wiped by the next change', async () => {
    const { store, vm } = vmStore();
    const slotOf = () => vm.encrypt_sa.lookup([...vm.encrypt_sa.keys()][0])![88];
    const table = (slot: number) => vm.ghash_tables.lookup(Buffer.from([slot, 0, 0, 0]))!;
    await store.install(sa({ direction: 'egress', localNode: 'node-a', remoteNode: 'node-b', spi: 3, key: new Secret(Buffer.alloc(16, 1)) }));
    const first = slotOf();
    await store.install(sa({ direction: 'egress', localNode: 'node-a', remoteNode: 'node-b', spi: 4, key: new Secret(Buffer.alloc(16, 2)) }));
    const second = slotOf();
    expect(second).not.toBe(first);
    expect(table(first).some((b) => b !== 0)).toBe(true); // a packet may still be using it
    await store.install(sa({ localNode: 'node-a', remoteNode: 'node-b', spi: 4, key: new Secret(Buffer.alloc(16, 3)) }));
    expect(table(second).equals(Buffer.from(ghashTableBytes(ghashTableForKey(Buffer.alloc(16, 2)))))).toBe(true);
    // the ingress SA took the free slot `first`, whose old table was wiped and rewritten for its key
    expect(table(first).equals(Buffer.from(ghashTableBytes(ghashTableForKey(Buffer.alloc(16, 3)))))).toBe(true);
    expect(await store.remove({ direction: 'ingress', localNode: 'node-a', remoteNode: 'node-b', spi: 4 })).toBe(true);
    await store.remove({ direction: 'ingress', localNode: 'node-a', remoteNode: 'node-b', spi: 99 });
    expect(table(first).every((b) => b === 0)).toBe(true);
  });

  it('refuses SAs for another node, unsupported keys and unknown nodes, each in one line', async () => {
    const { store } = vmStore();
    await expect(store.install(sa({ localNode: 'node-b', remoteNode: 'node-c' }))).rejects.toThrow('ingress spi 3 node-c→node-b: this store writes the maps of node node-a, not node-b');
    await expect(store.install(sa({ localNode: 'node-a', remoteNode: 'node-x' }))).rejects.toThrow('node node-x: no address (add it to the node directory: --nodes FILE or --node-addr node-x=IP)');
    await expect(store.install(sa({ localNode: 'node-a', key: new Secret(Buffer.alloc(24, 1)) }))).rejects.toThrow(/AES key is 24 bytes; the engine takes 16 or 32/);
    expect(await store.list()).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Node directory

describe('node directory', () => {
  const ifindexOf = (d: string) => (d === 'eth1' ? 3 : Number(d));
  it('parses NAME ADDRESS [DEVICE] lines with comments; IPv4 names stand for themselves', () => {
    const dir = parseNodeDirectory('# nodes\nnode-a 10.0.0.1\n\nnode-b  10.0.0.2  eth1 # via eth1\nnode-c 10.0.0.3 12\n', 'nodes.txt', ifindexOf);
    expect(dir.resolve('node-b')).toEqual({ name: 'node-b', ip: '10.0.0.2', ifindex: 3 });
    expect(dir.resolve('node-c').ifindex).toBe(12);
    expect(dir.resolve('192.168.1.9')).toEqual({ name: '192.168.1.9', ip: '192.168.1.9' });
    expect(dir.nameOf('10.0.0.1')).toBe('node-a');
    expect(dir.nameOf('10.9.9.9')).toBe('10.9.9.9');
    expect(parseNodeFlag('node-d=10.0.0.4,eth1', ifindexOf)).toEqual({ name: 'node-d', ip: '10.0.0.4', ifindex: 3 });
  });
  it.each([
    ['node-a', 'nodes.txt:1: expected "NAME ADDRESS [DEVICE]", got 1 field'],
    ['node-a 10.0.0.300', 'nodes.txt:1: address "10.0.0.300" is not an IPv4 address'],
    ['node-a 10.0.0.1\nnode-a 10.0.0.2', 'nodes.txt:2: node node-a is listed twice'],
    ['node-a 10.0.0.1\nnode-b 10.0.0.1', 'nodes.txt:2: nodes node-a and node-b both have address 10.0.0.1'],
    ['10.0.0.1 10.0.0.2', 'nodes.txt:1: node 10.0.0.1: a node named by an address must have that address, not 10.0.0.2'],
    ['node-a 10.0.0.1 eth9', 'nodes.txt:1: device: no network device "eth9"'],
  ])('%j → %s', (text, message) => {
    expect(() => parseNodeDirectory(text, 'nodes.txt')).toThrow(message);
  });
  it('file and flags combine; a missing file is one line', () => {
    const file = join(tmp, 'nodes.txt');
    writeFileSync(file, 'node-a 10.0.0.1\n');
    expect(loadNodeDirectory(file, ['node-b=10.0.0.2']).list().map((n) => n.name)).toEqual(['node-a', 'node-b']);
    expect(() => loadNodeDirectory(join(tmp, 'none.txt'))).toThrow(`--nodes ${join(tmp, 'none.txt')}: no such file`);
    expect(() => loadNodeDirectory(file, ['node-a=10.0.0.9'])).toThrow('--node-addr node-a=10.0.0.9: node node-a is listed twice');
  });
});

// ---------------------------------------------------------------------------------------------
// Pinned maps (root): 0600, refused when loose, and closed to other users.

/** BPF_OBJ_GET as another user with CAP_BPF (so only the pin's mode can stop it): "ok" or the errno name. */
function objGetAs(user: string, path: string): string {
  const py = [
    'import ctypes, os, sys',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'p = ctypes.create_string_buffer(sys.argv[1].encode())',
    'attr = (ctypes.c_uint8 * 16)()',
    'ctypes.c_uint64.from_buffer(attr, 0).value = ctypes.addressof(p)',
    'fd = libc.syscall(321, 7, attr, 16)', // SYS_bpf (x86_64), BPF_OBJ_GET
    'print("ok" if fd >= 0 else __import__("errno").errorcode[ctypes.get_errno()])',
  ].join('\n');
  const r = spawnSync('setpriv', [`--reuid=${user}`, `--regid=${user === 'nobody' ? 'nogroup' : user}`, '--clear-groups', '--inh-caps=+bpf', '--ambient-caps=+bpf', '/usr/bin/python3', '-c', py, path], {
    encoding: 'utf8',
  });
  return (r.stdout || r.stderr).trim();
}

describeWith(kernelBpf(), 'pinned key maps', () => {
  const pinRoot = mkdtempSync('/sys/fs/bpf/ebpf-ts-test-keys-');
  chmodSync(pinRoot, 0o711); // traversable, so the tests below see the pins' own modes at work
  afterAll(() => rmSync(pinRoot, { recursive: true, force: true }));

  it('pins encrypt_sa, ingress_sa, ghash_tables (and sa_meta) with mode 0600 in a 0700 directory', () => {
    const dir = join(pinRoot, 'a');
    const fds = { encrypt_sa: createKernelKeyMap('encrypt_sa'), ingress_sa: createKernelKeyMap('ingress_sa'), ghash_tables: createKernelKeyMap('ghash_tables') };
    const paths = pinKeyMaps(dir, fds);
    Object.values(fds).forEach((fd) => fd.close());
    expect(paths.map((p) => p.slice(dir.length + 1))).toEqual(['encrypt_sa', 'ingress_sa', 'ghash_tables', 'sa_meta']);
    for (const p of paths) expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    openPinnedKeyMaps(dir).close();
  });

  it('another user, even with CAP_BPF, cannot open them; the same pin at 0666 it can', () => {
    const dir = join(pinRoot, 'b');
    pinKeyMaps(dir, { encrypt_sa: createKernelKeyMap('encrypt_sa'), ingress_sa: createKernelKeyMap('ingress_sa'), ghash_tables: createKernelKeyMap('ghash_tables') });
    chmodSync(dir, 0o755); // let the user reach the pins, so only their own mode decides
    for (const name of ['encrypt_sa', 'ingress_sa', 'ghash_tables']) expect(objGetAs('nobody', join(dir, name))).toBe('EACCES');
    chmodSync(join(dir, 'sa_meta'), 0o666); // the control: the mode is what refused
    expect(objGetAs('nobody', join(dir, 'sa_meta'))).toBe('ok');
  });

  it('open refuses group/other-readable pins and an empty directory, in one line', () => {
    const dir = join(pinRoot, 'c');
    pinKeyMaps(dir, { encrypt_sa: createKernelKeyMap('encrypt_sa'), ingress_sa: createKernelKeyMap('ingress_sa'), ghash_tables: createKernelKeyMap('ghash_tables') });
    chmodSync(join(dir, 'ingress_sa'), 0o640);
    expect(() => openPinnedKeyMaps(dir)).toThrow(`pinned map ${dir}/ingress_sa: mode 640 lets other users open key material; chmod 600 it`);
    expect(() => openPinnedKeyMaps(join(pinRoot, 'none'))).toThrow(`engine maps not pinned under ${pinRoot}/none (no encrypt_sa) — load the engine first`);
  });

  it('creates sa_meta when the loader pinned only the engine maps (under maps/)', () => {
    const dir = join(pinRoot, 'd');
    const fds = { encrypt_sa: createKernelKeyMap('encrypt_sa'), ingress_sa: createKernelKeyMap('ingress_sa'), ghash_tables: createKernelKeyMap('ghash_tables') };
    pinKeyMaps(join(dir, 'maps'), fds);
    rmSync(join(dir, 'maps', 'sa_meta'));
    const pinned = openPinnedKeyMaps(dir);
    pinned.close();
    expect(pinned.paths.sa_meta).toBe(join(dir, 'maps', 'sa_meta'));
    expect(statSync(pinned.paths.sa_meta).mode & 0o777).toBe(0o600);
  });

  it('keys load / list --backend engine write and read the pinned maps; no output carries key bytes', async () => {
    const dir = join(pinRoot, 'e');
    pinKeyMaps(dir, { encrypt_sa: createKernelKeyMap('encrypt_sa'), ingress_sa: createKernelKeyMap('ingress_sa'), ghash_tables: createKernelKeyMap('ghash_tables') });
    const nodesFile = join(tmp, 'cli-nodes.txt');
    writeFileSync(nodesFile, 'node-a 10.0.0.1\nnode-b 10.0.0.2\n');
    const keyFile = join(tmp, 'keys');
    writeFileSync(keyFile, `${line(3, KEY128)}\n`);
    const entry = join(import.meta.dirname, 'keys', 'cli-entry.ts');
    const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { encoding: 'utf8' });
    const engine = ['--backend', 'engine', '--pin-dir', dir, '--nodes', nodesFile, '--node', 'node-a'];
    const outputs: string[] = [];
    const load = cli('keys', 'load', '--from', 'file', keyFile, ...engine, '--peer', 'node-b');
    outputs.push(load.stdout, load.stderr);
    expect(load.status, load.stderr).toBe(0);
    const list = cli('keys', 'list', '--json', ...engine);
    outputs.push(list.stdout, list.stderr);
    expect(list.status, list.stderr).toBe(0);
    const rows = JSON.parse(list.stdout).sas as { direction: string; spi: number; keyId: number; remote: string }[];
    expect(rows.map((r) => `${r.direction} ${r.spi} ${r.keyId} ${r.remote}`).sort()).toEqual(['egress 3 3 node-b', 'ingress 3 3 node-b']);
    // The derived keys are in the maps: grep every output for them and for the global key.
    const pinned = openPinnedKeyMaps(dir);
    const installed = await new EngineSaStore({ maps: pinned.maps, nodes: loadNodeDirectory(nodesFile), localNode: 'node-a' }).list();
    pinned.close();
    const secrets = [Buffer.from(KEY128, 'hex'), ...installed.flatMap((e) => [Buffer.from(e.key.bytes()), Buffer.concat([e.key.bytes(), e.salt.bytes()])])];
    outputs.push(inspect(installed), JSON.stringify(installed, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
    const missing = cli('keys', 'list', '--backend', 'engine', '--pin-dir', join(pinRoot, 'nothing'), '--nodes', nodesFile, '--node', 'node-a');
    outputs.push(missing.stdout, missing.stderr);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(`ebpf-ts: error: engine maps not pinned under ${join(pinRoot, 'nothing')} (no encrypt_sa) — load the engine first\n`);
    expect(findKeyMaterial(outputs, secrets)).toEqual([]);
  });
});

describe('engine store: key bytes never reach output', () => {
  it('errors, list() printed and JSON show no key bytes', async () => {
    const { store } = vmStore();
    const texts: string[] = [];
    await store.install(sa({ direction: 'egress', localNode: 'node-a', remoteNode: 'node-b', key: new Secret(KEY), salt: new Secret(SALT) }));
    for (const bad of [sa({ direction: 'egress', localNode: 'node-a', remoteNode: 'node-c', key: new Secret(KEY), salt: new Secret(SALT) }), sa({ localNode: 'node-a', key: new Secret(Buffer.concat([KEY, SALT])) })])
      await store.install(bad).catch((err: Error) => texts.push(err.message));
    const list = await store.list();
    texts.push(inspect(list), JSON.stringify(list, (_k, v) => (typeof v === 'bigint' ? String(v) : v)), String(list[0].key));
    expect(texts).toHaveLength(5);
    expect(findKeyMaterial(texts, [KEY, Buffer.concat([KEY, SALT])])).toEqual([]);
  });
});
