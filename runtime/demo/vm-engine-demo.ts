// The engine demo without the kernel (no root, no BPF, or --vm-only): the same two nodes with a
// pod each as runtime/demo/engine-demo.ts, but every node is an instance of the compiled engine
// object in the userspace VM (runtime/vm) instead of a network namespace with tcx programs.
//
//   pod1 (10.251.1.2) ─ node1 (10.251.1.1 | 10.250.0.1) ═══ link ═══ node2 (10.250.0.2 | 10.251.2.1) ─ pod2 (10.251.2.2)
//
// What is the same as in the kernel: the DSL source (the policy file the kernel demo compiles,
// examples/policy-node-pair.ts by default, or engine/esp.ts) compiled to an ELF object and read back from that ELF; the maps filled by the same key runtime path
// (KeyManager → EngineSaStore, per-node-pair SAs derived from the Cilium key file, a crypto
// context per key slot made by running `crypto_setup`); the ipcache routes; the addresses.
// What differs: no namespaces, sockets or tcx. Frames are synthesized (Ethernet + IPv4 + TCP/UDP,
// every checksum valid), each one runs through the sending node's `egress` program in its VM, is
// recorded as "the link" (what tcpdump would see), and runs through the receiving node's
// `ingress` program; the endpoints check checksums, sequence numbers and SHA-256 of the streams
// as a TCP/UDP stack would. AES runs through node:crypto where the kernel has the bpf_crypto
// kfuncs.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encode, TC_ACT_OK, TC_ACT_REDIRECT } from '../../compiler/dsl/index.ts';
import { readObject } from '../../compiler/elf/reader.ts';
import { CryptoKey, CryptoSetupArgs } from '../../engine/esp.ts';
import * as Engine from '../../engine/maps.ts';
import { readAudit, readPolicyAudit, ruleNamesOf, type AuditRow, type RuleRow } from '../audit.ts';
import type { IpcacheRoute } from '../engine/node.ts';
import { EngineSaStore, KEY_MAPS, vmMapAccess } from '../keys/engine-store.ts';
import { NodeDirectory } from '../keys/nodes.ts';
import { KeyManager } from '../keys/rotation.ts';
import type { ObjectSpec } from '../../compiler/elf/spec.ts';
import { createMap, VmObject } from '../vm/index.ts';
import {
  ethernetFrame,
  parseIpv4Frame,
  tcpPacket,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_SYN,
  udpPacket,
  type Ipv4Endpoints,
  type ParsedIpv4,
} from './frames.ts';
import { censusOf, espSaTable, writePcap, type LinkCensus, type PcapFrame } from './pcap.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEMO_KEY_FILE = join(ROOT, 'examples/keys/cilium-ipsec-keys');
export const ENGINE_SOURCE = join(ROOT, 'engine/esp.ts');
/** What the kernel demo compiles by default (engine-demo.ts DEMO_POLICY): per-node-pair SAs. */
export const DEMO_POLICY = join(ROOT, 'examples/policy-node-pair.ts');
export const MARKER = 'ebpf-ts-plaintext-marker';
/** Cilium lowers the pod routes' MTU by the ESP overhead (1423 in the seed), as the kernel topology does. */
export const POD_ROUTE_MTU = 1423;
const MSS = POD_ROUTE_MTU - 40;
/**
 * The most TCP the CLI sends pod→pod in the VM (MB): it interprets every instruction, about 2.5 ms
 * per full-sized frame (egress + ingress), so 1 MB per path keeps the demo near 10 s.
 */
export const VM_TCP_MB_MAX = 1;

/** The kernel topology's addresses (runtime/demo/topology.ts), and a MAC per link end. */
export const VM_NODES = [
  { name: 'node1', nodeIp: '10.250.0.1', podIp: '10.251.1.2', linkMac: [0x02, 0, 0, 0xfa, 0, 0x01] },
  { name: 'node2', nodeIp: '10.250.0.2', podIp: '10.251.2.2', linkMac: [0x02, 0, 0, 0xfa, 0, 0x02] },
] as const;

