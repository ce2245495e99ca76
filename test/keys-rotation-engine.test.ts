// Issue 6, "Rotation under traffic: zero loss, zero plaintext" with the kernel engine: two nodes with
// a pod each (as runtime/demo/engine-demo.ts), SAs from the shipped Cilium key file, then — while a
// sequence-numbered UDP stream and a SHA-256-checked TCP transfer run pod1→pod2 — a rotation to a
// fresh key with a higher key ID (node2, then node1). Every datagram must arrive, TCP must be
// intact, the capture of the link must hold only ESP (under both SPIs), and after the grace period
// the old SPI must be gone from both nodes' stores.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readAudit } from '../runtime/audit.ts';
import { DEMO_KEY_FILE } from '../runtime/demo/engine-demo.ts';
import { censusOf, readPcap } from '../runtime/demo/pcap.ts';
import { buildTopology, spawnIn, type Topology } from '../runtime/demo/topology.ts';
import { tcpTransfer, type TcpResult } from '../runtime/demo/transfer.ts';
import { EngineNode, buildEngine } from '../runtime/engine/node.ts';
import { generateKeyLine } from '../runtime/keys/generate.ts';
import { NodeDirectory } from '../runtime/keys/nodes.ts';
import { KeyManager } from '../runtime/keys/rotation.ts';
import { all, describeWith, hasTool, kernelAtLeast, kernelBpf } from './support/env.ts';

const GRACE_MS = 2000;
const MARKER = 'ebpf-ts-rotation-marker';
const UDP_PORT = 5410;
const TCP_PORT = 5411;
/** How long the UDP stream runs; the rotation happens at least ROTATE_AT_MS into it. */
const STREAM_MS = 6000;
const ROTATE_AT_MS = 1000;
/** Sized to outlast the rotation (180–360 Mb/s measured between namespaces here: 2–4 s). */
const TCP_BYTES = 96 * 1024 * 1024;
/** Rotate once this much has left node1 under the old key, i.e. with the TCP transfer in full flow. */
const ROTATE_AFTER_BYTES = 8n * 1024n * 1024n;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A receiver that collects sequence numbers until it sees "END" (or times out), and a sender that
// emits one datagram per millisecond tick for a fixed time, then "END" a few times.
const RECEIVER = `
const s = require('node:dgram').createSocket('udp4');
const seen = new Map();
const done = () => { process.stdout.write(JSON.stringify({ arrivals: [...seen] }) + '\\n'); process.exit(0); };
setTimeout(done, ${STREAM_MS + 30_000});
s.on('message', (m) => { const t = m.toString(); if (t === 'END') return done(); const i = t.lastIndexOf('-'); seen.set(Number(t.slice(i + 1)), Date.now()); });
s.bind(${UDP_PORT}, () => process.stdout.write(JSON.stringify({ listening: true }) + '\\n'));
`;
const sender = (ip: string) => `
const s = require('node:dgram').createSocket('udp4');
let seq = 0, inflight = 0;
const t0 = Date.now();
const tick = setInterval(() => {
  if (Date.now() - t0 >= ${STREAM_MS}) {
    clearInterval(tick);
    const fin = () => { if (inflight > 0) return setTimeout(fin, 5); setTimeout(() => { let n = 0; const e = setInterval(() => { s.send('END', ${UDP_PORT}, '${ip}'); if (++n === 5) { clearInterval(e); setTimeout(() => { process.stdout.write(JSON.stringify({ sent: seq }) + '\\n'); process.exit(0); }, 50); } }, 100); }, 500); };
    return fin();
  }
  inflight++;
  s.send('${MARKER}-' + seq++, ${UDP_PORT}, '${ip}', () => inflight--);
}, 1);
`;

function nodeIn(ns: string, script: string): { child: ChildProcess; line: () => Promise<Record<string, unknown>> } {
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  let stderr = '';
  const waiting: Array<(l: string) => void> = [];
  const lines: string[] = [];
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const w = waiting.shift();
      if (w) w(l);
      else lines.push(l);
    }
  });
  const line = () =>
    new Promise<Record<string, unknown>>((ok, fail) => {
      const l = lines.shift();
      if (l !== undefined) return ok(JSON.parse(l));
      const t = setTimeout(() => fail(new Error(`no output from node in ${ns}: ${stderr.trim()}`)), STREAM_MS + 40_000);
      waiting.push((x) => (clearTimeout(t), ok(JSON.parse(x))));
      child.once('exit', (c) => setTimeout(() => fail(new Error(`node in ${ns} exited ${c}: ${stderr.trim()}`)), 100));
    });
  return { child, line };
}

