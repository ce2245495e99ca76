// Issue 5, "without root/BPF it runs the same topology in the VM and says so": the VM engine demo
// (runtime/demo/vm-engine-demo.ts) — two nodes, each the compiled engine object in runtime/vm,
// SAs from the Cilium key file through the key runtime — at a small TCP size. Needs no kernel.
// Checked: every TCP stream intact and every datagram delivered and echoed, the link carried
// only ESP and never the plaintext marker, the audit counters equal the frames each node sent and
// delivered, and the pcap + esp_sa it writes decrypt independently with runtime/esp (the
// userspace reference) to the very bytes the demo sent.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_REASONS } from '../runtime/audit.ts';
import { demoPayload, runVmEngineDemo, VM_NODES, type VmEngineDemoResult } from '../runtime/demo/vm-engine-demo.ts';
import { parseIpv4Frame } from '../runtime/demo/frames.ts';
import { readPcap } from '../runtime/demo/pcap.ts';
import { espDecapFrame, EspReceiver, EspSa } from '../runtime/esp/esp.ts';

const TCP_BYTES = 200 * 1024;
const tmp = mkdtempSync(join(tmpdir(), 'ebpf-ts-demo-vm-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the ESP engine demo in the userspace VM', () => {
  const pcap = join(tmp, 'link.pcap');
  let r: VmEngineDemoResult;
  const out: string[] = [];
  beforeAll(async () => {
    r = await runVmEngineDemo({ tcpBytes: TCP_BYTES, pcap, step: (s) => out.push(`==> ${s}`), say: (s) => out.push(s) });
    console.log(`[demo-vm] ${r.link.frames} frames, compile ${Math.round(r.timings.compileMs)} ms, traffic ${Math.round(r.timings.trafficMs)} ms (${Math.round(r.timings.usPerFrame)} µs/frame)`);
  }, 180_000);

  it('delivers TCP (SHA-256 equal, both directions of the conversation) and UDP on the three paths', () => {
    expect(r.problems).toEqual([]);
    expect(Object.keys(r.tcp)).toEqual(['pod→pod', 'pod→node', 'node→pod']);
    for (const [path, t] of Object.entries(r.tcp)) {
      expect(t.problems, path).toEqual([]);
      expect(t.intact, path).toBe(true);
      expect(t.bytes, path).toBe(TCP_BYTES);
      expect(t.sha256, path).toBe(createHash('sha256').update(demoPayload(path, TCP_BYTES)).digest('hex'));
      // SYN, ACK, the data segments, FIN, last ACK; SYN-ACK, delayed ACKs, ACK of FIN, reply, FIN.
      const data = Math.ceil(TCP_BYTES / 1383);
      expect(t.segments, path).toEqual({ toServer: data + 4, toClient: Math.ceil(data / 2) + 4 });
    }
    for (const [path, u] of Object.entries(r.udp)) expect(u, path).toEqual({ sent: 5, received: 5, echoed: 5 });
    expect(out.join('\n')).toContain('in its own userspace VM');
  });

  it('puts only ESP on the link, never the plaintext marker', () => {
    expect(r.link.frames).toBeGreaterThan(0);
    expect(r.link).toEqual({ frames: r.link.frames, esp: r.link.frames, plaintextIpv4: 0, other: 0 });
    expect(r.markerSeen).toBe(false);
    const tcpFrames = Object.values(r.tcp).reduce((n, t) => n + t.segments.toServer + t.segments.toClient, 0);
    expect(r.link.frames).toBe(tcpFrames + 3 * 10);
  });

  it('audits every frame: encrypted = sent by the node, decrypted = delivered to it, no plaintext, no drops', () => {
    const [a, b] = VM_NODES.map((n) => n.name) as [string, string];
    expect(r.frames[a]!.sent).toBe(r.frames[b]!.delivered);
    expect(r.frames[b]!.sent).toBe(r.frames[a]!.delivered);
    expect(r.frames[a]!.sent + r.frames[b]!.sent).toBe(r.link.frames);
    for (const name of [a, b]) {
      const f = r.frames[name]!;
      expect(f.dropped).toBe(0);
      const by = Object.fromEntries(r.audit[name]!.map((x) => [x.reason, x.packets]));
      expect(r.audit[name]!.map((x) => x.reason)).toEqual(AUDIT_REASONS.map(([, reason]) => reason));
      expect(by.encrypted, name).toBe(BigInt(f.sent));
      expect(by.decrypted, name).toBe(BigInt(f.delivered));
      for (const x of r.audit[name]!) if (x.reason !== 'encrypted' && x.reason !== 'decrypted') expect(x.packets, `${name} ${x.reason}`).toBe(0n);
      // The policy's rules (where the object has policy_audit): everything encrypted by one rule.
      const rules = r.rules[name];
      if (rules) {
        expect(rules.reduce((n, x) => n + x.encrypted.packets, 0n), `${name} rules`).toBe(BigInt(f.sent));
        for (const x of rules) expect([x.plaintext.packets, x.dropped.packets], `${name} rule ${x.rule}`).toEqual([0n, 0n]);
      }
      // The per-SA counters agree with the audit.
      const sas = r.sas[name]!;
      expect(sas.map((s) => s.direction).sort()).toEqual(['egress', 'ingress']);
      expect(sas.find((s) => s.direction === 'egress')!.packets).toBe(BigInt(f.sent));
      expect(sas.find((s) => s.direction === 'ingress')!.packets).toBe(BigInt(f.delivered));
    }
  });

  it('writes a pcap of the link and an esp_sa table that decrypt it independently (runtime/esp)', () => {
    expect(r.pcap).toEqual({ file: pcap, saFile: `${pcap}.esp_sa`, frames: r.link.frames });
    const { linkType, frames } = readPcap(readFileSync(pcap));
    expect(linkType).toBe(1);
    expect(frames).toHaveLength(r.link.frames);
    const lines = readFileSync(`${pcap}.esp_sa`, 'utf8').trim().split('\n');
    expect(lines[0]).toMatch(/^# Wireshark ESP SAs/);
    expect(lines).toHaveLength(3); // one egress SA per node
    const receivers = new Map<string, EspReceiver>();
    for (const line of lines.slice(1)) {
      const m = /^"IPv4","([\d.]+)","([\d.]+)","0x([0-9a-f]{8})","AES-GCM with 16 octet ICV \[RFC4106\]","0x([0-9a-f]+)","NULL",""$/.exec(line);
      expect(m, line).not.toBeNull();
      const [, src, dst, spi, keySalt] = m!;
      const bytes = Buffer.from(keySalt!, 'hex');
      expect([20, 36]).toContain(bytes.length);
      const sa = new EspSa({ spi: parseInt(spi!, 16), key: bytes.subarray(0, -4), salt: bytes.subarray(-4), icvLength: 16, mode: 'tunnel', tunnel: { src: src!, dst: dst! } });
      receivers.set(`${src}>${dst}`, new EspReceiver(sa));
    }
    expect([...receivers.keys()].sort()).toEqual([`${VM_NODES[0].nodeIp}>${VM_NODES[1].nodeIp}`, `${VM_NODES[1].nodeIp}>${VM_NODES[0].nodeIp}`]);
    // Decrypt every frame with the reference implementation and reassemble the pod→pod stream.
    const podToPod: Buffer[] = [];
    for (const f of frames) {
      const outer = parseIpv4Frame(f.data)!;
      expect(outer.protocol).toBe(50);
      const opened = espDecapFrame(receivers.get(`${outer.src}>${outer.dst}`)!, f.data);
      expect(opened.ok, opened.ok ? '' : `${opened.reason}: ${opened.detail}`).toBe(true);
      const inner = parseIpv4Frame(Buffer.from((opened as { frame: Uint8Array }).frame))!;
      expect(inner.checksumsOk).toBe(true);
      if (inner.protocol === 6 && inner.src === VM_NODES[0].podIp && inner.dst === VM_NODES[1].podIp) {
        podToPod.push(inner.payload.subarray((inner.payload[12]! >> 4) * 4));
      }
    }
    expect(Buffer.concat(podToPod).equals(demoPayload('pod→pod', TCP_BYTES))).toBe(true);
  });
});