export interface VmEngineDemoOptions {
  /** Bytes sent pod→pod over TCP; pod→node and node→pod send min(this, 1 MiB). Default 1 MiB. */
  tcpBytes?: number;
  /** Write the link's frames to this pcap file, and the SAs to FILE.esp_sa (Wireshark). */
  pcap?: string;
  /** The engine's DSL source: a policy file (examples/policy-*.ts) or engine/esp.ts; default
   *  DEMO_POLICY as the kernel demo (engine/esp.ts where that file is absent). */
  source?: string;
  keyFile?: string;
  /** Crypto driver the crypto contexts name (the VM implements both with node:crypto). */
  algo?: 'aes' | 'aes-generic';
  step?: (s: string) => void;
  say?: (s: string) => void;
}

export interface VmTcpResult {
  bytes: number;
  /** The server's SHA-256 equals the client's, the byte counts match, and the server's reply (its digest) reached the client. */
  intact: boolean;
  sha256: string;
  /** Segments client→server and server→client (handshake, data, ACKs, reply, FINs). */
  segments: { toServer: number; toClient: number };
  seconds: number;
  /** Payload megabits per second through the two VMs. */
  mbps: number;
  problems: string[];
}

export interface VmUdpResult {
  sent: number;
  received: number;
  /** Echoed by the receiver and received back by the sender. */
  echoed: number;
}

export interface VmEngineDemoResult {
  tcp: Record<string, VmTcpResult>;
  udp: Record<string, VmUdpResult>;
  link: LinkCensus;
  markerSeen: boolean;
  audit: Record<string, AuditRow[]>;
  /** Per policy rule (policy_audit, where the object has it), named from the source's RULE_… constants. */
  rules: Record<string, RuleRow[] | undefined>;
  /** Per node: frames its egress put on the link, frames its ingress delivered, and drops. */
  frames: Record<string, { sent: number; delivered: number; dropped: number }>;
  /** Egress/ingress verdicts other than pass, and deliveries that differ from what was sent. */
  problems: string[];
  sas: Record<string, { direction: 'egress' | 'ingress'; spi: number; peer: string; packets: bigint; bytes: bigint }[]>;
  timings: { compileMs: number; setupMs: number; trafficMs: number; usPerFrame: number };
  pcap?: { file: string; saFile: string; frames: number };
}

// ---------------------------------------------------------------------------------------------
// A node: the engine object in its own VM, its maps filled by the key runtime.

const ipv4Number = (text: string): number => text.split('.').reduce((n, p) => n * 256 + Number(p), 0);
const u32Key = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

export class VmEngineNode {
  readonly vm: VmObject;
  readonly store: EngineSaStore;
  cryptoSetups = 0;
  sent = 0;
  delivered = 0;
  dropped = 0;

  constructor(
    spec: ObjectSpec,
    readonly options: { name: string; nodes: NodeDirectory; algo?: 'aes' | 'aes-generic' },
  ) {
    this.vm = new VmObject(spec, { seed: 1 });
    // The key runtime's bookkeeping map lives beside the engine's maps, as in the kernel.
    const meta = KEY_MAPS.find((m) => m.name === 'sa_meta')!;
    const saMeta = createMap({ ...meta });
    this.store = new EngineSaStore({
      maps: {
        encryptSa: vmMapAccess(this.vm.map('encrypt_sa')),
        ingressSa: vmMapAccess(this.vm.map('ingress_sa')),
        ghashTables: vmMapAccess(this.vm.map('ghash_tables')),
        saMeta: vmMapAccess(saMeta),
      },
      nodes: options.nodes,
      localNode: options.name,
      onKeySlot: (slot, key) => this.createCryptoContext(slot, key),
    });
  }

  /** As EngineNode.route: traffic to `addr` is encrypted towards `tunnelEndpoint`. */
  route(r: IpcacheRoute): void {
    const key = Buffer.from(encode(Engine.IpcacheKey, { prefixlen: r.prefixlen ?? 32, addr: ipv4Number(r.addr) }));
    const value = Buffer.from(encode(Engine.IpcacheEntry, { identity: r.identity, tunnelEndpoint: ipv4Number(r.tunnelEndpoint), keyIndex: r.keyIndex }));
    this.vm.map('ipcache').update(key, value);
  }

