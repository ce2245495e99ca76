// The baseline's scenarios as guest runs: which files go in, which script runs, and what the
// results must show. The pair scenarios share one script (guest/xfrm-pair.sh) and differ in what
// runs on each node: 1 xfrm <-> xfrm, 2 engine (node-a) <-> xfrm (node-b), 3 engine <-> engine.
// Scenario 4 (scale) runs once per implementation. The engine goes in as files (the compiled
// object, our loader bundled, koffi) plus node, and is set up by guest-engine.ts.
import { readFileSync } from 'node:fs';
import type { ArchiveEntry } from './initramfs.ts';
import type { CiliumAeadKey } from './keys.ts';
import { describeFailure, runGuest, type Execution, type GuestResult, type GuestSpec } from './qemu.ts';
import { runNative } from './native.ts';
import { buildPeerMark, guestNode, ToolchainUnavailable } from './tools.ts';
import { compileEngine, guestEngineFiles } from './engine-bundle.ts';
import type { GuestEngineConfig } from './guest-engine.ts';
import * as EngineMaps from '../../engine/maps.ts';
import type { GuestKernel } from './kernel.ts';
import {
  nonZero,
  parseEngineStats,
  parseEspFrame,
  parseProbe,
  parsePing,
  parseXfrmStat,
  parseXfrmStates,
  probeDatagram,
  readPcap,
  writePcap,
  type EngineStats,
  type EspFrame,
  type PingSummary,
  type XfrmStateInfo,
} from './results.ts';
import { espDecrypt, espEncryptTunnel, ipv4Udp, saFromCiliumKey, udpOf } from './esp.ts';
import { nodeA, nodeB, syntheticPeer, tcMarkLines, xfrmNodeLines, xfrmPairBatch, xfrmPeerLines, type Node } from './topology.ts';

const GUEST_DIR = new URL('./guest/', import.meta.url).pathname;

const text = (path: string, s: string, mode = 0o644): ArchiveEntry => ({ path, mode, data: Buffer.from(s) });
const env = (vars: Record<string, string | number>) =>
  Object.entries(vars)
    .map(([k, v]) => `${k}='${String(v)}'`)
    .join('\n') + '\n';

export interface RunOptions {
  /** The guest kernel; unused with accel 'native'. */
  kernel: GuestKernel;
  key: CiliumAeadKey;
  accel?: Execution;
  onLog?: (line: string) => void;
}

/** One scenario run, in a guest or (accel 'native') on the host kernel. */
function run(spec: GuestSpec, accel: Execution | undefined): Promise<GuestResult> {
  if (accel === 'native') return runNative(spec);
  return runGuest({ ...spec, accel });
}

// ---------------------------------------------------------------------------------------------
// The engine in a guest

/** What runs on a node: Linux xfrm configured as Cilium does, or the engine. */
export type Role = 'xfrm' | 'engine';
export interface PairRoles {
  'node-a': Role;
  'node-b': Role;
}
/** Scenario 1, xfrm <-> xfrm. */
export const XFRM_PAIR: PairRoles = { 'node-a': 'xfrm', 'node-b': 'xfrm' };
/** Scenario 2: a->b is engine -> xfrm, b->a is xfrm -> engine. */
export const ENGINE_XFRM: PairRoles = { 'node-a': 'engine', 'node-b': 'xfrm' };
/** Scenario 3, engine <-> engine. */
export const ENGINE_PAIR: PairRoles = { 'node-a': 'engine', 'node-b': 'engine' };

export const scenarioName = (roles: PairRoles): string =>
  roles['node-a'] === 'xfrm' && roles['node-b'] === 'xfrm'
    ? '1 xfrm <-> xfrm'
    : roles['node-a'] === 'engine' && roles['node-b'] === 'engine'
      ? '3 engine <-> engine'
      : '2 engine <-> xfrm';

/** Where a node's engine pins its maps and links (lib.sh's topology_down removes it). */
export const enginePinDir = (node: Node) => `/sys/fs/bpf/ets-baseline-${node.ns}`;

/**
 * The engine's configuration on `local` with `remote` as its peer: Cilium's SA without '+' (the
 * key file's key and salt on both directions, SPI = key index, tunnel mode between the node
 * addresses) and the policy "pod traffic to the remote pod is encrypted to the remote node".
 */
export function engineConfig(
  local: Node,
  remote: Node,
  key: CiliumAeadKey,
  extra: { synthetic?: { ip: string; podIp: string }[]; maxEntries?: Record<string, number> } = {},
): GuestEngineConfig {
  const ks = Buffer.from(key.keyAndSalt);
  return {
    name: local.ns,
    ip: local.ip,
    dev: 'eth0',
    pinDir: enginePinDir(local),
    object: 'engine/engine.o',
    peer: { name: remote.ns, ip: remote.ip, podIp: remote.podIp },
    key: { spi: key.spi, keyHex: ks.subarray(0, ks.length - 4).toString('hex'), saltHex: ks.subarray(ks.length - 4).toString('hex'), icvBits: key.icvBits },
    algo: 'aes',
    ...extra,
  };
}

/** The files and binaries that put the engine into a guest: its object, our loader, node. */
async function engineSpec(engineObject?: Buffer): Promise<Pick<GuestSpec, 'files' | 'binaries'>> {
  const object = engineObject ?? (await compileEngine());
  return { files: await guestEngineFiles(object), binaries: [{ host: guestNode(), guest: '/usr/bin/node' }] };
}

// ---------------------------------------------------------------------------------------------
// Scenarios 1–3: a pair of nodes

export interface PairOptions extends RunOptions {
  udpCount?: number;
  udpSize?: number;
  tcpBytes?: number;
  /** What runs on each node; default scenario 1 (xfrm on both). */
  roles?: PairRoles;
  /** The compiled engine; default engine/esp.ts compiled now. */
  engineObject?: Buffer;
}

