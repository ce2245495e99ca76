// G5 in the kernel: the ingress replay window under concurrent ingress on two CPUs. Two
// processes (taskset to CPU 0 and CPU 1) run the same N ESP packets, each once and in order,
// through the same loaded ingress program at the same time, so every seq reaches the window
// twice, often at the same instant. With the check-and-advance in one bpf_spin_lock section,
// exactly one of the two deliveries of each seq succeeds: delivered = N, REPLAY drops = N, and no
// seq twice or never (a half-shifted window read lock-free used to drop both copies).
//
// REPLAY_RACE_OBJECT=path runs another engine object (e.g. one built without the lock).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { benchFrame } from '../bench/kernel/objects.ts';
import { view } from '../compiler/dsl/index.ts';
import { IngressSa } from '../engine/maps.ts';
import { DEMO_KEY_FILE } from '../runtime/demo/engine-demo.ts';
import { EngineNode } from '../runtime/engine/node.ts';
import { NodeDirectory } from '../runtime/keys/nodes.ts';
import { KeyManager } from '../runtime/keys/rotation.ts';
import { objPin } from '../runtime/sys/obj.ts';
import { kernelBpf } from './support/env.ts';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const kernel = kernelBpf();
const N = Number(process.env.REPLAY_RACE_PACKETS ?? 20000);
const FRAME = 64;

describe.skipIf(!kernel.ok)('ingress replay window on two CPUs at once (G5)', () => {
  it(`${N} packets, each run on both CPUs: every seq delivered exactly once`, async () => {
    const nodes = new NodeDirectory([
      { name: 'node1', ip: '10.250.0.1' },
      { name: 'node2', ip: '10.250.0.2' },
    ]);
    const started: EngineNode[] = [];
    const start = async (name: string, tag: string, object?: string) => {
      const e = await EngineNode.start({ name, netns: '', linkDev: '', pinDir: `/sys/fs/bpf/ets-race-${process.pid}-${tag}`, nodes, attach: false, object });
      started.push(e);
      return e;
    };
    try {
      const sender = await start('node1', 's');
      const receiver = await start('node2', 'r', process.env.REPLAY_RACE_OBJECT);
      sender.route({ addr: '10.251.2.2', identity: 2, tunnelEndpoint: '10.250.0.2', keyIndex: 1 });
      const keyText = readFileSync(DEMO_KEY_FILE, 'utf8');
      for (const [e, local, peer] of [[sender, 'node1', 'node2'], [receiver, 'node2', 'node1']] as const) {
        const m = new KeyManager({ store: e.store, local: { id: local, bootId: '' }, peers: [{ id: peer, bootId: '' }] });
        await m.applyKeyFile(keyText, DEMO_KEY_FILE);
        m.close();
      }
      // N ESP packets with consecutive sequence numbers.
      const frame = benchFrame(FRAME);
      const chunks: Buffer[] = [];
      for (let i = 0; i < N; i++) {
        const r = sender.object.program('egress').run({ dataIn: frame });
        expect(r.dataOut[23], 'egress made ESP').toBe(50);
        const len = Buffer.alloc(4);
        len.writeUInt32LE(r.dataOut.length);
        chunks.push(len, Buffer.from(r.dataOut));
      }
      const dir = mkdtempSync(join(tmpdir(), 'ets-race-'));
      const packets = join(dir, 'packets');
      writeFileSync(packets, Buffer.concat(chunks as Uint8Array[]));
      const prog = join(`/sys/fs/bpf/ets-race-${process.pid}-r`, 'ingress_prog');
      objPin(receiver.object.program('ingress').fd, prog);

      // Both children load, say `ready`, and start at the same instant (sent once both are ready).
      const tsx = join(root, 'node_modules', '.bin', 'tsx');
      const children = [0, 1].map((cpu) => {
        const p = spawn('taskset', ['-c', String(cpu), tsx, join(root, 'test', 'support', 'replay-child.ts'), prog, packets, String(frame.length)], { stdio: ['pipe', 'pipe', 'inherit'] });
        let out = '';
        const ready = new Promise<void>((done) => p.stdout.on('data', (d) => ((out += String(d)), out.startsWith('ready\n') && done())));
        const result = new Promise<{ began: number; ended: number; delivered: number[]; dropped: number }>((done, fail) =>
          p.on('close', (code) => (code === 0 ? done(JSON.parse(out.slice('ready\n'.length))) : fail(new Error(`replay child on CPU ${cpu} exited with ${code}`)))),
        );
        return { p, ready, result };
      });
      await Promise.all(children.map((c) => c.ready));
      const startAt = Date.now() + 300;
      for (const c of children) c.p.stdin.end(`${startAt}\n`);
      const [a, b] = await Promise.all(children.map((c) => c.result));
      const overlap = Math.min(a.ended, b.ended) - Math.max(a.began, b.began);
      console.log(`replay race: CPU0 ${a.delivered.length} delivered in ${a.ended - a.began} ms, CPU1 ${b.delivered.length} in ${b.ended - b.began} ms, overlapping ${overlap} ms`);
      expect(overlap, 'the two CPUs ran at the same time').toBeGreaterThan(0);

      const times = new Uint8Array(N);
      for (const i of [...a.delivered, ...b.delivered]) times[i]!++;
      const twice = times.reduce((n, t) => n + (t > 1 ? 1 : 0), 0);
      const never = times.reduce((n, t) => n + (t === 0 ? 1 : 0), 0);
      expect({ twice, never }, 'seqs delivered twice / never').toEqual({ twice: 0, never: 0 });
      expect(a.dropped + b.dropped).toBe(N);
      // The per-SA counters agree: N packets, N replay drops, no other drop.
      const sas = [...receiver.object.map('ingress_sa').entries()].map(([, v]) => view(IngressSa, new Uint8Array(v)));
      expect(sas.reduce((n, s) => n + s.packets, 0n)).toBe(BigInt(N));
      expect(sas.reduce((n, s) => n + s.replayDrops, 0n)).toBe(BigInt(N));
      expect(sas.reduce((n, s) => n + s.icvDrops, 0n)).toBe(0n);
    } finally {
      started.forEach((e) => e.stop());
    }
  }, 180_000);
});
