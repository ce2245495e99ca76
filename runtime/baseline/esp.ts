// Framing around the project's ESP reference (runtime/esp: RFC 4303 with AES-GCM per RFC 4106,
// the implementation the engine is diffed against byte for byte) for the baseline's probes.
//
// The interoperability oracle: frames xfrm puts on the wire must open with runtime/esp to exactly
// what was sent, and frames runtime/esp seals must be accepted by xfrm — so Linux xfrm checks the
// reference, and the reference checks the engine.
//
//   ESP packet:  SPI(4) | seq(4) | IV(8) | ciphertext(inner IP | padding 1,2,3.. | pad len | next hdr) | ICV
//   nonce = salt(4) ‖ IV(8)        AAD = SPI ‖ seq (no ESN)        key‖salt as in Cilium's key file
import { EspSa as ReferenceSa, espOpen, espPadLength, espSeal } from '../esp/esp.ts';
import type { CiliumAeadKey } from './keys.ts';

export interface EspSa {
  spi: number;
  aesKey: Buffer;
  salt: Buffer;
  icvBytes: number;
  /** Outer (tunnel) addresses. */
  src: string;
  dst: string;
}

export function saFromCiliumKey(key: CiliumAeadKey, src: string, dst: string): EspSa {
  const k = Buffer.from(key.keyAndSalt);
  return { spi: key.spi, aesKey: k.subarray(0, k.length - 4), salt: k.subarray(k.length - 4), icvBytes: key.icvBits / 8, src, dst };
}

function referenceSa(sa: EspSa): ReferenceSa {
  return new ReferenceSa({ spi: sa.spi, key: sa.aesKey, salt: sa.salt, icvLength: sa.icvBytes as 8 | 12 | 16, mode: 'tunnel' });
}

const ipBytes = (ip: string) => Buffer.from(ip.split('.').map(Number));
const ipString = (b: Buffer) => [...b].join('.');

function ipChecksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += header.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An IPv4 header (20 bytes, DF clear, ID 0) for `payloadLength` bytes of `protocol`. */
export function ipv4Header(src: string, dst: string, protocol: number, payloadLength: number, ttl = 64): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payloadLength, 2);
  h[8] = ttl;
  h[9] = protocol;
  ipBytes(src).copy(h, 12);
  ipBytes(dst).copy(h, 16);
  h.writeUInt16BE(ipChecksum(h), 10);
  return h;
}

/** An IPv4/UDP packet with the UDP checksum computed (pseudo-header included). */
export function ipv4Udp(src: string, dst: string, sport: number, dport: number, payload: Buffer, ttl = 64): Buffer {
  const udp = Buffer.alloc(8 + payload.length);
  udp.writeUInt16BE(sport, 0);
  udp.writeUInt16BE(dport, 2);
  udp.writeUInt16BE(udp.length, 4);
  payload.copy(udp, 8);
  const pseudo = Buffer.concat([ipBytes(src), ipBytes(dst), Buffer.from([0, 17]), Buffer.from([udp.length >> 8, udp.length & 0xff])]);
  const all = Buffer.concat([pseudo, udp, Buffer.alloc(udp.length % 2)]);
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) sum += all.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  udp.writeUInt16BE(~sum & 0xffff || 0xffff, 6);
  return Buffer.concat([ipv4Header(src, dst, 17, udp.length, ttl), udp]);
}

const macBytes = (mac: string) => Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));

/**
 * Encrypts an inner IPv4 packet in tunnel mode and frames it for the wire (Ethernet II).
 * `iv` is the 8-byte explicit IV; xfrm derives it from the sequence number (seqiv), any unique
 * value is valid.
 */
export function espEncryptTunnel(
  sa: EspSa,
  inner: Buffer,
  seq: number,
  iv: Buffer,
  macs: { src: string; dst: string },
): Buffer {
  // Padding 1, 2, 3, … to a 4-byte boundary and next header 4 (IPv4 in tunnel mode) are
  // runtime/esp's, as Linux sends them.
  const esp = Buffer.from(espSeal(referenceSa(sa), BigInt(seq), iv, inner, 4));
  const outer = ipv4Header(sa.src, sa.dst, 50, esp.length);
  return Buffer.concat([macBytes(macs.dst), macBytes(macs.src), Buffer.from([0x08, 0x00]), outer, esp]);
}

export interface DecryptedEsp {
  src: string;
  dst: string;
  spi: number;
  seq: number;
  iv: Buffer;
  nextHeader: number;
  padLength: number;
  /** The inner packet (tunnel mode: an IPv4 packet). */
  inner: Buffer;
}

/** Decrypts an ESP-in-IPv4 Ethernet frame; throws when the ICV does not verify. */
export function espDecrypt(sa: EspSa, frame: Buffer): DecryptedEsp {
  if (frame.readUInt16BE(12) !== 0x0800) throw new Error('not IPv4');
  const ip = frame.subarray(14);
  const ihl = (ip[0] & 0x0f) * 4;
  if (ip[9] !== 50) throw new Error(`IP protocol ${ip[9]} is not ESP`);
  const esp = ip.subarray(ihl, ip.readUInt16BE(2));
  const spi = esp.readUInt32BE(0);
  if (spi !== sa.spi) throw new Error(`SPI ${spi} is not the SA's ${sa.spi}`);
  const opened = espOpen(referenceSa(sa), esp);
  if (!opened.ok) throw new Error(`ESP does not open: ${opened.reason}: ${opened.detail}`);
  return {
    src: ipString(ip.subarray(12, 16)),
    dst: ipString(ip.subarray(16, 20)),
    spi,
    seq: Number(opened.seq),
    iv: Buffer.from(opened.iv),
    nextHeader: opened.nextHeader,
    padLength: espPadLength(opened.payload.length),
    inner: Buffer.from(opened.payload),
  };
}

/** The UDP payload of an IPv4/UDP packet, with its addresses and ports. */
export function udpOf(packet: Buffer): { src: string; dst: string; sport: number; dport: number; payload: Buffer } {
  const ihl = (packet[0] & 0x0f) * 4;
  if (packet[9] !== 17) throw new Error(`inner protocol ${packet[9]} is not UDP`);
  const udp = packet.subarray(ihl);
  return {
    src: ipString(packet.subarray(12, 16)),
    dst: ipString(packet.subarray(16, 20)),
    sport: udp.readUInt16BE(0),
    dport: udp.readUInt16BE(2),
    payload: Buffer.from(udp.subarray(8, udp.readUInt16BE(4))),
  };
}