export interface PairOutcome {
  roles: PairRoles;
  guest: GuestResult;
  /** Everything that contradicts "ping, UDP and TCP pass and nothing reports an error". */
  problems: string[];
  ping: { aToB: PingSummary; bToA: PingSummary };
  udp: Record<'aToB' | 'bToA' | 'replay' | 'reference', { ok: number; bad: number }>;
  tcp: Record<'aToB' | 'bToA', { bytes: number; bad: number; elapsedNs: number }>;
  /** ESP packets node-a's SA to node-b sent during the a->b transfer (xfrm state or engine SA). */
  tcpAToBEspPackets: number;
  /** ESP packets node-a's SA from node-b received during the b->a transfer. */
  tcpBToAEspPackets: number;
  xfrmStat: Record<'node-a' | 'node-b', Record<string, number>>;
  states: Record<'node-a' | 'node-b', XfrmStateInfo[]>;
  /** The engine's counters after the traffic (before the negative control), per engine node. */
  engine: Partial<Record<'node-a' | 'node-b', EngineStats>>;
  /** The verifier's figures per program where the engine was loaded ("egress verified=29271 ..."). */
  engineLoad: Partial<Record<'node-a' | 'node-b', string[]>>;
  /** ESP frames node-a sent for the a->b datagrams, the raw pcap, and how many of them the
   *  reference codec decrypted to exactly the datagram sent. */
  esp: { frames: EspFrame[]; pcap: Buffer; decrypted: number };
  /** Replayed frames an engine on node-b dropped (its SA's replay counter), when it is the engine. */
  replayDropped?: number;
  /** Wrong-key frames: delivered (must be 0), and the increase of node-b's error counters: for
   *  xfrm XfrmInStateProtoError and the SA's failed count, for the engine its bad-ICV audit slot
   *  and the SA's ICV drops. */
  negative: { delivered: number; protoErrors: number; saFailed: number };
  aeadDriver: string;
}

/** Ports of the pair's UDP flows (guest/xfrm-pair.sh). */
export const PAIR_PORTS = { aToB: 4000, bToA: 4001, reference: 4002, negative: 4003 } as const;
/** Frames of the negative control (guest/xfrm-pair.sh). */
export const NEGATIVE_COUNT = 4;
/**
 * Sequence numbers of the host-built frames: above anything the nodes send in a run, reference
 * frames below the negative control's, so an engine's replay window (xfrm has none in Cilium's
 * states) accepts the reference frames and judges the wrong-key frames by their ICV.
 */
export const REFERENCE_SEQ = 0x10_0000;
export const NEGATIVE_SEQ = 0x20_0000;

/** The key with every key byte flipped (salt kept): what the negative control encrypts under. */
export function wrongKey(key: CiliumAeadKey): CiliumAeadKey {
  const k = Uint8Array.from(key.keyAndSalt);
  for (let i = 0; i < k.length - 4; i++) k[i] ^= 0xff;
  return { ...key, keyAndSalt: k };
}
/** netprobe's UDP source port is ephemeral; the reference frames use this one. */
const REFERENCE_SPORT = 40000;

/**
 * The a->b datagrams netprobe would send (same payloads), encrypted on the host by the reference
 * codec as node-a's SA: what node-b is fed besides node-a's own ESP. Sequence numbers start at
 * `seqBase`; the IV is the sequence number, as seqiv-style generators do (unique per SA is all
 * RFC 4106 asks).
 */
export function referenceFrames(
  key: CiliumAeadKey,
  count: number,
  size: number,
  port: number = PAIR_PORTS.reference,
  seqBase: number = REFERENCE_SEQ,
): Buffer[] {
  const sa = saFromCiliumKey(key, nodeA.ip, nodeB.ip);
  return Array.from({ length: count }, (_, i) => {
    const inner = ipv4Udp(nodeA.podIp, nodeB.podIp, REFERENCE_SPORT, port, probeDatagram(i, size));
    const seq = seqBase + i;
    const iv = Buffer.alloc(8);
    iv.writeUInt32BE(seq, 4);
    return espEncryptTunnel(sa, inner, seq, iv, { src: nodeA.mac, dst: nodeB.mac });
  });
}

export function pairFiles(
  key: CiliumAeadKey,
  o: { udpCount: number; udpSize: number; tcpBytes: number },
  roles: PairRoles = XFRM_PAIR,
): ArchiveEntry[] {
  const files: ArchiveEntry[] = [
    { path: '/scenario/reference-a-to-b.pcap', mode: 0o644, data: writePcap(referenceFrames(key, o.udpCount, o.udpSize)) },
    {
      path: '/scenario/wrong-key-a-to-b.pcap',
      mode: 0o644,
      data: writePcap(referenceFrames(wrongKey(key), NEGATIVE_COUNT, o.udpSize, PAIR_PORTS.negative, NEGATIVE_SEQ)),
    },
    text('/scenario/run.sh', readFileSync(`${GUEST_DIR}xfrm-pair.sh`, 'utf8')),
    text(
      '/scenario/env.sh',
      env({ UDP_COUNT: o.udpCount, UDP_SIZE: o.udpSize, TCP_BYTES: o.tcpBytes, NEGATIVE_COUNT }),
    ),
  ];
  for (const [local, remote] of [[nodeA, nodeB], [nodeB, nodeA]] as const) {
    if (roles[local.ns as 'node-a' | 'node-b'] === 'engine') {
      files.push(text(`/scenario/${local.ns}.engine.json`, JSON.stringify(engineConfig(local, remote, key), null, 2) + '\n', 0o600));
    } else {
      files.push(
        text(`/scenario/${local.ns}.xfrm.batch`, xfrmPairBatch(local, remote, key)),
        text(`/scenario/${local.ns}.tc.batch`, tcMarkLines(remote, key.spi).join('\n') + '\n'),
      );
    }
  }
  return files;
}

