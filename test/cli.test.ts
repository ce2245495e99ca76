// The CLI as a user meets it: the conformance-plugin bar, asm → ELF → disasm/run, one-line user
// errors without stack traces, and the README's main job (`ebpf-ts demo`).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { all, describeWith, hasTool, kernelBpf } from './support/env.ts';

const ROOT = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'ebpf-ts-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/ebpf-ts.js'), ...args], { input, encoding: 'utf8', cwd: ROOT, timeout: 200_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('ebpf-ts CLI', () => {
  it('conformance-plugin runs the issue\'s example program', () => {
    const r = cli(['conformance-plugin'], 'b7 00 00 00 03 00 00 00 95 00 00 00 00 00 00 00');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('0x3\n');
    expect(r.status).toBe(0);
  });

  it('conformance-plugin passes memory in r1/r2 and reports errors on stderr', () => {
    // r0 = *(u8 *)(r1 + 1) + r2 ; exit
    const prog = '71 10 01 00 00 00 00 00 0f 20 00 00 00 00 00 00 95 00 00 00 00 00 00 00';
    expect(cli(['conformance-plugin', 'aa  bb  11  '], prog).stdout).toBe(`0x${(0xbb + 3).toString(16)}\n`);
    const bad = cli(['conformance-plugin'], 'zz');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('asm writes an object that disasm lists and run executes', () => {
    const src = join(tmp, 'ret.s');
    writeFileSync(src, 'r0 = *(u32 *)(r1 + 0x0)\nr0 += 0x1\nexit\n');
    const obj = join(tmp, 'ret.o');
    expect(cli(['asm', src, '-o', obj]).status).toBe(0);
    const listing = cli(['disasm', obj]);
    expect(listing.stdout).toContain('Disassembly of section tc');
    expect(listing.stdout).toContain('r0 += 0x1');
    const run = cli(['run', obj, '--packet', '00'.repeat(60), '--json']);
    const result = JSON.parse(run.stdout) as { retval: number };
    expect(result.retval).toBe(61); // skb->len + 1
  });

  it('user errors are one line and a non-zero exit', () => {
    for (const args of [['disasm', join(tmp, 'missing.o')], ['run', join(tmp, 'missing.o')], ['asm', join(tmp, 'missing.s')], ['run', '/etc/hostname']]) {
      const r = cli(args);
      expect(r.status, args.join(' ')).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^ebpf-ts: error: /);
    }
    const asmError = join(tmp, 'bad.s');
    writeFileSync(asmError, 'r0 = 1\nr11 = 2\nexit\n');
    const r = cli(['asm', asmError]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('bad.s:2:');
  });

  it('demo --vm-only compiles the example, runs it in the VM, then the ESP engine between two VM nodes', { timeout: 180_000 }, () => {
    const pcap = join(tmp, 'demo.pcap');
    const r = cli(['demo', '--vm-only', '--tcp-mb', '0.1', '--pcap', pcap]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/ARP broadcast\s+42 B → TC_ACT_SHOT/);
    expect(r.stdout).toMatch(/0x0800 IPv4\s+4\s+400/);
    // The engine part says where it ran and why.
    expect(r.stdout).toContain('kernel part skipped: --vm-only given');
    expect(r.stdout).toContain('ESP engine between two nodes in the userspace VM, not the kernel (--vm-only given)');
    for (const path of ['pod→pod', 'pod→node', 'node→pod']) expect(r.stdout).toMatch(new RegExp(`${path}\\s+TCP 0\\.1 MB intact \\(SHA-256 equal\\).*UDP 5/5, echoed 5/5`));
    expect(r.stdout).toMatch(/(\d+) frames: \1 ESP, 0 plaintext IPv4, 0 other; plaintext marker never seen/);
    expect(r.stdout).toContain('audit of node1 (VM maps)');
    expect(r.stdout).toContain('the link between the nodes carried only ESP');
    expect(readFileSync(`${pcap}.esp_sa`, 'utf8').trim().split('\n')).toHaveLength(3);
  });

  it('demo --policy refuses a policy whose SA keys the demo cannot install, before compiling anything', () => {
    const r = cli(['demo', '--vm-only', '--policy', 'examples/policy-subnet.ts']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^ebpf-ts: error: --policy examples\/policy-subnet\.ts: the demo installs per-node-pair SAs/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(cli(['demo', '--policy', 'examples/nope.ts']).stderr).toContain('--policy: no such file examples/nope.ts');
  });
});

describeWith(all(kernelBpf(), hasTool('ip'), hasTool('ping')), 'ebpf-ts demo in the kernel', () => {
  it('attaches between two namespaces, counts real traffic, runs the ESP engine and leaves nothing behind', { timeout: 240_000 }, () => {
    const r = cli(['demo', '--tcp-mb', '8']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('5 packets transmitted, 5 received');
    const kernelTable = r.stdout.split('kernel counters')[1] ?? '';
    const ipv4 = /0x0800 IPv4\s+(\d+)/.exec(kernelTable);
    expect(Number(ipv4?.[1])).toBeGreaterThanOrEqual(8); // 5 echo requests + 3 datagrams
    expect(r.stdout).toContain('nothing left behind');
    // then the ESP engine between two nodes
    expect(r.stdout).toMatch(/pod→pod\s+TCP [\d.]+ MB intact/);
    expect(r.stdout).toContain('the link between the nodes carried only ESP');
    // Other test files build namespaces in parallel: check the ones this demo named.
    const made = [...r.stdout.matchAll(/\b(ets-[a-z0-9]+(?:-[a-z0-9]+)*-(?:a|b|n1))\b/g)].map((m) => m[1]!);
    expect(made.length).toBeGreaterThanOrEqual(2);
    const after = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    for (const ns of made) {
      const tag = ns.replace(/-(a|b|n1)$/, '');
      expect(after, `namespaces of ${tag} left behind`).not.toContain(tag);
    }
  });
});