  /** As EngineNode.createCryptoContext: key into crypto_keys, run crypto_setup in the VM, wipe the key copy. */
  private createCryptoContext(slot: number, key: Buffer): void {
    const keys = this.vm.map('crypto_keys');
    const algo = this.options.algo === 'aes' ? Engine.CRYPTO_ALGO_AES : Engine.CRYPTO_ALGO_AES_GENERIC;
    const value = Buffer.from(encode(CryptoKey, { key: [...key], keyLength: key.length, algo }));
    try {
      keys.update(u32Key(slot), value);
      const args = Buffer.from(encode(CryptoSetupArgs, { keyIndex: slot, err: 0 }));
      const r = this.vm.runProgram('crypto_setup', { ctx: args });
      const rc = Number(BigInt.asIntN(32, r.retval));
      if (rc !== 0) throw new Error(`${this.options.name}: crypto_setup for key slot ${slot} failed: ${rc} (err ${r.ctx?.readInt32LE(4) ?? '?'})`);
      this.cryptoSetups++;
    } finally {
      value.fill(0);
      keys.update(u32Key(slot), Buffer.alloc(value.length));
    }
  }

  run(program: 'egress' | 'ingress', frame: Buffer): { verdict: number; packet: Buffer } {
    const r = this.vm.runProgram(program, { packet: frame });
    return { verdict: Number(BigInt.asUintN(32, r.retval)), packet: r.packet };
  }

  audit(): AuditRow[] {
    const m = this.vm.map('audit');
    return readAudit({ lookup: (k) => m.lookup(k) ?? null }, Math.ceil(m.valueSize / 8) * 8);
  }

  /** The policy's per-rule counters; undefined for an object without policy_audit. */
  rules(names: Record<number, string>): RuleRow[] | undefined {
    const m = this.vm.maps.get('policy_audit');
    return m && readPolicyAudit({ lookup: (k) => m.lookup(k) ?? null }, Math.ceil(m.valueSize / 8) * 8, names);
  }
}

/** Compile the engine's source in memory and read the object back from its ELF, as the kernel loader would. */
export async function compileEngineObject(source = ENGINE_SOURCE): Promise<{ spec: ObjectSpec; elfBytes: number }> {
  const { compileFile, formatDiagnostic } = await import('../../compiler/compile.ts');
  const r = compileFile(relative(process.cwd(), source) || source, { elf: true });
  if (r.failed || !r.elf) throw new Error(`${relative(ROOT, source)} does not compile:\n${r.diagnostics.map(formatDiagnostic).join('\n')}`);
  return { spec: readObject(r.elf), elfBytes: r.elf.length };
}

// ---------------------------------------------------------------------------------------------
// The demo.

const VERDICTS: Record<number, string> = { 0: 'TC_ACT_OK', 2: 'TC_ACT_SHOT', 7: 'TC_ACT_REDIRECT' };
const verdictName = (v: number): string => VERDICTS[v] ?? `verdict ${v}`;

interface Endpoint {
  node: VmEngineNode;
  peer: VmEngineNode;
  ip: string;
  /** The TTL its packets have on the link: 64 sent by the node itself, 63 forwarded from its pod. */
  ttl: number;
  port: number;
}

