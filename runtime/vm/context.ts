// Program contexts whose loads the kernel rewrites: struct __sk_buff (tc) and struct xdp_md.
// Offsets are the UAPI's (linux/bpf.h, checked with offsetof on Linux 6.18). Fields the
// program reads as u32 but that are pointers (data, data_end, data_meta) load full 64-bit
// packet pointers, as after the verifier's rewrite.

import type { ContextAccess } from './memory.ts';
import type { Packet } from './packet.ts';

/** struct __sk_buff field offsets. */
export const SkBuff = {
  len: 0,
  pkt_type: 4,
  mark: 8,
  queue_mapping: 12,
  protocol: 16,
  vlan_present: 20,
  vlan_tci: 24,
  vlan_proto: 28,
  priority: 32,
  ingress_ifindex: 36,
  ifindex: 40,
  tc_index: 44,
  cb: 48, // __u32 cb[5]
  hash: 68,
  tc_classid: 72,
  data: 76,
  data_end: 80,
  napi_id: 84,
  family: 88,
  remote_ip4: 92,
  local_ip4: 96,
  remote_ip6: 100,
  local_ip6: 116,
  remote_port: 132,
  local_port: 136,
  data_meta: 140,
  flow_keys: 144,
  tstamp: 152,
  wire_len: 160,
  gso_segs: 164,
  sk: 168,
  gso_size: 176,
  tstamp_type: 180,
  hwtstamp: 184,
  SIZE: 192,
} as const;

/** struct xdp_md field offsets. */
export const XdpMd = {
  data: 0,
  data_end: 4,
  data_meta: 8,
  ingress_ifindex: 12,
  rx_queue_index: 16,
  egress_ifindex: 20,
  SIZE: 24,
} as const;

export const ETH_HLEN = 14;
export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
/** skb->pkt_type values. */
export const PacketType = { HOST: 0, BROADCAST: 1, MULTICAST: 2, OTHERHOST: 3 } as const;

/** Fields BPF_PROG_TEST_RUN copies between ctx_in/ctx_out and the skb (convert___skb_to_skb); all others must be zero. */
const TEST_RUN_FIELDS: readonly [number, number][] = [
  [SkBuff.mark, 4],
  [SkBuff.priority, 4],
  [SkBuff.ingress_ifindex, 4],
  [SkBuff.ifindex, 4],
  [SkBuff.cb, 20],
  [SkBuff.tstamp, 8],
  [SkBuff.wire_len, 4],
  [SkBuff.gso_segs, 4],
  [SkBuff.gso_size, 4],
  [SkBuff.tstamp_type, 1],
  [SkBuff.hwtstamp, 8],
];

/** Writable from tc programs (tc_cls_act_is_valid_access). */
const TC_WRITABLE: readonly [number, number][] = [
  [SkBuff.mark, 4],
  [SkBuff.queue_mapping, 4],
  [SkBuff.priority, 4],
  [SkBuff.tc_index, 4],
  [SkBuff.cb, 20],
  [SkBuff.tc_classid, 4],
  [SkBuff.tstamp, 8],
];

const within = (ranges: readonly [number, number][], off: number, size: number): boolean =>
  ranges.some(([start, len]) => off >= start && off + size <= start + len);

const sizeOk = (off: number, size: number): boolean => (size === 1 || size === 2 || size === 4 || size === 8) && off % size === 0;

/**
 * The skb as a tc program sees it. Plain fields live in a struct __sk_buff image; len and the
 * packet pointers come from the packet; protocol etc. are kept here because helpers change them.
 */
export class SkbContext implements ContextAccess {
  readonly fields = Buffer.alloc(SkBuff.SIZE);
  /** skb->encapsulation, set by skb_adjust_room with an ENCAP flag. */
  encapsulation = false;
  /** Offset of the network header from data (skb_network_offset). */
  networkOffset = ETH_HLEN;

  constructor(readonly packet: Packet) {}

  /**
   * Initialise like bpf_prog_test_run_skb: the frame is Ethernet, eth_type_trans sets
   * protocol and pkt_type, the device is loopback (ifindex 1) unless ctx_in names one.
   * ctx_in fields outside the copied set must be zero (else the kernel's -EINVAL).
   */
  static forTestRun(packet: Packet, ctxIn?: Buffer): SkbContext {
    const skb = new SkbContext(packet);
    const f = skb.fields;
    if (ctxIn) {
      if (ctxIn.length > SkBuff.SIZE) throw new Error(`ctx_in is ${ctxIn.length} bytes, struct __sk_buff is ${SkBuff.SIZE}`);
      for (let off = 0; off < ctxIn.length; off++) {
        if (ctxIn[off] !== 0 && !within(TEST_RUN_FIELDS, off, 1)) throw new Error(`ctx_in: struct __sk_buff byte ${off} must be zero (EINVAL)`);
      }
      f.set(ctxIn);
    }
    if (f.readUInt32LE(SkBuff.ifindex) === 0) f.writeUInt32LE(1, SkBuff.ifindex);
    const frame = packet.view();
    if (frame.length < ETH_HLEN) throw new Error(`packet is ${frame.length} bytes, shorter than an Ethernet header (EINVAL)`);
    // skb->protocol is __be16; a u32 load of it sees the raw bytes.
    f.writeUInt32LE(frame.readUInt16LE(12), SkBuff.protocol);
    f.writeUInt32LE(pktType(frame), SkBuff.pkt_type);
    if (f.readUInt32LE(SkBuff.wire_len) === 0) f.writeUInt32LE(frame.length, SkBuff.wire_len);
    if (f.readUInt32LE(SkBuff.gso_segs) === 0) f.writeUInt32LE(1, SkBuff.gso_segs);
    return skb;
  }