export async function runPair(o: PairOptions): Promise<PairOutcome> {
  const roles = o.roles ?? XFRM_PAIR;
  const sizes = { udpCount: o.udpCount ?? 32, udpSize: o.udpSize ?? 1000, tcpBytes: o.tcpBytes ?? 4 << 20 };
  const withEngine = roles['node-a'] === 'engine' || roles['node-b'] === 'engine';
  const engine = withEngine ? await engineSpec(o.engineObject) : { files: [], binaries: [] };
  const guest = await run(
    {
      kernel: o.kernel,
      files: [...pairFiles(o.key, sizes, roles), ...engine.files],
      binaries: engine.binaries,
      // Under TCG the engine's loader takes ~15 s per node (node's start, the verifier) and each
      // counter read ~3 s.
      deadlineS: withEngine ? 240 : 120,
      onLog: o.onLog,
    },
    o.accel,
  );
  return evaluatePair(guest, o.key, sizes, roles);
}

const NODES = ['node-a', 'node-b'] as const;

/** Reads the pair's results; every missing file or unexpected number becomes a problem. */
export function evaluatePair(
  guest: GuestResult,
  key: CiliumAeadKey,
  sizes: { udpCount: number; udpSize: number; tcpBytes: number },
  roles: PairRoles = XFRM_PAIR,
): PairOutcome {
  const problems: string[] = [];
  const file = (name: string): string => {
    const f = guest.files.get(name);
    if (!f) throw new Error(`guest sent no ${name}\n${describeFailure(guest)}`);
    return f.toString();
  };
  const engineAt = (node: 'node-a' | 'node-b') => roles[node] === 'engine';
  if (guest.exitStatus !== 0) problems.push(`scenario script exited ${guest.exitStatus ?? '(none)'}`);
  problems.push(...guest.transportErrors, ...guest.moduleFailures.map((m) => `insmod ${m} failed`));

  const engineLoad: PairOutcome['engineLoad'] = {};
  for (const node of NODES) {
    if (!engineAt(node)) continue;
    const up = guest.files.get(`engine-up.${node}.txt`)?.toString() ?? '';
    if (!/^engine: up /m.test(up)) {
      // Nothing else can be judged without the engine; say why it did not come up.
      throw new Error(`the engine did not come up on ${node}:\n${up.trim() || '(no output)'}\n${describeFailure(guest)}`);
    }
    engineLoad[node] = up.split('\n').filter((l) => l.startsWith('engine: program ')).map((l) => l.slice('engine: program '.length));
  }

  const ping = { aToB: parsePing(file('ping.a-to-b.txt')), bToA: parsePing(file('ping.b-to-a.txt')) };
  for (const [dir, p] of Object.entries(ping)) {
    if (p.received !== p.transmitted || p.received === 0) problems.push(`ping ${dir}: ${p.received}/${p.transmitted} replies`);
  }
  const udpRecv = (name: string) => {
    const r = parseProbe(file(name), 'udp-recv');
    return { ok: Number(r.ok), bad: Number(r.bad) };
  };
  const udp = {
    aToB: udpRecv('udp.a-to-b.recv.txt'),
    bToA: udpRecv('udp.b-to-a.recv.txt'),
    replay: udpRecv('replay.recv.txt'),
    reference: udpRecv('reference.recv.txt'),
  };
  for (const [dir, u] of Object.entries(udp)) {
    // An engine receiver has seen the replayed frames' sequence numbers: it must drop them all.
    const expected = dir === 'replay' && engineAt('node-b') ? 0 : sizes.udpCount;
    if (u.ok !== expected || u.bad !== 0) problems.push(`udp ${dir}: ${u.ok} intact, ${u.bad} corrupt; expected ${expected} intact`);
  }
  let replayDropped: number | undefined;
  if (engineAt('node-b')) {
    const [before, after] = ['replay-before', 'replay-after'].map((t) => parseEngineStats(file(`${t}.node-b.engine.txt`)));
    replayDropped = after.ingressReplay - before.ingressReplay;
    if (replayDropped !== sizes.udpCount) problems.push(`replay: node-b's engine counted ${replayDropped} replays of ${sizes.udpCount} replayed frames`);
  }
  const tcpOf = (name: string) => {
    const r = parseProbe(file(name), 'tcp-recv');
    return { bytes: Number(r.bytes), bad: Number(r.bad), elapsedNs: Number(r.elapsed_ns) };
  };
  const tcp = { aToB: tcpOf('tcp.a-to-b.recv.txt'), bToA: tcpOf('tcp.b-to-a.recv.txt') };
  // ESP packets on node-a's SAs around each transfer: out-SA for a->b, in-SA for b->a.
  const espPackets = (tag: string, dir: 'out' | 'in'): number => {
    if (engineAt('node-a')) {
      const [b, a] = ['before', 'after'].map((w) => parseEngineStats(file(`${tag}.sa-${w}.node-a.engine.txt`)));
      return dir === 'out' ? a.egressPackets - b.egressPackets : a.ingressPackets - b.ingressPackets;
    }
    const around = ['before', 'after'].map((w) =>
      parseXfrmStates(file(`${tag}.sa-${w}.txt`)).filter((s) => (dir === 'out' ? s.src === nodeA.ip : s.src === nodeB.ip)),
    );
    return around[0].length === 1 && around[1].length === 1 ? around[1][0].packets - around[0][0].packets : NaN;
  };
  const tcpAToBEspPackets = espPackets('tcp.a-to-b', 'out');
  const tcpBToAEspPackets = espPackets('tcp.b-to-a', 'in');
  if (!(tcpAToBEspPackets > 0)) problems.push(`tcp a->b: node-a's SA to node-b counted ${tcpAToBEspPackets} packets`);
  if (!(tcpBToAEspPackets > 0)) problems.push(`tcp b->a: node-a's SA from node-b counted ${tcpBToAEspPackets} packets`);
  for (const [dir, t] of Object.entries(tcp)) {
    if (t.bytes !== sizes.tcpBytes || t.bad !== 0) problems.push(`tcp ${dir}: ${t.bytes} of ${sizes.tcpBytes} bytes, ${t.bad} corrupt`);
  }

  const xfrmStat = {
    'node-a': parseXfrmStat(file('pair.node-a.xfrm_stat.txt')),
    'node-b': parseXfrmStat(file('pair.node-b.xfrm_stat.txt')),
  };
  const states = {
    'node-a': parseXfrmStates(file('pair.node-a.xfrm-state.txt')),
    'node-b': parseXfrmStates(file('pair.node-b.xfrm-state.txt')),
  };
  const engine: PairOutcome['engine'] = {};
  for (const node of NODES) {
    for (const [name, v] of nonZero(xfrmStat[node])) problems.push(`${node} /proc/net/xfrm_stat ${name} = ${v}`);
    if (engineAt(node)) {
      // No xfrm anywhere on an engine node: ESP went through the engine or not at all.
      if (states[node].length !== 0) problems.push(`${node} runs the engine but has ${states[node].length} xfrm states`);
      const st = parseEngineStats(file(`pair.${node}.engine.txt`));
      engine[node] = st;
      if (!(st.egressPackets > 0) || !(st.ingressPackets > 0)) {
        problems.push(`${node} engine SAs carried ${st.egressPackets} packets out, ${st.ingressPackets} in`);
      }
      if (st.egressDropped !== 0 || st.ingressIcv !== 0) problems.push(`${node} engine: egress dropped ${st.egressDropped}, ingress ICV failures ${st.ingressIcv}`);
      // Replays node-b dropped on purpose are the only expected drops.
      const expectedReplay = node === 'node-b' ? (replayDropped ?? 0) : 0;
      if (st.ingressReplay !== expectedReplay) problems.push(`${node} engine: ${st.ingressReplay} replay drops, expected ${expectedReplay}`);
      for (const [index, n] of st.audit.entries()) {
        const fine = [EngineMaps.AUDIT_ENCRYPTED, EngineMaps.AUDIT_DECRYPTED, EngineMaps.AUDIT_PLAINTEXT].includes(index);
        const expected = index === EngineMaps.AUDIT_REPLAY ? expectedReplay : 0;
        if (!fine && n !== expected) problems.push(`${node} engine audit slot ${index} (${auditName(index)}) = ${n}, expected ${expected}`);
      }
    } else {
      if (states[node].length !== 2) problems.push(`${node}: ${states[node].length} xfrm states, expected 2`);
      for (const s of states[node]) {
        if (s.replay || s.failed) problems.push(`${node} SA ${s.src}->${s.dst}: replay ${s.replay}, failed ${s.failed}`);
        if (s.packets === 0) problems.push(`${node} SA ${s.src}->${s.dst} carried no packets`);
      }
    }
  }

  // The negative control: nothing delivered, and node-b counted every frame as an integrity
  // failure where the checks above look (xfrm: XfrmInStateProtoError, the SA's failed counter;
  // the engine: the bad-ICV audit slot, the SA's ICV drops).
  const negativeRecv = parseProbe(file('negative.recv.txt'), 'udp-recv');
  let negative: PairOutcome['negative'];
  if (engineAt('node-b')) {
    const after = parseEngineStats(file('negative.node-b.engine.txt'));
    const before = engine['node-b']!;
    negative = {
      delivered: Number(negativeRecv.ok) + Number(negativeRecv.bad),
      protoErrors: (after.audit[EngineMaps.AUDIT_BAD_ICV] ?? 0) - (before.audit[EngineMaps.AUDIT_BAD_ICV] ?? 0),
      saFailed: after.ingressIcv - before.ingressIcv,
    };
  } else {
    const negativeStat = parseXfrmStat(file('negative.node-b.xfrm_stat.txt'));
    const negativeSa = parseXfrmStates(file('negative.node-b.xfrm-state.txt')).find((s) => s.src === nodeA.ip);
    negative = {
      delivered: Number(negativeRecv.ok) + Number(negativeRecv.bad),
      protoErrors: negativeStat.XfrmInStateProtoError - xfrmStat['node-b'].XfrmInStateProtoError,
      saFailed: (negativeSa?.failed ?? 0) - (states['node-b'].find((s) => s.src === nodeA.ip)?.failed ?? 0),
    };
  }
  if (negative.delivered !== 0) problems.push(`negative control: ${negative.delivered} wrong-key datagrams delivered`);
  if (negative.protoErrors !== NEGATIVE_COUNT || negative.saFailed !== NEGATIVE_COUNT) {
    problems.push(
      `negative control: ${NEGATIVE_COUNT} wrong-key frames, node-b's ${engineAt('node-b') ? 'engine bad-ICV audit' : 'XfrmInStateProtoError'} +${negative.protoErrors}, ` +
        `SA failed +${negative.saFailed}`,
    );
  }

  const pcap = guest.files.get('esp-a-to-b.pcap') ?? Buffer.alloc(0);
  let raw: Buffer[] = [];
  let frames: EspFrame[] = [];
  try {
    raw = readPcap(pcap);
    frames = raw.map(parseEspFrame);
  } catch (e) {
    problems.push(`esp-a-to-b.pcap: ${(e as Error).message}`);
  }
  if (frames.length !== sizes.udpCount) problems.push(`captured ${frames.length} ESP frames, expected ${sizes.udpCount}`);
  // node-a -> reference: every captured frame must decrypt with the key file's key to the datagram
  // netprobe sent, in tunnel mode (next header 4) from pod-a to pod-b.
  const sa = saFromCiliumKey(key, nodeA.ip, nodeB.ip);
  let decrypted = 0;
  for (const [i, frame] of frames.entries()) {
    try {
      const d = espDecrypt(sa, raw[i]);
      const u = udpOf(d.inner);
      const seq = u.payload.readUInt32BE(0);
      if (d.src !== nodeA.ip || d.dst !== nodeB.ip) throw new Error(`outer ${d.src}->${d.dst}`);
      if (d.nextHeader !== 4) throw new Error(`next header ${d.nextHeader}, expected 4 (IPv4, tunnel mode)`);
      if (u.src !== nodeA.podIp || u.dst !== nodeB.podIp || u.dport !== PAIR_PORTS.aToB) {
        throw new Error(`inner ${u.src}->${u.dst}:${u.dport}`);
      }
      if (!u.payload.equals(probeDatagram(seq, sizes.udpSize))) throw new Error(`payload of datagram ${seq} differs`);
      decrypted++;
    } catch (e) {
      problems.push(`captured ESP frame ${i} (seq ${frame.seq}): ${(e as Error).message}`);
    }
  }
  return {
    roles,
    guest,
    problems,
    ping,
    udp,
    tcp,
    tcpAToBEspPackets,
    tcpBToAEspPackets,
    xfrmStat,
    states,
    engine,
    engineLoad,
    esp: { frames, pcap, decrypted },
    replayDropped,
    negative,
    aeadDriver: file('crypto-driver.txt').trim(),
  };
}