export async function runVmEngineDemo(o: VmEngineDemoOptions = {}): Promise<VmEngineDemoResult> {
  const step = o.step ?? (() => {});
  const say = o.say ?? (() => {});
  const source = o.source ?? (existsSync(DEMO_POLICY) ? DEMO_POLICY : ENGINE_SOURCE);
  const keyFile = o.keyFile ?? DEMO_KEY_FILE;
  const rel = (p: string): string => relative(ROOT, p) || p;

  const what = resolve(source) === ENGINE_SOURCE ? rel(source) : `the policy ${rel(source)} with the engine (its egress; ingress and crypto_setup from engine/esp.ts)`;
  step(`compile ${what} in memory and read the object back from its ELF`);
  let t0 = performance.now();
  const { spec, elfBytes } = await compileEngineObject(source);
  const compileMs = performance.now() - t0;
  say(`${elfBytes} bytes, programs ${spec.programs.map((p) => p.name).join(', ')}; ${Math.round(compileMs)} ms`);

  step(
    `two nodes, each the engine object in its own userspace VM: ${VM_NODES.map((n) => `${n.name} ${n.nodeIp} (pod ${n.podIp})`).join(', ')}; ` +
      `SAs from ${rel(keyFile)} (per-node-pair keys derived with HKDF) through KeyManager → EngineSaStore, a crypto context per key slot from crypto_setup run in the VM`,
  );
  t0 = performance.now();
  const directory = new NodeDirectory(VM_NODES.map((n) => ({ name: n.name, ip: n.nodeIp })));
  const nodes = VM_NODES.map((n) => new VmEngineNode(spec, { name: n.name, nodes: directory, algo: o.algo })) as [VmEngineNode, VmEngineNode];
  const [n1, n2] = nodes;
  const managers: KeyManager[] = [];
  try {
    const keyText = readFileSync(keyFile, 'utf8');
    for (const [node, peer] of [[n1, VM_NODES[1]], [n2, VM_NODES[0]]] as const) {
      // The policy of startClusterEngines: the other node and its pod are encrypted to that node.
      node.route({ addr: peer.podIp, identity: 2, tunnelEndpoint: peer.nodeIp, keyIndex: 1 });
      node.route({ addr: peer.nodeIp, identity: 1, tunnelEndpoint: peer.nodeIp, keyIndex: 1 });
      const m = new KeyManager({ store: node.store, local: { id: node.options.name, bootId: '' }, peers: [{ id: peer.name, bootId: '' }] });
      managers.push(m);
      await m.applyKeyFile(keyText, keyFile);
    }
    const setupMs = performance.now() - t0;
    for (const n of nodes) for (const sa of await n.store.list()) say(`${n.options.name}: ${sa.direction} SA spi 0x${sa.spi.toString(16)} ↔ ${sa.remoteNode}`);
    say(`crypto contexts: ${nodes.map((n) => `${n.options.name} ${n.cryptoSetups}`).join(', ')}; ${Math.round(setupMs)} ms`);

    // The link: every frame an egress program let out, in order, as a capture of it would hold.
    const link: PcapFrame[] = [];
    const problems: string[] = [];
    const macOf = (n: VmEngineNode) => VM_NODES.find((x) => x.name === n.options.name)!.linkMac;
    /** One IPv4 packet from `from` over the link to `to`: egress, link, ingress; the delivered packet or null. */
    const transmit = (from: VmEngineNode, to: VmEngineNode, ip: Buffer, what: string): ParsedIpv4 | null => {
      const frame = ethernetFrame(macOf(to), macOf(from), 0x0800, ip);
      const out = from.run('egress', Buffer.from(frame));
      if (out.verdict !== TC_ACT_OK && out.verdict !== TC_ACT_REDIRECT) {
        from.dropped++;
        problems.push(`${what}: ${from.options.name} egress ${verdictName(out.verdict)}`);
        return null;
      }
      const now = performance.timeOrigin + performance.now();
      link.push({ seconds: Math.floor(now / 1000), fraction: Math.floor((now % 1000) * 1000), data: out.packet });
      from.sent++;
      const back = to.run('ingress', Buffer.from(out.packet));
      if (back.verdict !== TC_ACT_OK) {
        to.dropped++;
        problems.push(`${what}: ${to.options.name} ingress ${verdictName(back.verdict)}`);
        return null;
      }
      to.delivered++;
      if (!back.packet.equals(frame)) problems.push(`${what}: ${to.options.name} delivered a frame that differs from the one ${from.options.name} sent`);
      return parseIpv4Frame(back.packet);
    };

    step(`send TCP and UDP on the three paths (synthesized frames, valid checksums, MSS ${MSS} for the pod route MTU ${POD_ROUTE_MTU}); egress of the sender → link → ingress of the receiver`);
    const tcpBytes = Math.max(1, Math.round(o.tcpBytes ?? VM_TCP_MB_MAX * (1 << 20)));
    const paths = [
      ['pod→pod', { ip: VM_NODES[0].podIp, ttl: 63 }, { ip: VM_NODES[1].podIp, ttl: 63 }],
      ['pod→node', { ip: VM_NODES[0].podIp, ttl: 63 }, { ip: VM_NODES[1].nodeIp, ttl: 64 }],
      ['node→pod', { ip: VM_NODES[0].nodeIp, ttl: 64 }, { ip: VM_NODES[1].podIp, ttl: 63 }],
    ] as const;
    const tcp: Record<string, VmTcpResult> = {};
    const udp: Record<string, VmUdpResult> = {};
    t0 = performance.now();
    let i = 0;
    for (const [label, c, s] of paths) {
      const client: Endpoint = { node: n1, peer: n2, ip: c.ip, ttl: c.ttl, port: 40000 + i };
      const server: Endpoint = { node: n2, peer: n1, ip: s.ip, ttl: s.ttl, port: 5201 };
      tcp[label] = tcpConversation(label, client, server, label === 'pod→pod' ? tcpBytes : Math.min(tcpBytes, 1 << 20), transmit);
      udp[label] = udpExchange(label, { ...client, port: 41000 + i }, { ...server, port: 5300 }, transmit);
      const t = tcp[label]!;
      const u = udp[label]!;
      say(
        `${label.padEnd(9)} TCP ${(t.bytes / 1e6).toFixed(1)} MB ${t.intact ? 'intact (SHA-256 equal)' : 'CORRUPTED'}, ${t.segments.toServer}+${t.segments.toClient} segments, ` +
          `${t.mbps.toFixed(1)} Mb/s in the VM; UDP ${u.received}/${u.sent}, echoed ${u.echoed}/${u.sent}`,
      );
      for (const p of t.problems.slice(0, 3)) say(`    ${p}`);
      i++;
    }
    const trafficMs = performance.now() - t0;

    const census = censusOf(link);
    const markerSeen = link.some((f) => f.data.includes(MARKER));
    step('what crossed the link');
    say(`${census.frames} frames: ${census.esp} ESP, ${census.plaintextIpv4} plaintext IPv4, ${census.other} other; plaintext marker ${markerSeen ? 'SEEN' : 'never seen'}`);
    say(`${nodes.map((n) => `${n.options.name} put ${n.sent} on the link, delivered ${n.delivered}, dropped ${n.dropped}`).join('; ')}`);
    const usPerFrame = (trafficMs * 1000) / Math.max(1, census.frames);
    say(`${(trafficMs / 1000).toFixed(1)} s of traffic: ${Math.round(usPerFrame)} µs per frame (egress + ingress, interpreted)`);
    for (const p of problems.slice(0, 5)) say(`problem: ${p}`);

    let pcap: VmEngineDemoResult['pcap'];
    if (o.pcap) {
      writeFileSync(o.pcap, writePcap(link));
      writeFileSync(`${o.pcap}.esp_sa`, await espSaTable(nodes));
      pcap = { file: o.pcap, saFile: `${o.pcap}.esp_sa`, frames: link.length };
      say(`wrote ${o.pcap} (${link.length} frames) and ${o.pcap}.esp_sa (Wireshark: Protocols → ESP → ESP SAs; demo keys only)`);
    }

    const audit: Record<string, AuditRow[]> = {};
    const rules: Record<string, RuleRow[] | undefined> = {};
    const names = ruleNamesOf(readFileSync(source, 'utf8'));
    const sas: VmEngineDemoResult['sas'] = {};
    const frames: VmEngineDemoResult['frames'] = {};
    for (const n of nodes) {
      audit[n.options.name] = n.audit();
      rules[n.options.name] = n.rules(names);
      sas[n.options.name] = (await n.store.list()).map((sa) => ({ direction: sa.direction, spi: sa.spi, peer: sa.remoteNode, packets: sa.packets, bytes: sa.bytes }));
      frames[n.options.name] = { sent: n.sent, delivered: n.delivered, dropped: n.dropped };
    }
    return { tcp, udp, link: census, markerSeen, audit, rules, frames, problems, sas, timings: { compileMs, setupMs, trafficMs, usPerFrame }, pcap };
  } finally {
    for (const m of managers) m.close();
  }
}

