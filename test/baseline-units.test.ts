// The xfrm baseline's host-side parts, without qemu: Cilium's xfrm configuration, the initramfs
// writer, the parsers of what the guest sends back, the reference ESP codec, and the report.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { espDecrypt, espEncryptTunnel, ipv4Header, ipv4Udp, saFromCiliumKey, udpOf } from '../runtime/baseline/esp.ts';
import { writeNewc } from '../runtime/baseline/initramfs.ts';
import { parseCiliumKeys } from '../runtime/baseline/keys.ts';
import { buildNetprobe } from '../runtime/baseline/tools.ts';
import { renderReport, renderScaleSvg } from '../runtime/baseline/report.ts';
import {
  parseEngineStats,
  parseEspFrame,
  parsePing,
  parseProbe,
  parseXfrmStat,
  parseXfrmStates,
  probeDatagram,
  readPcap,
  writePcap,
} from '../runtime/baseline/results.ts';
import {
  ACTIVE_PORT,
  activePeerFrames,
  ENGINE_INJECTOR_PEER,
  ENGINE_PAIR,
  ENGINE_XFRM,
  engineActiveFrames,
  engineConfig,
  engineScaleFiles,
  NEGATIVE_SEQ,
  pairFiles,
  REFERENCE_SEQ,
  referenceFrames,
  scaleFiles,
  wrongKey,
  XFRM_PAIR,
  type ScalePoint,
} from '../runtime/baseline/scenarios.ts';
import { readPcap as readPcapFrames } from '../runtime/baseline/results.ts';
import { decryptMark, encryptMark, nodeA, nodeB, syntheticPeer, tcMarkLines, xfrmPeerLines } from '../runtime/baseline/topology.ts';
import { all, describeWith, hasTool, isRoot } from './support/env.ts';

const key = parseCiliumKeys('3 rfc4106(gcm(aes)) 48020e4783a5337e16c37d933977e8bd798a75c3 128\n');

describe('Cilium xfrm configuration', () => {
  it('encodes SPI and node ID into the marks as Cilium does', () => {
    // 0x0e00 | spi << 12 | node << 16, and 0x0d00 | node << 16 (pkg/datapath/linux/ipsec).
    expect(encryptMark(3, 2)).toBe(0x23e00);
    expect(decryptMark(2)).toBe(0x20d00);
    expect(encryptMark(15, 0xffff)).toBe(0xfffffe00);
  });

  it('gives each remote node two states and three policies with reqid 1', () => {
    const lines = xfrmPeerLines(nodeA, nodeB, key);
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^xfrm state add src 192\.168\.0\.1 dst 192\.168\.0\.2 proto esp spi 3 reqid 1 mode tunnel mark 0x23e00 mask 0xffffff00 output-mark 0xe00 mask 0xffffff00 aead rfc4106\(gcm\(aes\)\) 0x48020e47\w+ 128$/);
    expect(lines[1]).toContain('src 192.168.0.2 dst 192.168.0.1 proto esp spi 3 reqid 1 mode tunnel mark 0x20d00 mask 0xffff0f00');
    expect(lines[2]).toContain('src 10.0.1.0/24 dst 10.0.2.0/24 dir out mark 0x23e00 mask 0xffffff00 tmpl src 192.168.0.1 dst 192.168.0.2 proto esp spi 3');
    expect(lines[3]).toContain('dir in mark 0xd00 mask 0xf00 tmpl src 192.168.0.2 dst 192.168.0.1');
    expect(lines[4]).toMatch(/dir in mark 0x200 mask 0xf00 .* level use$/);
  });

  it('marks only the remote pod CIDR and ESP from the remote node', () => {
    const lines = tcMarkLines(nodeB, 3);
    expect(lines[1]).toContain('match ip dst 10.0.2.0/24 action skbedit mark 0x23e00');
    expect(lines[3]).toContain('match ip protocol 50 0xff match ip src 192.168.0.2/32 action skbedit mark 0x20d00');
  });

  it('synthetic peers are distinct and never collide with the real nodes', () => {
    const peers = Array.from({ length: 10000 }, (_, i) => syntheticPeer(i + 1));
    for (const field of ['id', 'ip', 'podCidr'] as const) expect(new Set(peers.map((p) => p[field])).size).toBe(10000);
    expect(peers.some((p) => [nodeA.ip, nodeB.ip].includes(p.ip) || [nodeA.id, nodeB.id].includes(p.id))).toBe(false);
    expect(Math.max(...peers.map((p) => p.id))).toBeLessThanOrEqual(0xffff); // node IDs are 16 bits
    expect(() => syntheticPeer(0)).toThrow(RangeError);
  });

  it('scale batches are cumulative and put the real peer first', () => {
    const files = scaleFiles(key, [1, 10, 100], { pingCount: 1, tcpBytes: 1, repetitions: 1 });
    const batch = (name: string) => files.find((f) => f.path === `/scenario/${name}`)!.data!.toString().trim().split('\n');
    expect(batch('scale-1.node-a.xfrm.batch')).toHaveLength(2 + 5);
    expect(batch('scale-1.node-a.xfrm.batch')[2]).toContain(`dst ${nodeB.ip}`);
    expect(batch('scale-10.node-a.xfrm.batch')).toHaveLength(9 * 5);
    expect(batch('scale-100.node-b.xfrm.batch')).toHaveLength(90 * 5);
    expect(() => scaleFiles(key, [10, 1], { pingCount: 1, tcpBytes: 1, repetitions: 1 })).toThrow(RangeError);
  });
});

