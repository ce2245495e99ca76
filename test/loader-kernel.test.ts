// The loader against this kernel (root): two namespaces joined by a veth, programs compiled from
// the DSL and by clang-19 from C, attached, real traffic (ping between the two namespaces only),
// counters read back, status, detach, and nothing left behind. Everything made here is removed in
// afterAll, also after a failure.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Pinning } from '../compiler/elf/spec.ts';
import { attachTc, detach, unload } from '../runtime/loader/attach.ts';
import { ProgramLoadError } from '../runtime/loader/errors.ts';
import { loadObject, openObject } from '../runtime/loader/object.ts';
import { BpfError, linkGetFdById, progGetFdById } from '../runtime/sys/index.ts';
import { all, describeWith, hasTool, kernelAtLeast, kernelBpf } from './support/env.ts';

const ROOT = join(import.meta.dirname, '..');
const FIXTURES = join(import.meta.dirname, 'fixtures');
const tag = `${process.pid}`;
const NS_A = `ets-${tag}-a`;
const NS_B = `ets-${tag}-b`;
const PIN_ROOT = `/sys/fs/bpf/ets-test-${tag}`;
const ADDR_A = '10.211.0.1';
const ADDR_B = '10.211.0.2';

const sh = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });
const cli = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/ebpf-ts.js'), ...args], { encoding: 'utf8', env: { ...process.env, EBPF_TS_PIN_ROOT: PIN_ROOT } });
const ping = (from: string, to: string, count = 3): void => void sh('ip', 'netns', 'exec', from, 'ping', '-c', String(count), '-i', '0.2', '-W', '2', to);
const gone = (fn: () => { close(): void }): boolean => {
  try {
    fn().close();
    return false;
  } catch (e) {
    if (e instanceof BpfError && e.code === 'ENOENT') return true;
    throw e;
  }
};

