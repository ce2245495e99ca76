// Ethernet frames for demos and examples: IPv4 (ICMP, UDP, TCP), IPv6 and ARP, with valid IPv4
// header checksums, so programs that parse them see what a real link carries.

import { ipv4HeaderChecksum } from '../esp/esp.ts';

const MAC_A = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B = [0x02, 0, 0, 0, 0, 0x0b];
const BROADCAST = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

export interface Frame {
  label: string;
  bytes: Buffer;
}

function ethernet(dst: number[], etherType: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  h.set(dst, 0);
  h.set(MAC_B, 6);
  h.writeUInt16BE(etherType, 12);
  return Buffer.concat([h, payload]);
}

function ipv4(protocol: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt16BE(0x4000, 6); // DF
  h[8] = 64;
  h[9] = protocol;
  h.set([10, 250, 0, 2], 12);
  h.set([10, 250, 0, 1], 16);
  h.writeUInt16BE(ipv4HeaderChecksum(h), 10);
  return Buffer.concat([h, payload]);
}

/** A small mix of traffic: what a node's uplink sees in a second. */
export function trafficMix(): Frame[] {
  const udp = Buffer.alloc(8 + 32);
  udp.writeUInt16BE(40000, 0);
  udp.writeUInt16BE(9999, 2);
  udp.writeUInt16BE(udp.length, 4);
  const tcp = Buffer.alloc(20 + 100);
  tcp.writeUInt16BE(40001, 0);
  tcp.writeUInt16BE(443, 2);
  tcp[12] = 0x50;
  const icmp = Buffer.alloc(8 + 56);
  icmp[0] = 8;
  const ipv6 = Buffer.alloc(40 + 8);
  ipv6[0] = 0x60;
  ipv6.writeUInt16BE(8, 4);
  ipv6[6] = 17;
  ipv6[7] = 64;
  const arp = Buffer.from('0001080006040001' + '02000000000b' + '0afa0002' + '000000000000' + '0afa0001', 'hex');
  return [
    { label: 'IPv4 ICMP echo', bytes: ethernet(MAC_A, 0x0800, ipv4(1, icmp)) },
    { label: 'IPv4 UDP', bytes: ethernet(MAC_A, 0x0800, ipv4(17, udp)) },
    { label: 'IPv4 TCP', bytes: ethernet(MAC_A, 0x0800, ipv4(6, tcp)) },
    { label: 'IPv4 TCP', bytes: ethernet(MAC_A, 0x0800, ipv4(6, tcp.subarray(0, 40))) },
    { label: 'IPv6 UDP', bytes: ethernet(MAC_A, 0x86dd, ipv6) },
    { label: 'ARP broadcast', bytes: ethernet(BROADCAST, 0x0806, arp) },
  ];
}