/** Reason name of an audit slot (engine/maps.ts), for messages. */
function auditName(index: number): string {
  const names = Object.entries(EngineMaps).filter(([k, v]) => k.startsWith('AUDIT_') && k !== 'AUDIT_REASONS' && v === index);
  return names.length ? names[0][0].slice('AUDIT_'.length).toLowerCase() : 'unknown';
}

// ---------------------------------------------------------------------------------------------
// Scenario 4, xfrm side: SA lookup cost with 1, 1,000 and 10,000 peers

export const SCALE_POINTS = [1, 1000, 10000] as const;

export interface ScaleOptions extends RunOptions {
  points?: readonly number[];
  /** Round trips per ping measurement. */
  pingCount?: number;
  /** Bytes per TCP transfer. */
  tcpBytes?: number;
  /** Repetitions of each measurement. */
  repetitions?: number;
  /** Packets per run of the all-peers-active inbound measurement; 0 leaves it out. */
  activePackets?: number;
  memoryMiB?: number;
}

export interface ScalePoint {
  peers: number;
  /** xfrm states and policies on node-a after installation (from `ip xfrm state/policy count`). */
  sad: number;
  spd: number;
  installSeconds: number;
  /** Guest memory the installation of this point's new peers took, per peer per node, in KiB. */
  memoryPerPeerKiB: number;
  /** Ping round trip pod-a -> pod-b (average of one run), best and median over the runs, µs. */
  rttUs: number;
  rttMedianUs: number;
  /** TCP goodput pod-a -> pod-b, Mbit/s, best and median over the runs. */
  tcpMbps: number;
  tcpMedianMbps: number;
  /** TCP transfer time divided by the ESP packets node-a's SA sent for it, µs: best and every run. */
  perPacketUs: number;
  perPacketRunsUs: number[];
  espPackets: number;
  /** All N peers active, inbound on node-b: injection time per packet, best and every run, µs. */
  activeInboundUs?: number;
  activeInboundRunsUs?: number[];
}