type Transmit = (from: VmEngineNode, to: VmEngineNode, ip: Buffer, what: string) => ParsedIpv4 | null;

/** `bytes` of deterministic payload: 1 KiB blocks, each a marker line then pseudo-random bytes. */
export function demoPayload(label: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let seed = 0x9e3779b9;
  for (let off = 0, block = 0; off < bytes; off += 1024, block++) {
    const line = Buffer.from(`${MARKER} ${label} block ${String(block).padStart(6, '0')}\n`);
    const b = Buffer.alloc(1024);
    line.copy(b);
    for (let i = line.length; i < 1024; i++) {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      b[i] = seed & 0xff;
    }
    b.copy(out, off, 0, Math.min(1024, bytes - off));
  }
  return out;
}

/** One end of a TCP connection: what it sent, and a receiver that accepts only in-order, checksummed segments. */
class TcpEnd {
  sndNxt: number;
  rcvNxt = 0;
  synced = false;
  finReceived = false;
  /** Highest ACK received from the peer. */
  acked = 0;
  readonly hash = createHash('sha256');
  receivedBytes = 0;
  received: Buffer[] = [];
  segmentsSent = 0;
  constructor(
    readonly ep: Endpoint,
    readonly remote: Endpoint,
    isn: number,
    private readonly keep: boolean,
  ) {
    this.sndNxt = isn;
  }

