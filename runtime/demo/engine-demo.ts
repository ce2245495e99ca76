// The engine end to end on one machine (the README's main job): two nodes, each with a pod, the
// engine attached to the link between the nodes, SAs from a Cilium key file, TCP and UDP on the
// three paths (pod→pod, pod→node, node→pod), a capture of the link proving that only ESP crossed
// it, and the audit counters. Everything it makes is removed at the end, also on failure.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readAudit, readPolicyAudit, ruleNamesOf, type AuditRow, type RuleRow } from '../audit.ts';
import { EngineNode, buildEngine } from '../engine/node.ts';
import { NodeDirectory } from '../keys/nodes.ts';
import { KeyManager } from '../keys/rotation.ts';
import { censusOf, espSaTable, readPcap, type LinkCensus } from './pcap.ts';
import { buildTopology, spawnIn, type Topology } from './topology.ts';
import { tcpTransfer, udpExchange, type TcpResult } from './transfer.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEMO_KEY_FILE = join(ROOT, 'examples/keys/cilium-ipsec-keys');
/** The policy the demo compiles by default: per-node-pair SAs, what the key runtime installs. */
export const DEMO_POLICY = join(ROOT, 'examples/policy-node-pair.ts');
const MARKER = 'ebpf-ts-plaintext-marker';

export interface EngineDemoOptions {
  tcpBytes?: number;
  /** The egress policy compiled as the engine (default DEMO_POLICY). The key runtime installs
   *  per-node-pair SAs (encrypt_sa kind NODE), so the policy must choose those keys. */
  policy?: string;
  pcap?: string;
  step?: (s: string) => void;
  say?: (s: string) => void;
}

export interface EngineDemoResult {
  tcp: Record<string, TcpResult>;
  udp: Record<string, { sent: number; received: number }>;
  link: LinkCensus;
  markerSeen: boolean;
  audit: Record<string, AuditRow[]>;
  /** Per policy rule (policy_audit), rules named from the policy's RULE_… constants. */
  rules: Record<string, RuleRow[]>;
}

export async function runEngineDemo(o: EngineDemoOptions = {}): Promise<EngineDemoResult> {
  const step = o.step ?? (() => {});
  const say = o.say ?? (() => {});
  const policy = o.policy ?? DEMO_POLICY;
  step(`compile the policy ${relative(ROOT, policy)} with the engine (its egress; ingress and crypto_setup from engine/esp.ts)`);
  await buildEngine(policy);
  step('build two nodes, each with a pod, joined by one link (pod routes at MTU 1423, as Cilium)');
  const topo = buildTopology({ podRouteMtu: 1423 });
  const [n1, n2] = topo.nodes;
  let cluster: ClusterEngines | undefined;
  const capture = { file: `/tmp/ets-${topo.tag}.pcap` };
  try {
    step(`load and attach the engine on both nodes (tcx egress + ingress on the link, no xfrm); SAs from ${DEMO_KEY_FILE.replace(`${ROOT}/`, '')} (per-node-pair keys derived with HKDF)`);
    cluster = await startClusterEngines(topo, DEMO_KEY_FILE, policy);
    const { engines } = cluster;
    for (const e of engines) for (const sa of await e.store.list()) say(`${e.options.name}: ${sa.direction} SA spi 0x${sa.spi.toString(16)} ↔ ${sa.remoteNode}`);

    step(`capture the link between the nodes (${n1.linkDev} in ${n1.ns})`);
    const tcpdump = spawnIn(n1.ns, 'tcpdump', ['-i', n1.linkDev, '-U', '-n', '-s', '0', '-w', capture.file]);
    await new Promise<void>((ok, fail) => {
      const t = setTimeout(() => fail(new Error('tcpdump did not start')), 10_000);
      tcpdump.stderr!.on('data', (d: Buffer) => d.toString().includes('listening') && (clearTimeout(t), ok()));
      tcpdump.on('exit', (c) => fail(new Error(`tcpdump exited ${c}`)));
    });

    step('send TCP and UDP on the three paths');
    const tcpBytes = o.tcpBytes ?? 8 * 1024 * 1024;
    const tcp: Record<string, TcpResult> = {};
    const udp: Record<string, { sent: number; received: number }> = {};
    const paths = [
      ['pod→pod', n1.podNs, n2.podNs, n2.podIp],
      ['pod→node', n1.podNs, n2.ns, n2.nodeIp],
      ['node→pod', n1.ns, n2.podNs, n2.podIp],
    ] as const;
    for (const [label, from, to, ip] of paths) {
      tcp[label] = await tcpTransfer(from, to, ip, label === 'pod→pod' ? tcpBytes : Math.min(tcpBytes, 1 << 20));
      const texts = Array.from({ length: 5 }, (_, i) => `${MARKER}-${label}-${i}`);
      const got = await udpExchange(from, to, ip, texts);
      udp[label] = { sent: texts.length, received: got.filter((g) => texts.includes(g)).length };
      say(`${label.padEnd(9)} TCP ${(tcp[label]!.bytes / 1e6).toFixed(1)} MB ${tcp[label]!.intact ? 'intact (SHA-256 equal)' : 'CORRUPTED'}, ${tcp[label]!.mbps.toFixed(0)} Mb/s; UDP ${udp[label]!.received}/${udp[label]!.sent}`);
    }
    await new Promise((r) => setTimeout(r, 300));
    tcpdump.kill('SIGINT');
    await new Promise((r) => tcpdump.once('exit', r));
    const raw = readFileSync(capture.file);
    const { frames } = readPcap(raw);
    const link = censusOf(frames);
    const markerSeen = frames.some((f) => f.data.includes(MARKER));
    step('what crossed the link');
    say(`${link.frames} frames: ${link.esp} ESP, ${link.plaintextIpv4} plaintext IPv4, ${link.other} other (ARP, IPv6 ND); plaintext marker ${markerSeen ? 'SEEN' : 'never seen'}`);
    if (o.pcap) {
      writeFileSync(o.pcap, raw);
      writeFileSync(`${o.pcap}.esp_sa`, await espSaTable(engines));
      say(`wrote ${o.pcap} and ${o.pcap}.esp_sa (Wireshark: Protocols → ESP → ESP SAs; demo keys only)`);
    }
    const audit: Record<string, AuditRow[]> = {};
    const rules: Record<string, RuleRow[]> = {};
    const names = ruleNamesOf(readFileSync(policy, 'utf8'));
    for (const e of engines) {
      const m = e.object.map('audit');
      audit[e.options.name] = readAudit(m, Math.ceil(m.valueSize / 8) * 8);
      const p = e.object.map('policy_audit');
      rules[e.options.name] = readPolicyAudit(p, Math.ceil(p.valueSize / 8) * 8, names);
    }
    return { tcp, udp, link, markerSeen, audit, rules };
  } finally {
    const problems = cluster?.stop() ?? [];
    problems.push(...topo.destroy());
    try {
      (await import('node:fs')).rmSync(capture.file, { force: true });
    } catch {}
    if (problems.length > 0) say(`left behind: ${problems.join('; ')}`);
  }
}