export interface ScaleOutcome {
  guest: GuestResult;
  problems: string[];
  points: ScalePoint[];
  aeadDriver: string;
  /** The guest kernel has the per-CPU inbound SA cache (xfrm_input_state_lookup). */
  inputStateCache: boolean | undefined;
  /** Why the all-peers-active measurement did not run, when it did not. */
  activeMissing?: string;
}

/**
 * Batches for each step: step k adds the peers between the previous point and this one, so the
 * real peer (node-b on node-a and vice versa) is installed first and every synthetic peer after
 * it. xfrm inserts at the head of its hash chains, so the real peer's states sit behind all the
 * synthetic ones wherever they share a chain: the worst case for the lookup, on purpose.
 */
/** UDP port and payload size of the active-peer frames (guest/xfrm-scale.sh). */
export const ACTIVE_PORT = 4500;
export const ACTIVE_PAYLOAD = 64;

/**
 * One ESP frame from each of `n` peers to pod-b, for node-b's xfrm: node-a first, then synthetic
 * peers 1..n-1, each from its own outer address and pod CIDR, all under the key file's key (Cilium
 * without '+' uses it on every SA). Built by the reference codec, as node-a's wire end sends them.
 */
export function activePeerFrames(key: CiliumAeadKey, n: number): Buffer[] {
  return Array.from({ length: n }, (_, j) => {
    const peer = j === 0 ? { ip: nodeA.ip, podIp: nodeA.podIp } : { ip: syntheticPeer(j).ip, podIp: syntheticPeer(j).podCidr.replace(/0\/24$/, '10') };
    const sa = saFromCiliumKey(key, peer.ip, nodeB.ip);
    const inner = ipv4Udp(peer.podIp, nodeB.podIp, REFERENCE_SPORT, ACTIVE_PORT, probeDatagram(j, ACTIVE_PAYLOAD));
    const iv = Buffer.alloc(8);
    iv.writeUInt32BE(j + 1, 4);
    return espEncryptTunnel(sa, inner, j + 1, iv, { src: nodeA.mac, dst: nodeB.mac });
  });
}

