// The engine end to end in network namespaces (issue 5): two nodes with a pod each, the engine
// attached to the link, SAs from the shipped Cilium key file. TCP (≥ 50 MB, SHA-256 checked) and
// UDP on pod→pod, pod→node and node→pod; the capture of the link holds only ESP and never the
// plaintext marker; and scapy — an independent ESP implementation — decrypts the captured frames
// with the SAs the demo exports in Wireshark's esp_sa format.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runEngineDemo, type EngineDemoResult } from '../runtime/demo/engine-demo.ts';
import { readPcap } from '../runtime/demo/pcap.ts';
import { internetChecksum, l4Checksum } from '../runtime/demo/frames.ts';
import { EspSa, espOpen } from '../runtime/esp/esp.ts';
import { all, describeWith, hasTool, kernelAtLeast, kernelBpf } from './support/env.ts';
import { hasScapy, scapyBatch } from './support/scapy.ts';

const dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeWith(all(kernelBpf(), kernelAtLeast(6, 10, 'bpf_crypto kfuncs'), hasTool('ip'), hasTool('tcpdump'), hasTool('ethtool'), hasTool('nsenter')), 'ESP engine between namespaces', () => {
  let result: EngineDemoResult;
  const pcap = join(dir, 'link.pcap');

  it('delivers TCP and UDP intact on all three paths', { timeout: 300_000 }, async () => {
    result = await runEngineDemo({ tcpBytes: 50 * 1024 * 1024, pcap });
    expect(result.tcp['pod→pod']!.bytes).toBeGreaterThanOrEqual(50 * 1024 * 1024);
    for (const [path, t] of Object.entries(result.tcp)) expect(t.intact, `TCP ${path}`).toBe(true);
    for (const [path, u] of Object.entries(result.udp)) expect(u.received, `UDP ${path}`).toBe(u.sent);
  });

  it('the link between the nodes carried only ESP', () => {
    expect(result.link.esp).toBeGreaterThan(30_000);
    expect(result.link.plaintextIpv4).toBe(0);
    expect(result.markerSeen).toBe(false);
    for (const rows of Object.values(result.audit)) {
      const noSa = rows.find((r) => r.reason.startsWith('dropped: no SA'))!;
      expect(noSa.packets).toBe(0n);
      expect(rows.find((r) => r.reason === 'encrypted')!.packets).toBeGreaterThan(0n);
    }
  });

  it('every captured ESP frame opens, and every inner IPv4/TCP/UDP checksum verifies (node-local CHECKSUM_PARTIAL traffic completed before encryption)', () => {
    const sas = new Map<string, EspSa>();
    for (const line of readFileSync(`${pcap}.esp_sa`, 'utf8').split('\n')) {
      const f = /^"IPv4","([\d.]+)","([\d.]+)","0x([0-9a-f]+)","AES-GCM with 16 octet ICV \[RFC4106\]","0x([0-9a-f]+)","NULL",""$/.exec(line);
      if (!f) continue;
      const keySalt = Buffer.from(f[4]!, 'hex');
      sas.set(`${f[1]}>${f[2]}`, new EspSa({ spi: parseInt(f[3]!, 16), key: keySalt.subarray(0, keySalt.length - 4), salt: keySalt.subarray(keySalt.length - 4), mode: 'tunnel' }));
    }
    const dotted = (b: Uint8Array) => [...b].join('.');
    const counts = { frames: 0, tcp: 0, udp: 0, other: 0, badL4: 0, badIp: 0, notOpened: 0 };
    for (const f of readPcap(readFileSync(pcap)).frames) {
      if (f.data.readUInt16BE(12) !== 0x0800 || f.data[23] !== 50) continue;
      counts.frames++;
      const outer = f.data.subarray(14);
      const sa = sas.get(`${dotted(outer.subarray(12, 16))}>${dotted(outer.subarray(16, 20))}`);
      const opened = sa ? espOpen(sa, outer.subarray(20, outer.readUInt16BE(2))) : undefined;
      if (!opened?.ok || opened.nextHeader !== 4) {
        counts.notOpened++;
        continue;
      }
      const inner = Buffer.from(opened.payload.subarray(0, Buffer.from(opened.payload).readUInt16BE(2)));
      const ihl = (inner[0]! & 15) * 4;
      if (internetChecksum(inner.subarray(0, ihl)) !== 0) counts.badIp++;
      const proto = inner[9]!;
      if (proto !== 6 && proto !== 17) {
        counts.other++;
        continue;
      }
      const segment = inner.subarray(ihl);
      if (proto === 17 && segment.readUInt16BE(6) === 0) continue; // no UDP checksum
      counts[proto === 6 ? 'tcp' : 'udp']++;
      if (l4Checksum(dotted(inner.subarray(12, 16)), dotted(inner.subarray(16, 20)), proto, segment) !== 0) counts.badL4++;
    }
    expect(counts.frames).toBeGreaterThan(30_000);
    expect(counts.tcp).toBeGreaterThan(30_000);
    expect(counts.udp).toBeGreaterThan(0);
    expect({ notOpened: counts.notOpened, badIp: counts.badIp, badL4: counts.badL4 }).toEqual({ notOpened: 0, badIp: 0, badL4: 0 });
  });

  const scapy = hasScapy();
  it.skipIf(!scapy.ok)(`scapy decrypts the captured ESP with the exported SAs${scapy.ok ? '' : ` (skipped: ${scapy.reason})`}`, () => {
    const sas = new Map<string, { spi: number; key: Buffer; salt: Buffer }>();
    for (const line of readFileSync(`${pcap}.esp_sa`, 'utf8').split('\n')) {
      const f = /^"IPv4","([\d.]+)","([\d.]+)","0x([0-9a-f]+)","AES-GCM with 16 octet ICV \[RFC4106\]","0x([0-9a-f]+)","NULL",""$/.exec(line);
      if (!f) continue;
      const keySalt = Buffer.from(f[4]!, 'hex');
      sas.set(`${f[1]}>${f[2]}`, { spi: parseInt(f[3]!, 16), key: keySalt.subarray(0, keySalt.length - 4), salt: keySalt.subarray(keySalt.length - 4) });
    }
    expect(sas.size).toBe(2);
    const frames = readPcap(readFileSync(pcap)).frames.filter((f) => f.data.readUInt16BE(12) === 0x0800 && f.data[23] === 50);
    // Both directions, from the start, the middle and the end of the capture.
    const picked = [...frames.slice(0, 20), ...frames.slice(frames.length / 2, frames.length / 2 + 20), ...frames.slice(-20)];
    const requests = picked.map((f) => {
      const ip = f.data.subarray(14);
      const flow = `${[...ip.subarray(12, 16)].join('.')}>${[...ip.subarray(16, 20)].join('.')}`;
      const sa = sas.get(flow)!;
      return { op: 'decrypt' as const, sa: { spi: sa.spi, key: sa.key, salt: sa.salt, icv: 16 as const, mode: 'tunnel' as const }, packet: Buffer.from(ip) };
    });
    const replies = scapyBatch(requests);
    for (const r of replies) {
      expect(r.ok, JSON.stringify(r).slice(0, 200)).toBe(true);
      if (r.ok && 'inner' in r) {
        expect(r.pad_ok).toBe(true);
        expect(r.nh).toBe(4);
        expect(r.inner.startsWith('45')).toBe(true); // an IPv4 packet inside
      }
    }
  });
});