// ---------------------------------------------------------------------------------------------
// Conversations: Ethernet + IPv4 + TCP/UDP between given addresses, every checksum valid (the
// VM engine demo, runtime/demo/vm-engine-demo.ts, scripts whole TCP connections out of these).

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/** RFC 1071 Internet checksum over the concatenation of `parts` (an odd part is padded only at the end). */
export function internetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  let odd = -1; // a byte carried over from an odd-length part
  for (const p of parts) {
    let i = 0;
    if (odd >= 0 && p.length > 0) {
      sum += (odd << 8) | p[0]!;
      odd = -1;
      i = 1;
    }
    for (; i + 1 < p.length; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
    if (i < p.length) odd = p[i]!;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (odd >= 0) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const addrBytes = (ip: string): Buffer => Buffer.from(ip.split('.').map(Number));

/** The TCP/UDP checksum of `segment` (checksum field included as it is) with the IPv4 pseudo-header. */
export function l4Checksum(src: string, dst: string, protocol: number, segment: Uint8Array): number {
  const pseudo = Buffer.alloc(12);
  addrBytes(src).copy(pseudo, 0);
  addrBytes(dst).copy(pseudo, 4);
  pseudo[9] = protocol;
  pseudo.writeUInt16BE(segment.length, 10);
  return internetChecksum(pseudo, segment);
}

export interface Ipv4Endpoints {
  src: string;
  dst: string;
  /** 64 for a packet the node sends itself, 63 once a node forwarded it from a pod. */
  ttl?: number;
  id?: number;
}

/** An IPv4 header (DF, no options) with a valid checksum, followed by `payload`. */
export function ipv4Packet(e: Ipv4Endpoints, protocol: number, payload: Uint8Array): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt16BE((e.id ?? 0) & 0xffff, 4);
  h.writeUInt16BE(0x4000, 6);
  h[8] = e.ttl ?? 64;
  h[9] = protocol;
  addrBytes(e.src).copy(h, 12);
  addrBytes(e.dst).copy(h, 16);
  h.writeUInt16BE(ipv4HeaderChecksum(h), 10);
  return Buffer.concat([h, payload]);
}

/** An Ethernet II frame. MACs as six bytes. */
export function ethernetFrame(dst: ArrayLike<number>, src: ArrayLike<number>, etherType: number, payload: Uint8Array): Buffer {
  const h = Buffer.alloc(14);
  h.set(dst as number[], 0);
  h.set(src as number[], 6);
  h.writeUInt16BE(etherType, 12);
  return Buffer.concat([h, payload]);
}

export interface TcpFields {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window?: number;
  /** The MSS option (SYN, SYN-ACK). */
  mss?: number;
}

/** A TCP segment (checksum over the pseudo-header) inside IPv4. */
export function tcpPacket(e: Ipv4Endpoints, t: TcpFields, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const opts = t.mss !== undefined ? Buffer.from([2, 4, t.mss >> 8, t.mss & 0xff]) : Buffer.alloc(0);
  const h = Buffer.alloc(20 + opts.length);
  h.writeUInt16BE(t.srcPort, 0);
  h.writeUInt16BE(t.dstPort, 2);
  h.writeUInt32BE(t.seq >>> 0, 4);
  h.writeUInt32BE(t.ack >>> 0, 8);
  h[12] = (h.length / 4) << 4;
  h[13] = t.flags;
  h.writeUInt16BE(t.window ?? 65535, 14);
  opts.copy(h, 20);
  const seg = Buffer.concat([h, payload]);
  seg.writeUInt16BE(l4Checksum(e.src, e.dst, 6, seg), 16);
  return ipv4Packet(e, 6, seg);
}

/** A UDP datagram (checksum over the pseudo-header; 0 is sent as 0xffff) inside IPv4. */
export function udpPacket(e: Ipv4Endpoints, srcPort: number, dstPort: number, payload: Uint8Array): Buffer {
  const seg = Buffer.alloc(8 + payload.length);
  seg.writeUInt16BE(srcPort, 0);
  seg.writeUInt16BE(dstPort, 2);
  seg.writeUInt16BE(seg.length, 4);
  seg.set(payload, 8);
  seg.writeUInt16BE(l4Checksum(e.src, e.dst, 17, seg) || 0xffff, 6);
  return ipv4Packet(e, 17, seg);
}

export interface ParsedIpv4 {
  src: string;
  dst: string;
  ttl: number;
  protocol: number;
  /** The L4 bytes (up to the IPv4 total length). */
  payload: Buffer;
  /** IPv4 header checksum and the TCP/UDP checksum both verify. */
  checksumsOk: boolean;
}

/** Parse an Ethernet + IPv4 frame as a receiving stack would, verifying its checksums; null if not IPv4. */
export function parseIpv4Frame(frame: Buffer): ParsedIpv4 | null {
  if (frame.length < 34 || frame.readUInt16BE(12) !== 0x0800 || frame[14]! >> 4 !== 4) return null;
  const ihl = (frame[14]! & 15) * 4;
  const total = frame.readUInt16BE(16);
  if (ihl < 20 || total < ihl || 14 + total > frame.length) return null;
  const header = frame.subarray(14, 14 + ihl);
  const payload = frame.subarray(14 + ihl, 14 + total);
  const src = [...frame.subarray(26, 30)].join('.');
  const dst = [...frame.subarray(30, 34)].join('.');
  const protocol = frame[23]!;
  let checksumsOk = internetChecksum(header) === 0;
  if (protocol === 6) checksumsOk &&= payload.length >= 20 && l4Checksum(src, dst, 6, payload) === 0;
  if (protocol === 17) checksumsOk &&= payload.length >= 8 && (payload.readUInt16BE(6) === 0 || l4Checksum(src, dst, 17, payload) === 0);
  return { src, dst, ttl: frame[22]!, protocol, payload, checksumsOk };
}