/** The SPI of every ESP frame on the link, in capture order. */
function espSpis(frames: { data: Buffer }[]): number[] {
  return frames.filter((f) => f.data.length >= 38 && f.data.readUInt16BE(12) === 0x0800 && f.data[23] === 50).map((f) => f.data.readUInt32BE(14 + (f.data[14]! & 0x0f) * 4));
}

type Gate = 'immediate' | 'peer-ack';

interface World {
  topo: Topology;
  engines: EngineNode[];
  managers: KeyManager[];
  children: ChildProcess[];
  /** peerReady calls made by onIngressReady (peer-ack), to await before looking at the stores. */
  acks: Promise<void>[];
  capture: string;
  tcpdump?: ChildProcess;
}

const worlds = new Set<World>();

async function setUp(gate: Gate): Promise<World> {
  const topo = buildTopology({ podRouteMtu: 1423 });
  const w: World = { topo, engines: [], managers: [], children: [], acks: [], capture: `/tmp/ets-${topo.tag}-rotation.pcap` };
  worlds.add(w);
  const [n1, n2] = topo.nodes;
  const nodes = new NodeDirectory([
    { name: 'node1', ip: n1.nodeIp },
    { name: 'node2', ip: n2.nodeIp },
  ]);
  for (const [name, n] of [['node1', n1], ['node2', n2]] as const) {
    w.engines.push(await EngineNode.start({ name, netns: n.ns, linkDev: n.linkDev, pinDir: `/sys/fs/bpf/ets-${topo.tag}-${name}`, nodes }));
  }
  const [e1, e2] = w.engines as [EngineNode, EngineNode];
  for (const [e, peer] of [[e1, n2], [e2, n1]] as const) {
    e.route({ addr: peer.podIp, identity: 2, tunnelEndpoint: peer.nodeIp, keyIndex: 1 });
    e.route({ addr: peer.nodeIp, identity: 1, tunnelEndpoint: peer.nodeIp, keyIndex: 1 });
  }
  const byName = new Map<string, KeyManager>();
  for (const [e, local, peer] of [[e1, 'node1', 'node2'], [e2, 'node2', 'node1']] as const) {
    const m = new KeyManager({
      store: e.store,
      local: { id: local, bootId: '' },
      peers: [{ id: peer, bootId: '' }],
      graceMs: GRACE_MS,
      egressGate: gate,
      // peer-ack: announce our new ingress SPI to the peer's manager (the agent's job in a cluster).
      onIngressReady: gate === 'peer-ack' ? (spis) => { for (const [p, spi] of spis) w.acks.push(byName.get(p)!.peerReady(local, spi)); } : undefined,
    });
    byName.set(local, m);
    w.managers.push(m);
  }
  const keyText = readFileSync(DEMO_KEY_FILE, 'utf8');
  for (const m of w.managers) expect(await m.applyKeyFile(keyText, DEMO_KEY_FILE)).toBe('installed');
  await Promise.all(w.acks);
  return w;
}