export function scaleFiles(
  key: CiliumAeadKey,
  points: readonly number[],
  o: { pingCount: number; tcpBytes: number; repetitions: number; activePackets?: number; peerMarkObject?: Buffer },
): ArchiveEntry[] {
  const files: ArchiveEntry[] = [
    text('/scenario/run.sh', readFileSync(`${GUEST_DIR}xfrm-scale.sh`, 'utf8')),
    text(
      '/scenario/env.sh',
      env({ SCALE_POINTS: points.join(' '), PING_COUNT: o.pingCount, TCP_BYTES: o.tcpBytes, REPS: o.repetitions }),
    ),
    text('/scenario/node-a.tc.batch', tcMarkLines(nodeB, key.spi).join('\n') + '\n'),
    text('/scenario/node-b.tc.batch', tcMarkLines(nodeA, key.spi).join('\n') + '\n'),
  ];
  let previous = 0;
  for (const n of points) {
    if (n < 1 || n <= previous) throw new RangeError(`scale points must increase from 1: ${points.join(', ')}`);
    for (const [local, remote] of [[nodeA, nodeB], [nodeB, nodeA]] as const) {
      const lines: string[] = [];
      if (previous === 0) lines.push(...xfrmNodeLines(local), ...xfrmPeerLines(local, remote, key));
      for (let i = Math.max(previous, 1); i < n; i++) lines.push(...xfrmPeerLines(local, syntheticPeer(i), key));
      files.push(text(`/scenario/scale-${n}.${local.ns}.xfrm.batch`, lines.join('\n') + '\n'));
    }
    if (o.peerMarkObject && o.activePackets) {
      files.push(
        { path: `/scenario/active-${n}.pcap`, mode: 0o644, data: writePcap(activePeerFrames(key, n)) },
        text(`/scenario/active-${n}.repeat`, `${Math.max(1, Math.ceil(o.activePackets / n))}\n`),
      );
    }
    previous = n;
  }
  if (o.peerMarkObject && o.activePackets) files.push({ path: '/scenario/peer-mark.o', mode: 0o644, data: o.peerMarkObject });
  return files;
}