describe('initramfs (newc)', () => {
  const entries = [
    { path: '/bin/tool', mode: 0o755, data: Buffer.from('#!/bin/sh\necho hi\n') },
    { path: '/lib/modules/baseline/001-x.ko', mode: 0o644, data: Buffer.alloc(1001, 7) },
    { path: '/bin/sh', mode: 0o777, symlink: 'busybox' },
  ];

  it('aligns every record to 4 bytes, adds parent directories and ends with the trailer', () => {
    const a = writeNewc(entries);
    expect(a.length % 4).toBe(0);
    const names: string[] = [];
    let off = 0;
    for (;;) {
      expect(a.toString('ascii', off, off + 6)).toBe('070701');
      const field = (i: number) => parseInt(a.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
      const size = field(6);
      const nameSize = field(11);
      const name = a.toString('ascii', off + 110, off + 110 + nameSize - 1);
      names.push(name);
      off += 110 + nameSize;
      off += (4 - (off % 4)) % 4;
      off += size + ((4 - (size % 4)) % 4);
      if (name === 'TRAILER!!!') break;
    }
    expect(off).toBe(a.length);
    expect(names).toEqual(['bin', 'bin/tool', 'lib', 'lib/modules', 'lib/modules/baseline', 'lib/modules/baseline/001-x.ko', 'bin/sh', 'TRAILER!!!']);
  });

  it('rejects relative and duplicate paths', () => {
    expect(() => writeNewc([{ path: 'x', mode: 0o644 }])).toThrow(/absolute/);
    expect(() => writeNewc([entries[0], entries[0]])).toThrow(/twice/);
  });

  describeWith(hasTool('cpio'), 'read back by cpio(1)', () => {
    it('extracts the same bytes, modes and links', () => {
      const dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-newc-'));
      try {
        execFileSync('cpio', ['-i', '-d', '--quiet', '--no-absolute-filenames'], { cwd: dir, input: writeNewc(entries) });
        expect(readFileSync(join(dir, 'bin/tool'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
        expect(readFileSync(join(dir, 'lib/modules/baseline/001-x.ko'))).toEqual(Buffer.alloc(1001, 7));
        expect(execFileSync('stat', ['-c', '%a %F', join(dir, 'bin/tool')]).toString().trim()).toBe('755 regular file');
        expect(execFileSync('readlink', [join(dir, 'bin/sh')]).toString().trim()).toBe('busybox');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

// Real output of iproute2 6.1 from the 6.12 guest, trimmed to one SA.
const STATE = `src 192.168.0.2 dst 192.168.0.1
\tproto esp spi 0x00000003(3) reqid 1(0x00000001) mode tunnel
\treplay-window 0 seq 0x00000000 flag  (0x00000000)
\tmark 0x20d00/0xffff0f00 output-mark 0xd00/0xffffff00
\taead rfc4106(gcm(aes)) 0x48020e4783a5337e16c37d933977e8bd798a75c3 (160 bits) 128
\tlastused 2026-11-26 13:57:49
\tanti-replay context: seq 0x0, oseq 0x0, bitmap 0x00000000
\tsel src 0.0.0.0/0 dst 0.0.0.0/0 uid 0
\tlifetime config:
\t  limit: soft (INF)(bytes), hard (INF)(bytes)
\t  limit: soft (INF)(packets), hard (INF)(packets)
\t  expire add: soft 0(sec), hard 0(sec)
\t  expire use: soft 0(sec), hard 0(sec)
\tlifetime current:
\t  4405196(bytes), 3451(packets)
\t  add 2026-11-26 13:57:34 use 2026-11-26 13:57:35
\tstats:
\t  replay-window 0 replay 0 failed 4
`;

describe('parsers of guest results', () => {
  it('reads ip -s xfrm state', () => {
    expect(parseXfrmStates(STATE + STATE.replace('src 192.168.0.2 dst 192.168.0.1', 'src 192.168.0.1 dst 192.168.0.2'))).toEqual([
      { src: '192.168.0.2', dst: '192.168.0.1', spi: 3, reqid: 1, mode: 'tunnel', mark: { value: 0x20d00, mask: 0xffff0f00 }, bytes: 4405196, packets: 3451, replayWindow: 0, replay: 0, failed: 4 },
      expect.objectContaining({ src: '192.168.0.1', dst: '192.168.0.2' }),
    ]);
    expect(() => parseXfrmStates(STATE.replace(/\tstats:[^]*$/, ''))).toThrow(/was -s given/);
    expect(parseXfrmStates('')).toEqual([]);
  });

  it('reads /proc/net/xfrm_stat and refuses anything else', () => {
    expect(parseXfrmStat('XfrmInError             \t0\nXfrmInStateProtoError   \t4\n')).toEqual({ XfrmInError: 0, XfrmInStateProtoError: 4 });
    expect(() => parseXfrmStat('cat: /proc/net/xfrm_stat: No such file or directory\n')).toThrow(/not an xfrm_stat/);
  });

  it('reads busybox ping and netprobe summaries', () => {
    const ping = 'PING 10.0.2.10 (10.0.2.10): 56 data bytes\n\n--- 10.0.2.10 ping statistics ---\n500 packets transmitted, 499 packets received, 0% packet loss\nround-trip min/avg/max = 0.512/1.173/9.871 ms\n';
    expect(parsePing(ping)).toEqual({ transmitted: 500, received: 499, min: 0.512, avg: 1.173, max: 9.871 });
    expect(() => parsePing('ping: sendto: Network unreachable\n')).toThrow();
    const probe = 'udp-recv listening port=4000\nudp-recv ok=32 bad=0 bytes=32000 elapsed_ns=1234\n';
    expect(parseProbe(probe, 'udp-recv')).toEqual({ ok: '32', bad: '0', bytes: '32000', elapsed_ns: '1234' });
    expect(() => parseProbe('udp-recv listening port=4000\n', 'udp-recv')).toThrow(/no "udp-recv" summary/);
  });

  it('round-trips pcap files', () => {
    const frames = [Buffer.from('a'.repeat(60)), Buffer.from('b'.repeat(1514))];
    expect(readPcap(writePcap(frames))).toEqual(frames);
    expect(() => readPcap(writePcap(frames).subarray(0, 120))).toThrow(/truncated/);
    expect(() => readPcap(writePcap(frames).subarray(0, 110))).toThrow(/truncated/);
  });
});

describe('reference ESP codec (RFC 4303 tunnel mode, RFC 4106 AES-GCM)', () => {
  const sa = saFromCiliumKey(key, nodeA.ip, nodeB.ip);

  it('splits Cilium key material into AES key and salt', () => {
    expect(sa.aesKey.toString('hex')).toBe('48020e4783a5337e16c37d933977e8bd');
    expect(sa.salt.toString('hex')).toBe('798a75c3');
    expect(sa.icvBytes).toBe(16);
  });

  it('builds valid IPv4 headers', () => {
    const h = ipv4Header('10.0.1.10', '10.0.2.10', 17, 100);
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += h.readUInt16BE(i);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    expect(sum).toBe(0xffff);
  });

  it('round-trips every padding length and lays out the frame as RFC 4303 says', () => {
    for (const size of [4, 5, 6, 7, 1000]) {
      const inner = ipv4Udp(nodeA.podIp, nodeB.podIp, 40000, 4002, probeDatagram(9, size));
      const iv = Buffer.from('0001020304050607', 'hex');
      const frame = espEncryptTunnel(sa, inner, 77, iv, { src: nodeA.mac, dst: nodeB.mac });
      const esp = parseEspFrame(frame);
      expect(esp).toMatchObject({ src: nodeA.ip, dst: nodeB.ip, spi: 3, seq: 77 });
      expect(esp.payload.subarray(0, 8)).toEqual(iv);
      // IV + (inner + pad + 2) rounded to 4 + ICV
      expect(esp.payload.length).toBe(8 + Math.ceil((inner.length + 2) / 4) * 4 + 16);
      const d = espDecrypt(sa, frame);
      expect(d).toMatchObject({ seq: 77, nextHeader: 4, padLength: (4 - ((inner.length + 2) % 4)) % 4 });
      expect(d.inner).toEqual(inner);
      expect(udpOf(d.inner).payload).toEqual(probeDatagram(9, size));
    }
  });

  it("builds the all-peers-active frames: one per peer, each from that peer's addresses", () => {
    const frames = activePeerFrames(key, 300);
    expect(frames).toHaveLength(300);
    for (const [j, frame] of frames.entries()) {
      const peer = j === 0 ? { ip: nodeA.ip, pod: nodeA.podIp } : { ip: syntheticPeer(j).ip, pod: syntheticPeer(j).podCidr.replace('0/24', '10') };
      const d = espDecrypt(saFromCiliumKey(key, peer.ip, nodeB.ip), frame);
      expect(d).toMatchObject({ src: peer.ip, dst: nodeB.ip, spi: 3, seq: j + 1 });
      expect(udpOf(d.inner)).toMatchObject({ src: peer.pod, dst: nodeB.podIp, dport: ACTIVE_PORT, payload: probeDatagram(j, 64) });
    }
  });

  it('refuses a frame whose ICV does not verify (tampered, or another key)', () => {
    const frame = referenceFrames(key, 1, 100)[0];
    const tampered = Buffer.from(frame);
    tampered[tampered.length - 20] ^= 1;
    expect(() => espDecrypt(sa, tampered)).toThrow();
    expect(() => espDecrypt(saFromCiliumKey(wrongKey(key), nodeA.ip, nodeB.ip), frame)).toThrow();
  });
});

describeWith(all(isRoot(), hasTool('cc'), hasTool('unshare')), 'netprobe payloads', () => {
  it('match the TypeScript mirror of its pattern (in a private network namespace)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-netprobe-'));
    try {
      const np = buildNetprobe();
      const pcap = join(dir, 'lo.pcap');
      const script = [
        'ip link set lo up',
        // Loopback shows each datagram twice (outgoing and incoming): 6 frames for 3 datagrams.
        `${np} capture lo ${pcap} 6 5000 17 > ${dir}/cap &`,
        `while ! grep -q listening ${dir}/cap 2>/dev/null; do sleep 0.05; done`,
        `${np} udp-recv 4000 3 5000 > ${dir}/recv &`,
        `while ! grep -q listening ${dir}/recv 2>/dev/null; do sleep 0.05; done`,
        `${np} udp-send 127.0.0.1 4000 3 777`,
        'wait',
      ].join('\n');
      writeFileSync(join(dir, 'run.sh'), script);
      execFileSync('unshare', ['-n', 'sh', join(dir, 'run.sh')], { timeout: 20_000 });
      expect(readFileSync(join(dir, 'recv'), 'utf8')).toContain('udp-recv ok=3 bad=0');
      const payloads = readPcap(readFileSync(pcap)).map((f) => udpOf(f.subarray(14)).payload.toString('hex'));
      expect(payloads).toHaveLength(6);
      expect([...new Set(payloads)]).toEqual([0, 1, 2].map((seq) => probeDatagram(seq, 777).toString('hex')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('report', () => {
  const points: ScalePoint[] = [
    { peers: 1, sad: 2, spd: 5, installSeconds: 0.6, memoryPerPeerKiB: 0, rttUs: 1000, rttMedianUs: 1100, tcpMbps: 20, tcpMedianMbps: 18, perPacketUs: 500, perPacketRunsUs: [500, 550, 700], espPackets: 4600, activeInboundUs: 100, activeInboundRunsUs: [100, 120, 130] },
    { peers: 1000, sad: 2000, spd: 3002, installSeconds: 17, memoryPerPeerKiB: 9.5, rttUs: 1100, rttMedianUs: 1200, tcpMbps: 19, tcpMedianMbps: 17, perPacketUs: 600, perPacketRunsUs: [600, 610, 620], espPackets: 4600, activeInboundUs: 300, activeInboundRunsUs: [300, 310, 320] },
    { peers: 10000, sad: 20000, spd: 30002, installSeconds: 150, memoryPerPeerKiB: 9.1, rttUs: 1300, rttMedianUs: 1400, tcpMbps: 15, tcpMedianMbps: 14, perPacketUs: 900, perPacketRunsUs: [900, 950, 1000], espPackets: 4600, activeInboundUs: 2000, activeInboundRunsUs: [2000, 2100, 2200] },
  ];
  const input = {
    date: '2026-01-01T00:00:00Z',
    accel: 'tcg' as const,
    host: 'test host',
    qemu: 'QEMU emulator version 7.2',
    kernel: { package: 'linux-image-6.12.95+deb12-amd64-unsigned', version: '6.12.95-1~bpo12+1', release: '6.12.95+deb12-amd64' },
    aeadDriver: 'rfc4106-gcm-aesni-avx',
    keyFile: 'examples/keys/cilium-ipsec-keys',
    pairMissing: 'not run in this test',
    scale: { guest: undefined as never, problems: [], points, aeadDriver: '', inputStateCache: true },
    engineXfrmMissing: 'not run in this test',
    enginePairMissing: 'not run in this test',
    engineScaleMissing: 'not run in this test',
    wallSeconds: 300,
  };
  const enginePoints: ScalePoint[] = points.map((p) => ({ ...p, sad: 2 * p.peers + 2, spd: p.peers + 1, memoryPerPeerKiB: 0.5, installSeconds: p.peers / 10000, perPacketUs: 300, perPacketRunsUs: [300, 310, 320], activeInboundUs: 50, activeInboundRunsUs: [50, 55, 60] }));
  const pairOutcome = (problems: string[] = []) =>
    ({
      problems,
      tcp: { aToB: { bytes: 4 << 20, bad: 0, elapsedNs: 1e9 }, bToA: { bytes: 4 << 20, bad: 0, elapsedNs: 2e9 } },
      tcpAToBEspPackets: 3200,
      tcpBToAEspPackets: 3100,
    }) as never;

  it('marks emulated numbers, shows every scale point and never invents engine numbers', () => {
    const md = renderReport(input);
    expect(md).toContain('emulated (TCG)');
    expect(md).toMatch(/\| 4 scale \| 10,000 \| xfrm — emulated \(TCG\) \| 15\.0 \| 900 \| 2,000 \| 1,300 \|/);
    // Scenarios 2 (both directions), 3, and the engine side of scale: not run, with the reason, no numbers.
    const engineRows = md.split('\n').filter((l) => l.includes('not run in this test'));
    expect(engineRows.length).toBe(1 + 3 + 1);
    for (const row of engineRows.filter((r) => !r.startsWith('| 1 '))) expect(row.split('|').slice(4, 8).map((c) => c.trim())).toEqual(Array(4).fill('—'));
    expect(md).toContain('| 10,000 | 900 | 1.80× | 900, 950, 1,000 | 2,000 | 20.00× | 2,000, 2,100, 2,200 | 14.0 | 1,400 | 9.1 | 150.0 |');
    expect(md).toContain('| 1 | 500 | 1.00× | 500, 550, 700 | 100 | 1.00× | 100, 120, 130 | 18.0 | 1,100 | — | 0.60 |');
    expect(md).toContain('per-CPU inbound SA cache');
    expect(md).not.toMatch(/NaN|undefined/);
  });

  it('draws both xfrm curves with one point per scale point', () => {
    const svg = renderScaleSvg(points, { accel: 'tcg', enginePending: 'pending engine' });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<circle /g)).toHaveLength(6);
    const lines = [...svg.matchAll(/<polyline points="([^"]+)"/g)].map((m) => m[1].split(' '));
    expect(lines.map((l) => l.length)).toEqual([3, 3]);
    expect(svg).toContain('engine (encryption map): pending engine');
    expect(svg).not.toMatch(/NaN/);
  });

  it('puts the engine rows of scenarios 2–4 beside xfrm and draws its curves', () => {
    const md = renderReport({
      ...input,
      pair: undefined,
      engineXfrm: pairOutcome(),
      enginePair: pairOutcome(['tcp a->b: 0 of 4194304 bytes']),
      engineScale: { guest: undefined as never, problems: [], points: enginePoints, aeadDriver: '', inputStateCache: undefined },
      engineXfrmMissing: undefined,
      enginePairMissing: undefined,
      engineScaleMissing: undefined,
    });
    // a->b: 4 MiB in 1 s over 3,200 packets; b->a in 2 s over 3,100.
    expect(md).toMatch(/\| 2 engine → xfrm \| 1 \| engine encrypts, xfrm decrypts — emulated \(TCG\) \| 33\.6 \(single run\) \| 313 \(single run\) \| — \| — \| pass/);
    expect(md).toMatch(/\| 2 xfrm → engine \| 1 \| xfrm encrypts, engine decrypts — emulated \(TCG\) \| 16\.8 \(single run\) \| 645 \(single run\) \| — \| — \| pass/);
    expect(md).toMatch(/\| 3 engine ↔ engine \| 1 \| engine — emulated \(TCG\) \| .* \*\*FAIL\*\*: 1 problem/);
    expect(md).toContain('- scenario 3: tcp a->b: 0 of 4194304 bytes');
    expect(md).toContain('| 4 scale | 10,000 | engine — emulated (TCG) | 15.0 | 300 | 50 | 1,300 | 20,002 SA-map entries, 10,001 ipcache entries per node; installed in 1.00 s |');
    expect(md).toContain('### engine');
    expect(md).toContain('| 10,000 | 300 | 1.00× | 300, 310, 320 | 50 | 1.00× | 50, 55, 60 | 14.0 | 1,400 | 512 | 1.0 |');
    expect(md).toContain('The engine\'s ingress pulls nonlinear ESP');
    expect(md).not.toMatch(/lineariz|workaround/i);
    expect(md).not.toMatch(/NaN|undefined|pending/);
    const svg = renderScaleSvg(points, { accel: 'tcg', enginePoints });
    expect([...svg.matchAll(/<polyline /g)]).toHaveLength(4);
    expect(svg).toContain('engine (encryption map), one flow');
    expect(svg).not.toContain('not run');
  });
});

describe('engine scenarios (host side)', () => {
  it('configures the engine with the SA Cilium gives xfrm: key file key and salt, SPI = key index', () => {
    const c = engineConfig(nodeA, nodeB, key);
    expect(c).toMatchObject({ name: 'node-a', ip: nodeA.ip, dev: 'eth0', peer: { name: 'node-b', ip: nodeB.ip, podIp: nodeB.podIp } });
    expect(c.key).toEqual({ spi: 3, keyHex: '48020e4783a5337e16c37d933977e8bd', saltHex: '798a75c3', icvBits: 128 });
  });

  it('puts xfrm batches or the engine configuration on each node by role', () => {
    const names = (roles: typeof XFRM_PAIR) => pairFiles(key, { udpCount: 2, udpSize: 100, tcpBytes: 1000 }, roles).map((f) => f.path).filter((p) => /node-[ab]\./.test(p)).sort();
    expect(names(XFRM_PAIR)).toEqual(['/scenario/node-a.tc.batch', '/scenario/node-a.xfrm.batch', '/scenario/node-b.tc.batch', '/scenario/node-b.xfrm.batch']);
    expect(names(ENGINE_XFRM)).toEqual(['/scenario/node-a.engine.json', '/scenario/node-b.tc.batch', '/scenario/node-b.xfrm.batch']);
    expect(names(ENGINE_PAIR)).toEqual(['/scenario/node-a.engine.json', '/scenario/node-b.engine.json']);
    // The engine's configuration is the same whether its peer runs xfrm or the engine.
    const cfg = (roles: typeof XFRM_PAIR) => JSON.parse(pairFiles(key, { udpCount: 2, udpSize: 100, tcpBytes: 1000 }, roles).find((f) => f.path === '/scenario/node-a.engine.json')!.data!.toString());
    expect(cfg(ENGINE_XFRM)).toEqual(engineConfig(nodeA, nodeB, key));
    expect(cfg(ENGINE_PAIR)).toEqual(engineConfig(nodeA, nodeB, key));
  });

  it('numbers host-built frames above anything a node sends, the negative control above the reference', () => {
    const files = pairFiles(key, { udpCount: 3, udpSize: 100, tcpBytes: 1000 }, ENGINE_PAIR);
    const seqs = (path: string) => readPcapFrames(files.find((f) => f.path === path)!.data as Buffer).map((f) => parseEspFrame(f).seq);
    expect(seqs('/scenario/reference-a-to-b.pcap')).toEqual([REFERENCE_SEQ, REFERENCE_SEQ + 1, REFERENCE_SEQ + 2]);
    expect(seqs('/scenario/wrong-key-a-to-b.pcap')[0]).toBe(NEGATIVE_SEQ);
    expect(NEGATIVE_SEQ).toBeGreaterThan(REFERENCE_SEQ + 1000);
  });

  it('gives every all-peers-active run fresh sequence numbers per peer (the engine has a replay window)', () => {
    const files = engineScaleFiles(key, [1, 5], { pingCount: 1, tcpBytes: 1, repetitions: 2, activePackets: 10 });
    const seen = new Map<string, Set<number>>();
    for (const f of files.filter((f) => /active-5\.\d\.pcap$/.test(f.path))) {
      for (const frame of readPcapFrames(f.data as Buffer)) {
        const e = parseEspFrame(frame);
        const s = seen.get(e.src) ?? new Set();
        expect(s.has(e.seq), `${e.src} seq ${e.seq} repeated`).toBe(false);
        s.add(e.seq);
        seen.set(e.src, s);
      }
    }
    // 5 peers: the injector in node-a's place, synthetic 1..4; run 0 one round, runs 1–2 two each.
    expect([...seen.keys()].sort()).toEqual([ENGINE_INJECTOR_PEER, 1, 2, 3, 4].map((i) => syntheticPeer(i).ip).sort());
    // After point 1's runs (seqs 1–21: one, then two runs of ten), point 5's continue at 22.
    for (const s of seen.values()) expect([...s].sort((a, b) => a - b)).toEqual([22, 23, 24, 25, 26]);
    expect(files.find((f) => f.path === '/scenario/active-5.1.count')!.data!.toString()).toBe('10\n');
    // Peers added per point: the injector and nothing else at 1, synthetic 1..4 at 5.
    const added = (n: number, node: string) => JSON.parse(files.find((f) => f.path === `/scenario/scale-${n}.${node}.peers.json`)!.data!.toString());
    expect(added(1, 'node-b')).toHaveLength(1);
    expect(added(5, 'node-a').map((p: { ip: string }) => p.ip)).toEqual([1, 2, 3, 4].map((i) => syntheticPeer(i).ip));
    const cfg = JSON.parse(files.find((f) => f.path === '/scenario/node-b.engine.json')!.data!.toString());
    expect(cfg.maxEntries).toEqual({ encrypt_sa: 21, ingress_sa: 21 });
  });

  it('decrypts the engine active frames with each peer\'s SA', () => {
    const frames = engineActiveFrames(key, 3, 2, 7);
    expect(frames).toHaveLength(6);
    const d = espDecrypt(saFromCiliumKey(key, syntheticPeer(2).ip, nodeB.ip), frames[5]);
    expect(d).toMatchObject({ seq: 8, dst: nodeB.ip });
    expect(udpOf(d.inner)).toMatchObject({ dst: nodeB.podIp, dport: ACTIVE_PORT });
  });

  it('parses the engine counters line of guest-engine.ts', () => {
    const st = parseEngineStats(
      'noise\nengine: stats pair egress_packets=941 egress_bytes=1145400 egress_dropped=0 ingress_packets=1194 ingress_bytes=1142680 ingress_replay=3 ingress_icv=4 audit_0=941 audit_1=1194 audit_2=66 audit_5=3\n',
    );
    expect(st).toMatchObject({ tag: 'pair', egressPackets: 941, ingressPackets: 1194, ingressReplay: 3, ingressIcv: 4 });
    expect(st.audit).toEqual([941, 1194, 66, 0, 0, 3]);
    expect(() => parseEngineStats('engine: stats x egress_packets=none')).toThrow(/egress_packets/);
    expect(() => parseEngineStats('engine: error ...')).toThrow(/no engine stats/);
  });
});