  packet(flags: number, payload: Buffer = Buffer.alloc(0), mss?: number): Buffer {
    const e: Ipv4Endpoints = { src: this.ep.ip, dst: this.remote.ip, ttl: this.ep.ttl, id: this.segmentsSent };
    const p = tcpPacket(e, { srcPort: this.ep.port, dstPort: this.remote.port, seq: this.sndNxt, ack: flags & TCP_ACK ? this.rcvNxt : 0, flags, mss }, payload);
    this.sndNxt = (this.sndNxt + payload.length + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0)) >>> 0;
    this.segmentsSent++;
    return p;
  }

  /** Take a delivered packet; a problem (the segment is then ignored, as a stack would drop it) or undefined. */
  accept(p: ParsedIpv4 | null): string | undefined {
    if (!p) return 'not delivered';
    if (p.protocol !== 6 || p.src !== this.remote.ip || p.dst !== this.ep.ip) return `unexpected packet ${p.src}→${p.dst} protocol ${p.protocol}`;
    if (!p.checksumsOk) return 'bad checksum';
    const t = p.payload;
    if (t.readUInt16BE(0) !== this.remote.port || t.readUInt16BE(2) !== this.ep.port) return 'wrong ports';
    const seq = t.readUInt32BE(4);
    const flags = t[13]!;
    const data = t.subarray((t[12]! >> 4) * 4);
    if (flags & TCP_SYN) {
      this.rcvNxt = (seq + 1) >>> 0;
      this.synced = true;
    } else {
      if (!this.synced) return 'segment before SYN';
      if (seq !== this.rcvNxt) return `out of order: seq ${seq}, expected ${this.rcvNxt}`;
      if (data.length > 0) {
        this.hash.update(data);
        if (this.keep) this.received.push(Buffer.from(data));
        this.receivedBytes += data.length;
        this.rcvNxt = (this.rcvNxt + data.length) >>> 0;
      }
      if (flags & TCP_FIN) {
        this.rcvNxt = (this.rcvNxt + 1) >>> 0;
        this.finReceived = true;
      }
    }
    if (flags & TCP_ACK) this.acked = t.readUInt32BE(8);
    return undefined;
  }
}

/**
 * A whole TCP connection, scripted as the two stacks would exchange it: SYN (MSS), SYN-ACK (MSS),
 * ACK; the client's data in MSS-sized segments, the server ACKing every second segment (delayed
 * ACK) and the last; the client's FIN; the server ACKs it, answers with its SHA-256 of what it
 * received (as the kernel demo's transfer agent reports it), and closes; the client ACKs.
 */