export async function runScale(o: ScaleOptions): Promise<ScaleOutcome> {
  const points = o.points ?? SCALE_POINTS;
  const params = { pingCount: o.pingCount ?? 300, tcpBytes: o.tcpBytes ?? 4 << 20, repetitions: o.repetitions ?? 3 };
  // The all-peers-active measurement needs the peer-mark tc program; without a BPF-capable clang
  // it is left out and the report says why.
  let peerMarkObject: Buffer | undefined;
  let activeMissing: string | undefined;
  const activePackets = o.activePackets ?? 6000;
  if (activePackets > 0) {
    try {
      peerMarkObject = readFileSync(buildPeerMark());
    } catch (e) {
      if (!(e instanceof ToolchainUnavailable)) throw e;
      activeMissing = e.message;
    }
  }
  const guest = await run(
    {
      kernel: o.kernel,
      files: scaleFiles(o.key, points, { ...params, activePackets, peerMarkObject }),
      deadlineS: 600,
      // Each xfrm state holds its own AEAD transform; 10,000 peers are 20,000 of them per node.
      memoryMiB: o.memoryMiB ?? 2048,
      onLog: o.onLog,
    },
    o.accel,
  );
  const outcome = evaluateScale(guest, points, { ...params, active: peerMarkObject !== undefined });
  outcome.activeMissing = activeMissing ?? (activePackets > 0 ? undefined : 'left out (activePackets 0)');
  return outcome;
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

type ScaleParams = { pingCount: number; tcpBytes: number; repetitions: number; active?: boolean };

/**
 * What every scale point measures the same way for xfrm and the engine: ping and the TCP transfer
 * of each repetition, and the all-peers-active injection. `espPacketsOf(r)` gives the ESP packets
 * node-a's SA sent during repetition r (undefined: not known, the run counts no per-packet cost).
 */
function scaleRuns(
  get: (name: string) => string | undefined,
  n: number,
  params: ScaleParams,
  problems: string[],
  espPacketsOf: (r: number) => number | undefined,
) {
  const rtts: number[] = [];
  const mbps: number[] = [];
  const perPacket: number[] = [];
  let espPackets = 0;
  for (let r = 1; r <= params.repetitions; r++) {
    const ping = parsePing(get(`ping.${r}.txt`) ?? '');
    if (ping.received !== ping.transmitted) problems.push(`${n} peers, ping ${r}: ${ping.received}/${ping.transmitted}`);
    rtts.push(ping.avg * 1000);
    const tcp = parseProbe(get(`tcp.${r}.recv.txt`) ?? '', 'tcp-recv');
    if (Number(tcp.bytes) !== params.tcpBytes || Number(tcp.bad) !== 0) {
      problems.push(`${n} peers, tcp ${r}: ${tcp.bytes} bytes, ${tcp.bad} corrupt`);
    }
    mbps.push((Number(tcp.bytes) * 8) / (Number(tcp.elapsed_ns) / 1e9) / 1e6);
    const packets = espPacketsOf(r);
    if (packets === undefined) continue;
    espPackets += packets;
    perPacket.push(Number(tcp.elapsed_ns) / 1000 / packets);
  }
  const active: number[] = [];
  for (let r = 1; params.active && r <= params.repetitions; r++) {
    const sent = parseProbe(get(`active.${r}.inject.txt`) ?? '', 'inject');
    const recv = parseProbe(get(`active.${r}.recv.txt`) ?? '', 'udp-recv');
    if (Number(recv.ok) !== Number(sent.sent) || Number(recv.bad) !== 0) {
      problems.push(`${n} peers active, run ${r}: ${recv.ok} of ${sent.sent} datagrams delivered intact (${recv.bad} corrupt)`);
    }
    active.push(Number(sent.elapsed_ns) / 1000 / Number(sent.sent));
  }
  return {
    rttUs: Math.min(...rtts),
    rttMedianUs: median(rtts),
    tcpMbps: Math.max(...mbps),
    tcpMedianMbps: median(mbps),
    perPacketUs: perPacket.length ? Math.min(...perPacket) : NaN,
    perPacketRunsUs: perPacket,
    espPackets,
    ...(active.length ? { activeInboundUs: Math.min(...active), activeInboundRunsUs: active } : {}),
  };
}

/**
 * Evaluates the scale runs. Under TCG on a shared host, interference only ever adds time, so the
 * report leads with the best run (the least disturbed) and keeps the median and every run beside
 * it; the spread is part of the result.
 */
export function evaluateScale(
  guest: GuestResult,
  points: readonly number[],
  params: { pingCount: number; tcpBytes: number; repetitions: number; active?: boolean },
): ScaleOutcome {
  const problems: string[] = [];
  if (guest.exitStatus !== 0) problems.push(`scenario script exited ${guest.exitStatus ?? '(none)'}`);
  problems.push(...guest.transportErrors, ...guest.moduleFailures.map((m) => `insmod ${m} failed`));
  const out: ScalePoint[] = [];
  let previous = 0;
  for (const n of points) {
    const added = n - previous;
    previous = n;
    const get = (name: string) => guest.files.get(`scale-${n}.${name}`)?.toString();
    const summary = get('summary.txt');
    if (!summary) {
      problems.push(`no results for ${n} peers`);
      continue;
    }
    try {
      const installSeconds = Number(/install_s=([\d.]+)/.exec(summary)?.[1]);
      const counts = get('count.txt') ?? '';
      const sad = Number(/SAD count (\d+)/.exec(counts)?.[1]);
      const spdm = /SPD IN\s+(\d+) OUT (\d+) FWD (\d+)/.exec(counts);
      const spd = spdm ? Number(spdm[1]) + Number(spdm[2]) + Number(spdm[3]) : NaN;
      // Per peer: two states, three policies; per node: the fwd and the drop policy.
      if (sad !== 2 * n) problems.push(`${n} peers: node-a has ${sad} SAs, expected ${2 * n}`);
      if (spd !== 3 * n + 2) problems.push(`${n} peers: node-a has ${spd} policies, expected ${3 * n + 2}`);
      const memAvailable = (t: string | undefined) => Number(/MemAvailable:\s+(\d+) kB/.exec(t ?? '')?.[1]);
      // Both nodes received `added` peers.
      const memoryPerPeerKiB = (memAvailable(get('mem-before.txt')) - memAvailable(get('mem-after.txt'))) / (2 * added);

      const runs = scaleRuns(get, n, params, problems, (r) => {
        const before = parseXfrmStates(get(`sa-before.${r}.txt`) ?? '');
        const after = parseXfrmStates(get(`sa-after.${r}.txt`) ?? '');
        if (before.length !== 1 || after.length !== 1) {
          problems.push(`${n} peers, tcp ${r}: expected node-a's one SA to node-b, found ${before.length}/${after.length}`);
          return undefined;
        }
        return after[0].packets - before[0].packets;
      });
      for (const node of ['node-a', 'node-b']) {
        const stat = parseXfrmStat(get(`${node}.xfrm_stat.txt`) ?? '');
        for (const [name, v] of nonZero(stat)) problems.push(`${n} peers, ${node} xfrm_stat ${name} = ${v}`);
      }
      out.push({
        peers: n,
        sad,
        spd,
        installSeconds,
        memoryPerPeerKiB,
        ...runs,
      });
    } catch (e) {
      problems.push(`${n} peers: ${(e as Error).message}`);
    }
  }
  const cache = guest.files.get('input-state-cache.txt')?.toString().trim();
  return {
    guest,
    problems,
    points: out,
    aeadDriver: guest.files.get('crypto-driver.txt')?.toString().trim() ?? '',
    inputStateCache: cache === undefined ? undefined : cache === 'yes',
  };
}

// ---------------------------------------------------------------------------------------------
// Scenario 4, engine side: the same measurements with the engine on both nodes

/** A synthetic peer as the engine's maps see it: outer address and one pod address. */
const enginePeer = (i: number) => ({ ip: syntheticPeer(i).ip, podIp: syntheticPeer(i).podCidr.replace(/0\/24$/, '10') });

/**
 * The peer whose frames stand in for node-a's in the engine's all-peers-active measurement. The
 * engine keeps a replay window per SA: host-built frames under node-a's real SA would either be
 * replays of what node-a's engine already sent or move the window past node-a's own sequence
 * numbers (and drop its traffic from then on). So the injected set is this peer plus synthetic
 * peers 1..n-1: n SAs, as on the xfrm side, in a table of n + 1.
 */
export const ENGINE_INJECTOR_PEER = 0x7fff;

/**
 * The all-peers-active frames for the engine: run `times` rounds over the n peers (the injector
 * peer first), peer j's frames numbered seqBase, seqBase + 1, … — no run may repeat a sequence
 * number an earlier one used.
 */
export function engineActiveFrames(key: CiliumAeadKey, n: number, times: number, seqBase: number): Buffer[] {
  const peers = Array.from({ length: n }, (_, j) => enginePeer(j === 0 ? ENGINE_INJECTOR_PEER : j));
  const sas = peers.map((p) => saFromCiliumKey(key, p.ip, nodeB.ip));
  const frames: Buffer[] = [];
  for (let t = 0; t < times; t++) {
    for (const [j, p] of peers.entries()) {
      const seq = seqBase + t;
      const inner = ipv4Udp(p.podIp, nodeB.podIp, REFERENCE_SPORT, ACTIVE_PORT, probeDatagram(j, ACTIVE_PAYLOAD));
      const iv = Buffer.alloc(8);
      iv.writeUInt32BE(seq, 4);
      frames.push(espEncryptTunnel(sas[j], inner, seq, iv, { src: nodeA.mac, dst: nodeB.mac }));
    }
  }
  return frames;
}

/** Bytes of map entries one peer takes on a node: encryption map, ingress SA, ipcache. */
export const ENGINE_BYTES_PER_PEER =
  EngineMaps.EncryptKey.size + EngineMaps.EncryptSa.size + EngineMaps.IngressKey.size + EngineMaps.IngressSa.size +
  EngineMaps.IpcacheKey.size + EngineMaps.IpcacheEntry.size;

export function engineScaleFiles(
  key: CiliumAeadKey,
  points: readonly number[],
  o: { pingCount: number; tcpBytes: number; repetitions: number; activePackets: number },
): ArchiveEntry[] {
  const max = Math.max(...points);
  // Room for every peer (the object's maps hold 4,096 SAs); the loader resizes before creating them.
  const maxEntries = { encrypt_sa: max + 16, ingress_sa: max + 16 };
  let nextSeq = 1;
  const files: ArchiveEntry[] = [
    text('/scenario/run.sh', readFileSync(`${GUEST_DIR}engine-scale.sh`, 'utf8')),
    text('/scenario/env.sh', env({ SCALE_POINTS: points.join(' '), PING_COUNT: o.pingCount, TCP_BYTES: o.tcpBytes, REPS: o.repetitions })),
    text('/scenario/node-a.engine.json', JSON.stringify(engineConfig(nodeA, nodeB, key, { maxEntries })) + '\n', 0o600),
    text('/scenario/node-b.engine.json', JSON.stringify(engineConfig(nodeB, nodeA, key, { maxEntries })) + '\n', 0o600),
  ];
  let previous = 0;
  for (const n of points) {
    if (n < 1 || n <= previous) throw new RangeError(`scale points must increase from 1: ${points.join(', ')}`);
    const added = Array.from({ length: n - Math.max(previous, 1) }, (_, k) => enginePeer(Math.max(previous, 1) + k));
    if (previous === 0 && o.activePackets > 0) added.unshift(enginePeer(ENGINE_INJECTOR_PEER));
    if (added.length) {
      for (const node of ['node-a', 'node-b']) files.push(text(`/scenario/scale-${n}.${node}.peers.json`, JSON.stringify(added) + '\n'));
    }
    if (o.activePackets > 0) {
      const times = Math.max(1, Math.ceil(o.activePackets / n));
      for (let r = 0; r <= o.repetitions; r++) {
        const t = r === 0 ? 1 : times;
        // Sequence numbers continue across runs and points: the injector peer sends in every one.
        const seqBase = nextSeq;
        nextSeq += t;
        files.push(
          { path: `/scenario/active-${n}.${r}.pcap`, mode: 0o644, data: writePcap(engineActiveFrames(key, n, t, seqBase)) },
          text(`/scenario/active-${n}.${r}.count`, `${n * t}\n`),
        );
      }
    }
    previous = n;
  }
  return files;
}

export interface EngineScaleOptions extends ScaleOptions {
  engineObject?: Buffer;
}

export async function runEngineScale(o: EngineScaleOptions): Promise<ScaleOutcome> {
  const points = o.points ?? SCALE_POINTS;
  const params = { pingCount: o.pingCount ?? 300, tcpBytes: o.tcpBytes ?? 4 << 20, repetitions: o.repetitions ?? 3 };
  const activePackets = o.activePackets ?? 6000;
  const engine = await engineSpec(o.engineObject);
  const guest = await run(
    {
      kernel: o.kernel,
      files: [...engineScaleFiles(o.key, points, { ...params, activePackets }), ...engine.files],
      binaries: engine.binaries,
      deadlineS: 600,
      memoryMiB: o.memoryMiB ?? 1536,
      onLog: o.onLog,
    },
    o.accel,
  );
  return evaluateEngineScale(guest, points, { ...params, active: activePackets > 0 });
}

/** The engine's scale runs, in the shape of the xfrm side's (sad: SA map entries, spd: ipcache entries). */
export function evaluateEngineScale(
  guest: GuestResult,
  points: readonly number[],
  params: { pingCount: number; tcpBytes: number; repetitions: number; active?: boolean },
): ScaleOutcome {
  const problems: string[] = [];
  if (guest.exitStatus !== 0) problems.push(`scenario script exited ${guest.exitStatus ?? '(none)'}`);
  problems.push(...guest.transportErrors, ...guest.moduleFailures.map((m) => `insmod ${m} failed`));
  for (const node of NODES) {
    const up = guest.files.get(`engine-up.${node}.txt`)?.toString() ?? '';
    if (!/^engine: up /m.test(up)) problems.push(`the engine did not come up on ${node}: ${up.trim().split('\n').slice(-3).join(' | ') || '(no output)'}`);
  }
  const out: ScalePoint[] = [];
  let previous = 0;
  for (const n of points) {
    const expectedAdded = n - Math.max(previous, 1) + (previous === 0 && params.active ? 1 : 0);
    previous = n;
    const get = (name: string) => guest.files.get(`scale-${n}.${name}`)?.toString();
    const installed = get('node-a.peers.txt');
    if (!installed) {
      problems.push(`no results for ${n} peers`);
      continue;
    }
    try {
      const installMs = Number(/install_ms=([\d.]+)/.exec(installed)?.[1]);
      for (const node of NODES) {
        const added = Number(/added=(\d+)/.exec(get(`${node}.peers.txt`) ?? '')?.[1]);
        if (added !== expectedAdded) problems.push(`${n} peers: ${node} added ${added} synthetic peers, expected ${expectedAdded}`);
      }
      const runs = scaleRuns(get, n, params, problems, (r) => {
        const before = parseEngineStats(get(`sa-before.${r}.node-a.engine.txt`) ?? '');
        const after = parseEngineStats(get(`sa-after.${r}.node-a.engine.txt`) ?? '');
        return after.egressPackets - before.egressPackets;
      });
      // Nothing dropped anywhere: every audit slot but encrypted, decrypted and plaintext is zero.
      for (const node of NODES) {
        const st = parseEngineStats(get(`end.${node}.engine.txt`) ?? '');
        for (const [index, v] of st.audit.entries()) {
          const fine = [EngineMaps.AUDIT_ENCRYPTED, EngineMaps.AUDIT_DECRYPTED, EngineMaps.AUDIT_PLAINTEXT].includes(index);
          if (!fine && v !== 0) problems.push(`${n} peers, ${node} engine audit slot ${index} (${auditName(index)}) = ${v}`);
        }
      }
      out.push({
        peers: n,
        // The injector peer of the active measurement is one more entry in each map.
        sad: 2 * (n + (params.active ? 1 : 0)),
        spd: n + (params.active ? 1 : 0),
        installSeconds: installMs / 1000,
        memoryPerPeerKiB: ENGINE_BYTES_PER_PEER / 1024,
        ...runs,
      });
    } catch (e) {
      problems.push(`${n} peers: ${(e as Error).message}`);
    }
  }
  return { guest, problems, points: out, aeadDriver: '', inputStateCache: undefined };
}