export interface ClusterEngines {
  engines: [EngineNode, EngineNode];
  managers: [KeyManager, KeyManager];
  /** Close the key managers and stop both engines; what could not be removed. */
  stop(): string[];
}

/**
 * The engine on both nodes of a topology: attached to the link, the policy "everything to the
 * other node and its pod is encrypted to that node", SAs from a Cilium key file (per node pair).
 */
export async function startClusterEngines(topo: Topology, keyFile = DEMO_KEY_FILE, policy?: string): Promise<ClusterEngines> {
  const [n1, n2] = topo.nodes;
  const nodes = new NodeDirectory([
    { name: 'node1', ip: n1.nodeIp },
    { name: 'node2', ip: n2.nodeIp },
  ]);
  const engines: EngineNode[] = [];
  const managers: KeyManager[] = [];
  const stop = (): string[] => {
    const problems: string[] = [];
    for (const m of managers) m.close();
    for (const e of engines) {
      try {
        e.stop();
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    return problems;
  };
  try {
    for (const [name, n] of [['node1', n1], ['node2', n2]] as const) {
      engines.push(await EngineNode.start({ name, netns: n.ns, linkDev: n.linkDev, pinDir: `/sys/fs/bpf/ets-${topo.tag}-${name}`, nodes, policy }));
    }
    const keyText = readFileSync(keyFile, 'utf8');
    for (const [e, peer, local, remote] of [[engines[0]!, n2, 'node1', 'node2'], [engines[1]!, n1, 'node2', 'node1']] as const) {
      e.route({ addr: peer.podIp, identity: 2, tunnelEndpoint: peer.nodeIp, keyIndex: 1 });
      e.route({ addr: peer.nodeIp, identity: 1, tunnelEndpoint: peer.nodeIp, keyIndex: 1 });
      const m = new KeyManager({ store: e.store, local: { id: local, bootId: '' }, peers: [{ id: remote, bootId: '' }] });
      managers.push(m);
      await m.applyKeyFile(keyText, keyFile);
    }
  } catch (e) {
    stop();
    throw e;
  }
  return { engines: engines as [EngineNode, EngineNode], managers: managers as [KeyManager, KeyManager], stop };
}