function tearDown(w: World): void {
  worlds.delete(w);
  for (const c of w.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (w.tcpdump && w.tcpdump.exitCode === null) w.tcpdump.kill('SIGKILL');
  for (const m of w.managers) m.close();
  const problems: string[] = [];
  for (const e of w.engines) {
    try {
      e.stop();
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  problems.push(...w.topo.destroy());
  rmSync(w.capture, { force: true });
  if (problems.length > 0) console.warn(`left behind: ${problems.join('; ')}`);
}

async function egressBytes(e: EngineNode): Promise<bigint> {
  return (await e.store.list()).filter((s) => s.direction === 'egress').reduce((a, s) => a + s.bytes, 0n);
}

async function rotateUnderTraffic(gate: Gate): Promise<void> {
  const w = await setUp(gate);
  try {
    const [n1, n2] = w.topo.nodes;
    const [e1, e2] = w.engines as [EngineNode, EngineNode];
    const [m1, m2] = w.managers as [KeyManager, KeyManager];
    const oldSpis = new Set((await e1.store.list()).map((sa) => sa.spi));
    expect(oldSpis.size).toBe(1);
    const oldSpi = [...oldSpis][0]!;
    const newKeyId = oldSpi + 1;
    const newKeyText = `${generateKeyLine({ spi: newKeyId, aesBits: 128 })}\n`;

    const tcpdump = (w.tcpdump = spawnIn(n1.ns, 'tcpdump', ['-i', n1.linkDev, '-U', '-n', '-s', '96', '-w', w.capture]));
    await new Promise<void>((ok, fail) => {
      const t = setTimeout(() => fail(new Error('tcpdump did not start')), 10_000);
      tcpdump.stderr!.on('data', (d: Buffer) => d.toString().includes('listening') && (clearTimeout(t), ok()));
      tcpdump.on('exit', (c) => fail(new Error(`tcpdump exited ${c}`)));
    });

    const rx = nodeIn(n2.podNs, RECEIVER);
    w.children.push(rx.child);
    expect(await rx.line()).toEqual({ listening: true });
    const tx = nodeIn(n1.podNs, sender(n2.podIp));
    w.children.push(tx.child);
    const streamStart = Date.now();
    let tcpEnd = 0;
    const tcp: Promise<TcpResult> = tcpTransfer(n1.podNs, n2.podNs, n2.podIp, TCP_BYTES, TCP_PORT).finally(() => (tcpEnd = Date.now()));
    tcp.catch(() => {});

    // Rotate with the stream running and the TCP transfer in full flow.
    await sleep(ROTATE_AT_MS);
    while ((await egressBytes(e1)) < ROTATE_AFTER_BYTES && Date.now() - streamStart < STREAM_MS - 2000) await sleep(20);
    const bytesBefore = await egressBytes(e1);
    const rotateStart = Date.now();
    // node2 first: its new ingress SA is in place before node1 sends under the new key.
    expect(await m2.applyKeyFile(newKeyText, 'rotated-keys')).toBe('rotated');
    expect(await m1.applyKeyFile(newKeyText, 'rotated-keys')).toBe('rotated');
    await Promise.all(w.acks);
    const rotateEnd = Date.now();
    // Right after the rotation both ingress SAs are installed (grace), egress uses the new SPI.
    for (const e of w.engines) {
      const sas = await e.store.list();
      expect(sas.filter((s) => s.direction === 'ingress').map((s) => s.spi).sort()).toEqual([oldSpi, newKeyId]);
      expect(sas.filter((s) => s.direction === 'egress').map((s) => s.spi)).toEqual([newKeyId]);
    }

    const [sent, received, tcpResult] = await Promise.all([tx.line(), rx.line(), tcp]);
    const streamEnd = Date.now();
    await sleep(300);
    tcpdump.kill('SIGINT');
    await new Promise((r) => tcpdump.once('exit', r));

    const total = Number(sent.sent);
    const arrivals = received.arrivals as [number, number][];
    const seqs = new Set(arrivals.map(([seq]) => seq));
    const before = arrivals.filter(([, t]) => t < rotateStart).length;
    const after = arrivals.filter(([, t]) => t > rotateEnd).length;
    const missing = Array.from({ length: total }, (_, i) => i).filter((i) => !seqs.has(i));
    console.log(
      `[${gate}] rotation ${oldSpi}→${newKeyId} at +${rotateStart - streamStart} ms after ${(Number(bytesBefore) / 1e6).toFixed(1)} MB (took ${rotateEnd - rotateStart} ms); ` +
        `UDP ${seqs.size}/${total} over ${streamEnd - streamStart} ms (${before} before, ${after} after the rotation); TCP ${(tcpResult.bytes / 1e6).toFixed(1)} MB ${tcpResult.intact ? 'intact' : 'CORRUPTED'} ${tcpResult.mbps.toFixed(0)} Mb/s, ended +${tcpEnd - streamStart} ms`,
    );
    // Both flows really spanned the rotation.
    expect(bytesBefore, 'TCP in flow before the rotation').toBeGreaterThanOrEqual(ROTATE_AFTER_BYTES);
    expect(tcpEnd, 'TCP still running after the rotation').toBeGreaterThan(rotateEnd);
    expect(before, 'datagrams before the rotation').toBeGreaterThan(200);
    // Liveness, not correctness (every datagram is checked below): the sender is paced by time,
    // and a loaded 2-CPU machine sends fewer, so these only say the stream went on.
    expect(after, 'datagrams after the rotation').toBeGreaterThan(300);
    expect(total).toBeGreaterThan(500);
    expect(missing.slice(0, 20), `${missing.length} datagrams lost`).toEqual([]);
    expect(tcpResult.intact).toBe(true);
    expect(tcpResult.bytes).toBe(TCP_BYTES);

    const frames = readPcap(readFileSync(w.capture)).frames;
    const census = censusOf(frames);
    const spis = espSpis(frames);
    const bySpi = new Map<number, number>();
    for (const s of spis) bySpi.set(s, (bySpi.get(s) ?? 0) + 1);
    console.log(
      `[${gate}] link: ${census.frames} frames, ${census.esp} ESP (${[...bySpi].map(([s, n]) => `SPI ${s}: ${n}`).join(', ')}), ${census.plaintextIpv4} plaintext IPv4, ${census.other} other; ` +
        `first new-SPI frame #${spis.indexOf(newKeyId)}, last old-SPI frame #${spis.lastIndexOf(oldSpi)}`,
    );
    expect(census.plaintextIpv4).toBe(0);
    expect(frames.some((f) => f.data.includes(MARKER))).toBe(false);
    expect([...bySpi.keys()].sort()).toEqual([oldSpi, newKeyId]);
    expect(bySpi.get(oldSpi)).toBeGreaterThan(100);
    expect(bySpi.get(newKeyId)).toBeGreaterThan(100);

    // Drops a rotation can cause: a packet under an SPI the receiver does not have (yet, or any
    // more), no egress SA, or a key mismatch. (Replay drops are counted and printed, not asserted
    // here: the ingress replay window is updated without a lock, and under multi-CPU ingress a few
    // reverse-direction packets have been seen dropped as "replay" with or without a rotation in
    // the window — a separate engine issue; any loss on the pod1→pod2 stream fails above.)
    const ROTATION_DROPS = ['dropped: no SA (fail closed)', 'dropped: unknown SPI', 'dropped: bad ICV'];
    const dropped: Record<string, bigint> = {};
    for (const e of w.engines) {
      const m = e.object.map('audit');
      const rows = readAudit(m, Math.ceil(m.valueSize / 8) * 8);
      const drops = rows.filter((r) => r.reason.startsWith('dropped') && r.packets > 0n);
      console.log(`[${gate}] ${e.options.name} audit drops: ${drops.map((r) => `${r.reason}=${r.packets}`).join(', ') || 'none'}`);
      expect(rows.find((r) => r.reason === 'encrypted')!.packets).toBeGreaterThan(0n);
      expect(rows.find((r) => r.reason === 'decrypted')!.packets).toBeGreaterThan(0n);
      dropped[e.options.name] = rows.filter((r) => ROTATION_DROPS.includes(r.reason)).reduce((a, r) => a + r.packets, 0n);
    }
    // The pod1→pod2 data arrives at node2: no rotation drop there in either mode. With
    // 'immediate', node2 (rotated first) switches its egress before node1 has the new ingress SA,
    // so a few reverse-direction packets (TCP ACKs) die at node1 as "unknown SPI" (TCP recovers);
    // 'peer-ack' closes that window, so there no rotation drop may happen anywhere.
    expect(dropped.node2, 'rotation drops at node2').toBe(0n);
    if (gate === 'peer-ack') expect(dropped.node1, 'rotation drops at node1').toBe(0n);

    // After the grace period the old ingress SAs are removed (the manager's timer, or expire()).
    const wait = rotateEnd + GRACE_MS + 200 - Date.now();
    if (wait > 0) await sleep(wait);
    await Promise.all([m1.expire(), m2.expire()]);
    for (const e of w.engines) {
      const sas = await e.store.list();
      expect(sas.some((s) => s.spi === oldSpi), `${e.options.name} still has SPI ${oldSpi}`).toBe(false);
      expect(sas.map((s) => `${s.direction}:${s.spi}`).sort()).toEqual([`egress:${newKeyId}`, `ingress:${newKeyId}`]);
    }
  } finally {
    tearDown(w);
  }
}

describeWith(
  all(kernelBpf(), kernelAtLeast(6, 10, 'bpf_crypto kfuncs'), hasTool('ip'), hasTool('tcpdump'), hasTool('ethtool'), hasTool('nsenter')),
  'key rotation under traffic in the kernel engine',
  () => {
    beforeAll(() => buildEngine(), 120_000);
    afterAll(() => {
      for (const w of [...worlds]) tearDown(w);
    });

    for (const gate of ['immediate', 'peer-ack'] as const) {
      it(`egressGate '${gate}': rotates mid-stream with no lost datagram, intact TCP, only ESP (both SPIs) on the link, old SPI gone after grace`, { timeout: 120_000 }, () =>
        rotateUnderTraffic(gate),
      );
    }
  },
);