  /** ctx_out as BPF_PROG_TEST_RUN fills it: only the copied fields. */
  ctxOut(): Buffer {
    const out = Buffer.alloc(SkBuff.SIZE);
    for (const [off, len] of TEST_RUN_FIELDS) out.set(this.fields.subarray(off, off + len), off);
    return out;
  }

  /** The ethertype in host order (skb->protocol is stored big-endian). */
  get protocol(): number {
    const raw = this.fields.readUInt32LE(SkBuff.protocol) & 0xffff;
    return ((raw & 0xff) << 8) | (raw >> 8);
  }

  set protocol(ethertype: number) {
    this.fields.writeUInt32LE(((ethertype & 0xff) << 8) | ((ethertype >> 8) & 0xff), SkBuff.protocol);
  }

  set hash(value: number) {
    this.fields.writeUInt32LE(value >>> 0, SkBuff.hash);
  }

  load(off: number, size: number): bigint | undefined {
    if (!sizeOk(off, size) || off + size > SkBuff.SIZE) return undefined;
    switch (off) {
      case SkBuff.data:
        return size === 4 ? this.packet.dataPointer : undefined;
      case SkBuff.data_end:
        return size === 4 ? this.packet.endPointer : undefined;
      case SkBuff.data_meta:
        return size === 4 ? this.packet.metaPointer : undefined;
      case SkBuff.sk:
        return size === 8 ? 0n : undefined; // no socket in a test run
    }
    // sk_skb-only fields and the flow dissector's flow_keys are not readable from tc.
    if ((off >= SkBuff.family && off < SkBuff.data_meta) || (off >= SkBuff.flow_keys && off < SkBuff.tstamp)) return undefined;
    if (off < SkBuff.len + 4) {
      const len = Buffer.alloc(4);
      len.writeUInt32LE(this.packet.length);
      return readField(len, off, size);
    }
    // 8-byte loads only of the u64 fields
    if (size === 8 && off !== SkBuff.tstamp && off !== SkBuff.hwtstamp) return undefined;
    return readField(this.fields, off, size);
  }

  store(off: number, size: number, value: bigint): boolean {
    if (!sizeOk(off, size) || !within(TC_WRITABLE, off, size)) return false;
    // tstamp is written whole; cb[] also takes narrow stores; the other fields are u32.
    const inCb = off >= SkBuff.cb && off < SkBuff.cb + 20;
    if (off === SkBuff.tstamp ? size !== 8 : !inCb && size !== 4) return false;
    writeField(this.fields, off, size, value);
    return true;
  }
}

/** struct xdp_md for an XDP test run: read-only, 4-byte loads. */
export class XdpContext implements ContextAccess {
  constructor(
    readonly packet: Packet,
    readonly ingressIfindex = 1,
    readonly rxQueueIndex = 0,
  ) {}

  load(off: number, size: number): bigint | undefined {
    if (size !== 4 || off % 4 !== 0) return undefined;
    switch (off) {
      case XdpMd.data:
        return this.packet.dataPointer;
      case XdpMd.data_end:
        return this.packet.endPointer;
      case XdpMd.data_meta:
        return this.packet.metaPointer;
      case XdpMd.ingress_ifindex:
        return BigInt(this.ingressIfindex);
      case XdpMd.rx_queue_index:
        return BigInt(this.rxQueueIndex);
      case XdpMd.egress_ifindex:
        return 0n; // only devmap programs have an egress device
    }
    return undefined;
  }

  store(): boolean {
    return false;
  }

  ctxOut(): Buffer {
    const out = Buffer.alloc(XdpMd.SIZE);
    out.writeUInt32LE(this.ingressIfindex, XdpMd.ingress_ifindex);
    out.writeUInt32LE(this.rxQueueIndex, XdpMd.rx_queue_index);
    return out;
  }
}

function pktType(frame: Buffer): number {
  const dst = frame.subarray(0, 6);
  if (dst.every((b) => b === 0xff)) return PacketType.BROADCAST;
  if (dst[0]! & 1) return PacketType.MULTICAST;
  // The test run's device is loopback, whose address is all zeros.
  return dst.every((b) => b === 0) ? PacketType.HOST : PacketType.OTHERHOST;
}

function readField(buf: Buffer, off: number, size: number): bigint {
  switch (size) {
    case 1: return BigInt(buf[off]!);
    case 2: return BigInt(buf.readUInt16LE(off));
    case 4: return BigInt(buf.readUInt32LE(off));
    default: return buf.readBigUInt64LE(off);
  }
}

function writeField(buf: Buffer, off: number, size: number, value: bigint): void {
  const v = BigInt.asUintN(size * 8, value);
  switch (size) {
    case 1: buf[off] = Number(v); break;
    case 2: buf.writeUInt16LE(Number(v), off); break;
    case 4: buf.writeUInt32LE(Number(v), off); break;
    default: buf.writeBigUInt64LE(v, off);
  }
}
