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