describeWith(all(kernelBpf(), kernelAtLeast(6, 6, 'tcx links'), hasTool('ip'), hasTool('clang-19'), hasTool('bpftool')), 'loader in the kernel', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'loader-kernel-'));
    sh('ip', 'netns', 'add', NS_A);
    sh('ip', 'netns', 'add', NS_B);
    sh('ip', 'link', 'add', 'veth-a', 'netns', NS_A, 'type', 'veth', 'peer', 'name', 'veth-b', 'netns', NS_B);
    sh('ip', '-n', NS_A, 'addr', 'add', `${ADDR_A}/24`, 'dev', 'veth-a');
    sh('ip', '-n', NS_B, 'addr', 'add', `${ADDR_B}/24`, 'dev', 'veth-b');
    sh('ip', '-n', NS_A, 'link', 'set', 'veth-a', 'up');
    sh('ip', '-n', NS_B, 'link', 'set', 'veth-b', 'up');
  });
  afterAll(() => {
    // Undo attachments first (they name the namespaces), then pins, then the topology.
    if (existsSync(PIN_ROOT)) for (const d of sh('ls', PIN_ROOT).split('\n').filter(Boolean)) {
      try {
        unload(join(PIN_ROOT, d));
      } catch {
        /* keep cleaning */
      }
    }
    rmSync(PIN_ROOT, { recursive: true, force: true });
    for (const ns of [NS_A, NS_B]) spawnSync('ip', ['netns', 'del', ns]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('compile → load → attach in a namespace → traffic counted → status --json → detach leaves nothing', () => {
    const obj = join(dir, 'count.o');
    const compiled = cli('compile', join(FIXTURES, 'loader/count.ts'), '-o', obj);
    expect(compiled.status, compiled.stderr).toBe(0);
    const loaded = cli('load', obj);
    expect(loaded.status, loaded.stderr).toBe(0);
    const attached = cli('attach', '--prog', 'count', '--dev', 'veth-a', '--direction', 'ingress', '--netns', NS_A);
    expect(attached.status, attached.stderr).toBe(0);
    expect(attached.stdout).toContain(`attached tcx-ingress-veth-a@${NS_A}`);

    ping(NS_B, ADDR_A, 3);
    const dump = cli('map', 'dump', 'counts');
    expect(dump.status, dump.stderr).toBe(0);
    const entries = JSON.parse(dump.stdout) as { key: number; value: { packets: number; bytes: number } }[];
    const ipv4 = entries.find((e) => e.key === 0x0800);
    expect(ipv4, dump.stdout).toBeDefined();
    expect(ipv4!.value.packets).toBeGreaterThanOrEqual(3); // the echo requests (and their ARP is 0x0806)
    expect(ipv4!.value.bytes).toBeGreaterThanOrEqual(3 * 98);

    const status = cli('status', '--json');
    expect(status.status, status.stderr).toBe(0);
    const s = JSON.parse(status.stdout);
    const o = s.objects.find((x: { name: string }) => x.name === 'count');
    expect(o.programs).toEqual([expect.objectContaining({ name: 'count', typeName: 'sched_cls' })]);
    expect(o.links).toEqual([expect.objectContaining({ kind: 'tcx', device: 'veth-a', netns: NS_A, direction: 'ingress', live: true })]);
    expect(o.maps.find((m: { name: string }) => m.name === 'counts').entries).toBeGreaterThanOrEqual(1);
    const progId: number = o.programs[0].id;
    const linkId: number = o.links[0].linkId;

    // bpftool sees it with its name and BTF, and source lines through our line info.
    const shown = JSON.parse(sh('bpftool', '-j', 'prog', 'show', 'id', String(progId)));
    expect(shown).toMatchObject({ name: 'count', type: 'sched_cls' });
    expect(shown.btf_id).toBeGreaterThan(0);
    expect(sh('bpftool', 'prog', 'dump', 'xlated', 'id', String(progId), 'linum')).toMatch(/count\.ts line_num:\d+/);

    const detached = cli('detach');
    expect(detached.status, detached.stderr).toBe(0);
    expect(existsSync(join(PIN_ROOT, 'count'))).toBe(false);
    expect(gone(() => progGetFdById(progId))).toBe(true);
    expect(gone(() => linkGetFdById(linkId))).toBe(true);
    expect(sh('ip', 'netns', 'exec', NS_A, 'bpftool', 'net', 'show', 'dev', 'veth-a')).not.toContain('count');
  });

  it('loads a clang-19 tc program from C and attaches it through tcx and through clsact/cls_bpf', () => {
    const obj = join(dir, 'tc_counter.o');
    const multiarch = `/usr/include/${arch() === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
    sh('clang-19', '-O2', '-g', '-target', 'bpf', `-I${multiarch}`, '-c', join(FIXTURES, 'c/tc_counter.c'), '-o', obj);
    const pinDir = join(PIN_ROOT, 'tc_counter');
    const o = loadObject(obj, { pinDir });
    try {
      const prog = o.program('count_packets');
      expect(prog.info().nrLineInfo).toBeGreaterThan(0);
      const tcx = attachTc(prog.fd, { device: 'veth-b', direction: 'ingress', netns: NS_B, pinDir, program: prog.name });
      const tc = attachTc(prog.fd, { device: 'veth-b', direction: 'egress', netns: NS_B, pinDir, program: prog.name, mode: 'tc' });
      expect(tcx.kind).toBe('tcx');
      expect(tc).toMatchObject({ kind: 'tc', createdQdisc: true, handle: 1 });
      expect(sh('ip', 'netns', 'exec', NS_B, 'tc', 'filter', 'show', 'dev', 'veth-b', 'egress')).toContain('count_packets');
      ping(NS_A, ADDR_B, 4);
      const totals = o.map('totals');
      const total = totals.lookup(Buffer.alloc(4))!.readBigUInt64LE(0);
      expect(total).toBeGreaterThanOrEqual(8n); // 4 requests in, 4 replies out
      const byProto = o.map('by_proto');
      const ip = [...byProto.entries()].map(([k, v]) => [byProto.decodeKey(k), byProto.decodeValue(v)] as const).find(([k]) => k === 8); // skb->protocol 0x0800 read as host u32
      expect(ip?.[1]).toMatchObject({ packets: expect.any(Number) });
      expect(o.map('.data').decodeValue(o.map('.data').lookup(Buffer.alloc(4))!)).toEqual({ seen: 7 + Number(total) });
      const result = detach(pinDir);
      expect(result.detached.map((r) => r.kind).sort()).toEqual(['tc', 'tcx']);
      expect(sh('ip', 'netns', 'exec', NS_B, 'tc', 'qdisc', 'show', 'dev', 'veth-b')).not.toContain('clsact');
    } finally {
      o.close();
      unload(pinDir);
    }
  });

  it('reuses a compatible pinned map and refuses an incompatible one, naming the difference', () => {
    const obj = join(dir, 'tc_counter.o');
    const pinDir = join(PIN_ROOT, 'reuse');
    const spec = () => {
      const o = openObject(obj, { name: 'reuse' });
      o.spec.maps.find((m) => m.name === 'by_proto')!.pinning = Pinning.BY_NAME;
      return o;
    };
    const first = spec().prepare({ pinDir }).load();
    const second = spec().prepare({ pinDir }).load();
    try {
      expect(second.map('by_proto').info.id).toBe(first.map('by_proto').info.id);
      const bad = spec();
      bad.spec.maps.find((m) => m.name === 'by_proto')!.maxEntries = 128;
      expect(() => bad.prepare({ pinDir })).toThrow(`object reuse: map by_proto: pinned map ${pinDir}/by_proto is incompatible (max_entries 64 ≠ 128)`);
    } finally {
      first.close();
      second.close();
      unload(pinDir);
    }
  });

  it('runs a sleepable syscall program with a kfunc call and a kptr map', () => {
    const obj = join(dir, 'kfunc_call.o');
    const multiarch = `/usr/include/${arch() === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
    sh('clang-19', '-O2', '-g', '-target', 'bpf', `-I${multiarch}`, '-c', join(FIXTURES, 'c/kfunc_call.c'), '-o', obj);
    const o = loadObject(obj, { pinning: false });
    try {
      expect(o.warnings).toEqual([]);
      expect(o.program('drop_ctx').run({ ctxIn: Buffer.alloc(8) }).retval).toBe(0);
    } finally {
      o.close();
    }
  });

  it('a DSL program the verifier refuses fails with its message and the TypeScript line', () => {
    const obj = join(dir, 'unverifiable.o');
    expect(cli('compile', join(FIXTURES, 'loader/unverifiable.ts'), '-o', obj).status).toBe(0);
    let error: unknown;
    try {
      loadObject(obj, { pinning: false });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ProgramLoadError);
    const e = error as ProgramLoadError;
    expect(e.message).toMatch(/^object unverifiable: program spin: load: infinite loop detected at insn \d+ \(insn \d+ at .*unverifiable\.ts:12:\d+: while \(i < 16\)/);
    expect(e.location).toMatchObject({ line: 12 });
    expect(e.location!.file).toMatch(/unverifiable\.ts$/);

    const plain = cli('load', obj, '--pin-dir', join(PIN_ROOT, 'unverifiable'));
    expect(plain.status).not.toBe(0);
    expect(plain.stderr).toMatch(/^ebpf-ts: error: object unverifiable: program spin: load: infinite loop detected/);
    expect(plain.stderr).not.toContain('-- BEGIN PROG LOAD LOG --');
    const verbose = cli('load', obj, '--pin-dir', join(PIN_ROOT, 'unverifiable'), '--verbose');
    expect(verbose.stderr).toContain('-- BEGIN PROG LOAD LOG --');
    expect(verbose.stderr).toMatch(/unverifiable\.ts:12/);
    expect(existsSync(join(PIN_ROOT, 'unverifiable'))).toBe(false);
  });

  it('without privileges each command says in one line which capability is missing', () => {
    if (!existsSync('/usr/bin/setpriv')) return void console.warn('SKIP capability check: needs setpriv');
    for (const args of [['status'], ['load', 'x.o'], ['attach', '--prog', 'p', '--dev', 'lo', '--direction', 'ingress'], ['map', 'dump', 'm']]) {
      const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, join(ROOT, 'bin/ebpf-ts.js'), ...args], { encoding: 'utf8', cwd: ROOT });
      expect(r.status, r.stderr).not.toBe(0);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/missing capability CAP_BPF/);
    }
  });
});
