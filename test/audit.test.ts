// `ebpf-ts audit` over pinned maps with the engine's layouts (engine/maps.ts): per-CPU verdict
// counters are summed, per-SA counters are listed, and no key bytes reach the output.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as Engine from '../engine/maps.ts';
import { readAudit } from '../runtime/audit.ts';
import { type FD, mapCreate, mapUpdate, objPin, perCpuValueSize, possibleCpus } from '../runtime/sys/index.ts';
import { describeWith, kernelBpf } from './support/env.ts';

const ROOT = resolve(import.meta.dirname, '..');
const PIN_DIR = `/sys/fs/bpf/ets-audit-${process.pid}`;
const KEY = Buffer.from('5a'.repeat(32), 'hex');

it('readAudit sums the per-CPU slots of each reason', () => {
  const values = new Map<number, Buffer>();
  const v = Buffer.alloc(32); // two CPUs
  v.writeBigUInt64LE(3n, 0);
  v.writeBigUInt64LE(300n, 8);
  v.writeBigUInt64LE(4n, 16);
  v.writeBigUInt64LE(400n, 24);
  values.set(Engine.AUDIT_NO_SA, v);
  const rows = readAudit({ lookup: (k) => values.get(k.readUInt32LE(0)) ?? null });
  const noSa = rows.find((r) => r.index === Engine.AUDIT_NO_SA)!;
  expect(noSa).toMatchObject({ packets: 7n, bytes: 700n });
  expect(rows.find((r) => r.index === Engine.AUDIT_ENCRYPTED)).toMatchObject({ packets: 0n, bytes: 0n });
});

describeWith(kernelBpf(), 'ebpf-ts audit on pinned engine maps', () => {
  const fds: FD[] = [];
  beforeAll(() => {
    mkdirSync(PIN_DIR, { recursive: true });
    const audit = mapCreate({ type: 6 /* PERCPU_ARRAY */, keySize: 4, valueSize: 16, maxEntries: Engine.AUDIT_REASONS, name: 'audit' });
    const egress = mapCreate({ type: 1 /* HASH */, keySize: 20, valueSize: 104, maxEntries: 16, name: 'encrypt_sa' });
    const ingress = mapCreate({ type: 1, keySize: 12, valueSize: 208, maxEntries: 16, name: 'ingress_sa' });
    fds.push(audit, egress, ingress);
    const cpus = possibleCpus();
    const stride = perCpuValueSize(16) / cpus;
    const perCpu = Buffer.alloc(perCpuValueSize(16));
    for (let cpu = 0; cpu < cpus; cpu++) {
      perCpu.writeBigUInt64LE(5n, cpu * stride);
      perCpu.writeBigUInt64LE(5000n, cpu * stride + 8);
    }
    const key = Buffer.alloc(4);
    key.writeUInt32LE(Engine.AUDIT_ENCRYPTED);
    mapUpdate(audit, key, perCpu);
    const ek = Buffer.alloc(20);
    ek.writeUInt32LE(2, 0);
    ek.set([10, 250, 0, 2], 4);
    const ev = Buffer.alloc(104);
    ev.writeBigUInt64LE(42n, 16);
    ev.writeBigUInt64LE(4200n, 24);
    ev.set(KEY, 32);
    ev.writeUInt32BE(3, 68);
    ev.set([10, 250, 0, 1], 72);
    ev.set([10, 250, 0, 2], 76);
    mapUpdate(egress, ek, ev);
    const ik = Buffer.from([0, 0, 0, 3, 10, 250, 0, 2, 10, 250, 0, 1]);
    const iv = Buffer.alloc(208);
    iv.writeBigUInt64LE(7n, 136);
    iv.writeBigUInt64LE(700n, 144);
    iv.set(KEY, 168);
    mapUpdate(ingress, ik, iv);
    objPin(audit, join(PIN_DIR, 'audit'));
    objPin(egress, join(PIN_DIR, 'encrypt_sa'));
    objPin(ingress, join(PIN_DIR, 'ingress_sa'));
  });
  afterAll(() => {
    for (const fd of fds) fd.close();
    rmSync(PIN_DIR, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/ebpf-ts.js'), 'audit', '--pin-dir', PIN_DIR, ...args], { encoding: 'utf8' });

  it('prints verdicts summed over CPUs and the SAs, without key bytes', () => {
    const r = cli();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`encrypted\\s+${5 * possibleCpus()}\\s+${5000 * possibleCpus()}`));
    expect(r.stdout).toMatch(/egress\s+0x3\s+10\.250\.0\.2\s+42\s+4200/);
    expect(r.stdout).toMatch(/ingress\s+0x3\s+10\.250\.0\.2\s+7\s+700/);
    expect(r.stdout + r.stderr).not.toContain('5a5a5a5a');
    const json = JSON.parse(cli('--json').stdout) as { securityAssociations: unknown[] };
    expect(json.securityAssociations).toHaveLength(2);
  });

  it('says in one line when the engine is not loaded', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/ebpf-ts.js'), 'audit', '--pin-dir', '/sys/fs/bpf/ets-nothing-here'], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('load the engine first');
  });
});
