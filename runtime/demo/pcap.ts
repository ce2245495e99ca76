// Classic pcap files (the format tcpdump -w writes and Wireshark reads): little-endian or
// big-endian, microsecond or nanosecond magic, any link type; frames as Buffers.

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
