// Classic pcap files (the format tcpdump -w writes and Wireshark reads): little-endian or
// big-endian, microsecond or nanosecond magic, any link type; frames as Buffers. And the
// Wireshark ESP SA table (`esp_sa`) that lets tshark/Wireshark decrypt a capture of the engine.

import type { NodeDirectory } from '../keys/nodes.ts';
import type { SecurityAssociation } from '../keys/sa.ts';

export interface PcapFrame {
  seconds: number;
  fraction: number;
  data: Buffer;
}

export function readPcap(file: Buffer): { linkType: number; frames: PcapFrame[] } {
  if (file.length < 24) throw new Error(`pcap: ${file.length} bytes is shorter than the 24-byte header`);
  const magic = file.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && file.readUInt32BE(0) !== 0xa1b2c3d4 && file.readUInt32BE(0) !== 0xa1b23c4d) throw new Error('pcap: bad magic');
  const u32 = (off: number) => (le ? file.readUInt32LE(off) : file.readUInt32BE(off));
  const frames: PcapFrame[] = [];
  for (let off = 24; off + 16 <= file.length; ) {
    const caplen = u32(off + 8);
    if (off + 16 + caplen > file.length) break; // a capture cut short mid-frame
    frames.push({ seconds: u32(off), fraction: u32(off + 4), data: file.subarray(off + 16, off + 16 + caplen) });
    off += 16 + caplen;
  }
  return { linkType: u32(20), frames };
}

export interface LinkCensus {
  frames: number;
  esp: number;
  /** IPv4 frames that are not ESP: what crossed the link in clear. */
  plaintextIpv4: number;
  other: number;
}

/** Count what crossed an Ethernet link: ESP, plaintext IPv4, everything else (ARP, IPv6 ND …). */
export function censusOf(frames: PcapFrame[]): LinkCensus {
  const c: LinkCensus = { frames: frames.length, esp: 0, plaintextIpv4: 0, other: 0 };
  for (const f of frames) {
    if (f.data.length >= 34 && f.data.readUInt16BE(12) === 0x0800) {
      if (f.data[23] === 50) c.esp++;
      else c.plaintextIpv4++;
    } else c.other++;
  }
  return c;
}

export const LINKTYPE_ETHERNET = 1;

/** A classic pcap file (little-endian, microsecond timestamps) of `frames`. */
export function writePcap(frames: PcapFrame[], linkType = LINKTYPE_ETHERNET): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262144, 16); // snaplen
  header.writeUInt32LE(linkType, 20);
  const parts: Buffer[] = [header];
  for (const f of frames) {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(f.seconds >>> 0, 0);
    rec.writeUInt32LE(f.fraction >>> 0, 4);
    rec.writeUInt32LE(f.data.length, 8);
    rec.writeUInt32LE(f.data.length, 12);
    parts.push(rec, f.data);
  }
  return Buffer.concat(parts);
}

/** A node's engine as the esp_sa table needs it (runtime/engine/node.ts EngineNode fits, so does the VM demo's node). */
export interface EspSaSource {
  options: { name: string; nodes: NodeDirectory };
  store: { list(): Promise<SecurityAssociation[]> };
}

/**
 * Wireshark's ESP SA table (the `esp_sa` UAT file): one line per egress SA of every node, so
 * tshark/Wireshark decrypt the capture independently. Demo keys only — this opt-in export is the
 * one place key bytes leave.
 */
export async function espSaTable(engines: EspSaSource[]): Promise<string> {
  const lines = ['# Wireshark ESP SAs (esp_sa): protocol, src, dst, SPI, encryption, key, authentication, key'];
  for (const e of engines) {
    const self = e.options.nodes.resolve(e.options.name).ip;
    for (const sa of await e.store.list()) {
      if (sa.direction !== 'egress') continue;
      const peer = e.options.nodes.resolve(sa.remoteNode).ip;
      const enc = `AES-GCM with ${sa.icvBits / 8} octet ICV [RFC4106]`;
      const key = `0x${Buffer.concat([sa.key.bytes(), sa.salt.bytes()]).toString('hex')}`;
      lines.push(`"IPv4","${self}","${peer}","0x${sa.spi.toString(16).padStart(8, '0')}","${enc}","${key}","NULL",""`);
    }
  }
  return `${lines.join('\n')}\n`;
}
