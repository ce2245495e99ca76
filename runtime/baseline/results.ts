// Parsers for what the guest sends back: xfrm's own accounts (`ip -s xfrm state`,
// /proc/net/xfrm_stat), busybox ping summaries, netprobe summary lines, and pcap files.

/** /proc/net/xfrm_stat: "XfrmInError  0" per line. Every counter in it counts an error. */
export function parseXfrmStat(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(Xfrm\w+)\s+(\d+)$/.exec(line.trim());
    if (m) out[m[1]] = Number(m[2]);
  }
  if (Object.keys(out).length === 0) throw new Error(`not an xfrm_stat file: ${JSON.stringify(text.slice(0, 80))}`);
  return out;
}

export const nonZero = (stat: Record<string, number>) => Object.entries(stat).filter(([, v]) => v !== 0);

export interface XfrmStateInfo {
  src: string;
  dst: string;
  spi: number;
  reqid: number;
  mode: string;
  mark?: { value: number; mask: number };
  bytes: number;
  packets: number;
  /** From "stats:": packets dropped by the replay check, by a failed ICV/decap, and the window. */
  replay: number;
  failed: number;
  replayWindow: number;
}

/** `ip -s xfrm state` (iproute2 6.1). One record per "src ... dst ..." line at column 0. */
export function parseXfrmStates(text: string): XfrmStateInfo[] {
  const states: XfrmStateInfo[] = [];
  const blocks = text.split(/\n(?=src )/).filter((b) => b.startsWith('src '));
  for (const b of blocks) {
    const head = /^src (\S+) dst (\S+)/.exec(b)!;
    const spi = /proto esp spi 0x([0-9a-f]+)/.exec(b);
    const reqid = /reqid (\d+)/.exec(b);
    const mode = /mode (\w+)/.exec(b);
    const mark = /\n\s*mark (0x[0-9a-f]+)\/(0x[0-9a-f]+)/.exec(b);
    const current = /lifetime current:\s*\n\s*(\d+)\(bytes\), (\d+)\(packets\)/.exec(b);
    const stats = /stats:\s*\n\s*replay-window (\d+) replay (\d+) failed (\d+)/.exec(b);
    if (!spi || !current || !stats) throw new Error(`xfrm state without spi/lifetime/stats (was -s given?):\n${b}`);
    states.push({
      src: head[1],
      dst: head[2],
      spi: parseInt(spi[1], 16),
      reqid: reqid ? Number(reqid[1]) : 0,
      mode: mode ? mode[1] : '',
      mark: mark ? { value: parseInt(mark[1], 16), mask: parseInt(mark[2], 16) } : undefined,
      bytes: Number(current[1]),
      packets: Number(current[2]),
      replayWindow: Number(stats[1]),
      replay: Number(stats[2]),
      failed: Number(stats[3]),
    });
  }
  return states;
}

export interface PingSummary {
  transmitted: number;
  received: number;
  /** Round-trip times in milliseconds (busybox prints three decimals). */
  min: number;
  avg: number;
  max: number;
}