function tcpConversation(label: string, client: Endpoint, server: Endpoint, bytes: number, transmit: Transmit): VmTcpResult {
  const problems: string[] = [];
  const c = new TcpEnd(client, server, 0x1000_0000, true);
  const s = new TcpEnd(server, client, 0x7000_0000, false);
  const toServer = (p: Buffer, what: string) => {
    const e = s.accept(transmit(client.node, server.node, p, `${label} TCP ${what}`));
    if (e) problems.push(`${label} TCP ${what} → server: ${e}`);
  };
  const toClient = (p: Buffer, what: string) => {
    const e = c.accept(transmit(server.node, client.node, p, `${label} TCP ${what}`));
    if (e) problems.push(`${label} TCP ${what} → client: ${e}`);
  };
  const payload = demoPayload(label, bytes);
  const sent = createHash('sha256').update(payload).digest('hex');
  const t0 = performance.now();
  toServer(c.packet(TCP_SYN, undefined, MSS), 'SYN');
  toClient(s.packet(TCP_SYN | TCP_ACK, undefined, MSS), 'SYN-ACK');
  toServer(c.packet(TCP_ACK), 'ACK');
  let n = 0;
  for (let off = 0; off < bytes; off += MSS) {
    const last = off + MSS >= bytes;
    toServer(c.packet(TCP_ACK | (last ? TCP_PSH : 0), payload.subarray(off, off + MSS)), `data @${off}`);
    if (++n % 2 === 0 || last) toClient(s.packet(TCP_ACK), `ACK @${off}`);
    // The window (64 KiB) never fills: ACKs come back synchronously.
  }
  toServer(c.packet(TCP_FIN | TCP_ACK), 'FIN');
  toClient(s.packet(TCP_ACK), 'ACK of FIN');
  const digest = s.hash.digest('hex');
  const reply = Buffer.from(`${MARKER} ${label} received ${s.receivedBytes} bytes sha256 ${digest}\n`);
  toClient(s.packet(TCP_PSH | TCP_ACK, reply), 'reply');
  toClient(s.packet(TCP_FIN | TCP_ACK), 'FIN');
  toServer(c.packet(TCP_ACK), 'last ACK');
  const seconds = (performance.now() - t0) / 1000;
  const replyText = Buffer.concat(c.received).toString();
  const intact =
    problems.length === 0 &&
    digest === sent &&
    s.receivedBytes === bytes &&
    replyText === reply.toString() &&
    s.finReceived &&
    c.finReceived &&
    c.acked === c.sndNxt &&
    s.acked === s.sndNxt;
  return { bytes: s.receivedBytes, intact, sha256: digest, segments: { toServer: c.segmentsSent, toClient: s.segmentsSent }, seconds, mbps: (s.receivedBytes * 8) / seconds / 1e6, problems };
}

/** Five datagrams carrying the marker, client → server; the server echoes each one back. */
function udpExchange(label: string, client: Endpoint, server: Endpoint, transmit: Transmit): VmUdpResult {
  const texts = Array.from({ length: 5 }, (_, i) => `${MARKER}-${label}-${i}`);
  let received = 0;
  let echoed = 0;
  const payloadOf = (p: ParsedIpv4 | null, from: Endpoint, to: Endpoint): string | undefined => {
    if (!p || p.protocol !== 17 || !p.checksumsOk || p.src !== from.ip || p.dst !== to.ip) return undefined;
    if (p.payload.readUInt16BE(0) !== from.port || p.payload.readUInt16BE(2) !== to.port) return undefined;
    return p.payload.subarray(8).toString();
  };
  texts.forEach((text, i) => {
    const out = udpPacket({ src: client.ip, dst: server.ip, ttl: client.ttl, id: 0x100 + i }, client.port, server.port, Buffer.from(text));
    const got = payloadOf(transmit(client.node, server.node, out, `${label} UDP #${i}`), client, server);
    if (got !== text) return;
    received++;
    const back = udpPacket({ src: server.ip, dst: client.ip, ttl: server.ttl, id: 0x200 + i }, server.port, client.port, Buffer.from(got));
    if (payloadOf(transmit(server.node, client.node, back, `${label} UDP echo #${i}`), server, client) === text) echoed++;
  });
  return { sent: texts.length, received, echoed };
}