export function parsePing(text: string): PingSummary {
  const counts = /(\d+) packets transmitted, (\d+) packets received/.exec(text);
  const rtt = /round-trip min\/avg\/max = ([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(text);
  if (!counts) throw new Error(`not a ping summary: ${JSON.stringify(text.slice(-200))}`);
  return {
    transmitted: Number(counts[1]),
    received: Number(counts[2]),
    min: rtt ? Number(rtt[1]) : NaN,
    avg: rtt ? Number(rtt[2]) : NaN,
    max: rtt ? Number(rtt[3]) : NaN,
  };
}

/** The last netprobe summary line of a command ("udp-recv ok=32 bad=0 ..."), as key → value. */
export function parseProbe(text: string, command: string): Record<string, string> {
  const lines = text.split('\n').filter((l) => l.startsWith(`${command} `) && !l.includes(' listening '));
  const last = lines.at(-1);
  if (!last) throw new Error(`no "${command}" summary in: ${JSON.stringify(text.slice(-300))}`);
  const out: Record<string, string> = {};
  for (const kv of last.slice(command.length + 1).split(' ')) {
    const eq = kv.indexOf('=');
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/** Frames of a classic little-endian microsecond pcap (what netprobe writes). */
export function readPcap(data: Buffer): Buffer[] {
  if (data.length < 24 || data.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error('not a little-endian pcap');
  if (data.readUInt32LE(20) !== 1) throw new Error('pcap link type is not Ethernet');
  const frames: Buffer[] = [];
  let off = 24;
  while (off < data.length) {
    if (off + 16 > data.length) throw new Error(`pcap record header at ${off} truncated`);
    const len = data.readUInt32LE(off + 8);
    if (off + 16 + len > data.length) throw new Error(`pcap record at ${off} truncated`);
    frames.push(data.subarray(off + 16, off + 16 + len));
    off += 16 + len;
  }
  return frames;
}

/** Writes frames as a classic pcap that netprobe's inject reads (and tcpdump, Wireshark). */
export function writePcap(frames: readonly Uint8Array[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(65535, 16);
  head.writeUInt32LE(1, 20);
  const parts: Buffer[] = [head];
  for (const f of frames) {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(f.length, 8);
    rec.writeUInt32LE(f.length, 12);
    parts.push(rec, Buffer.from(f));
  }
  return Buffer.concat(parts);
}

/** What an ESP-in-IPv4 frame says about itself (outer addresses, SPI, sequence number). */
export interface EspFrame {
  src: string;
  dst: string;
  spi: number;
  seq: number;
  /** ESP payload after SPI and sequence number: IV ‖ ciphertext ‖ ICV. */
  payload: Buffer;
}

export function parseEspFrame(frame: Buffer): EspFrame {
  if (frame.readUInt16BE(12) !== 0x0800) throw new Error('not IPv4');
  const ihl = (frame[14] & 0x0f) * 4;
  if (frame[14 + 9] !== 50) throw new Error(`IP protocol ${frame[14 + 9]} is not ESP`);
  const ip = (o: number) => [...frame.subarray(o, o + 4)].join('.');
  const esp = 14 + ihl;
  return {
    src: ip(14 + 12),
    dst: ip(14 + 16),
    spi: frame.readUInt32BE(esp),
    seq: frame.readUInt32BE(esp + 4),
    payload: frame.subarray(esp + 8, 14 + frame.readUInt16BE(14 + 2)),
  };
}

/**
 * netprobe's payload pattern (guest/netprobe.c): byte i of datagram or stream `seq`. UDP
 * datagrams start with seq as 4 bytes big-endian, then pattern(seq, 4..size-1).
 */
export function probePattern(seq: number, i: number): number {
  // Only the low byte survives the uint8_t cast, so low bytes suffice (and stay exact in doubles).
  return (((i & 0xff) * 131) ^ (Math.floor(i / 256) & 0xff) ^ (Math.imul(seq, 29) & 0xff) ^ 0x5a) & 0xff;
}

/** The UDP payload netprobe udp-send puts in datagram `seq` of `size` bytes. */
export function probeDatagram(seq: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32BE(seq >>> 0, 0);
  for (let i = 4; i < size; i++) b[i] = probePattern(seq, i);
  return b;
}

/** The engine's counters on a node (guest-engine.ts `stats`): the real peer's SAs and the audit. */
export interface EngineStats {
  tag: string;
  egressPackets: number;
  egressBytes: number;
  egressDropped: number;
  ingressPackets: number;
  ingressBytes: number;
  ingressReplay: number;
  ingressIcv: number;
  /** Packets per audit slot, by index (engine/maps.ts AUDIT_*). */
  audit: number[];
}

/** The `engine: stats TAG k=v ...` line guest-engine.ts prints. */
export function parseEngineStats(text: string): EngineStats {
  const line = text.split('\n').find((l) => l.startsWith('engine: stats '));
  if (!line) throw new Error(`no engine stats line in: ${JSON.stringify(text.slice(-400))}`);
  const [, , tag, ...kvs] = line.split(' ');
  const kv = new Map(kvs.map((p) => p.split('=') as [string, string]));
  const num = (k: string) => {
    const v = kv.get(k);
    if (v === undefined || v === 'none') throw new Error(`engine stats ${tag}: no ${k} (SA missing?)`);
    return Number(v);
  };
  const audit: number[] = [];
  for (const [k, v] of kv) {
    const m = /^audit_(\d+)$/.exec(k);
    if (m) audit[Number(m[1])] = Number(v);
  }
  return {
    tag,
    egressPackets: num('egress_packets'),
    egressBytes: num('egress_bytes'),
    egressDropped: num('egress_dropped'),
    ingressPackets: num('ingress_packets'),
    ingressBytes: num('ingress_bytes'),
    ingressReplay: num('ingress_replay'),
    ingressIcv: num('ingress_icv'),
    audit: Array.from(audit, (x) => x ?? 0),
  };
}
