// ESP (RFC 4303) with AES-GCM (RFC 4106) over IPv4, on whole Ethernet frames as tc sees them.
// This is the userspace reference the BPF engine is diffed against byte for byte, so every choice
// the engine makes is made here the same way, and every choice is written down.
//
// ESP packet (RFC 4303 §2, RFC 4106 §3):
//
//    0                   1                   2                   3
//   +---------------------------------------------------------------+
//   |               Security Parameters Index (SPI)                 |  ─┐ AAD: SPI ‖ seq_lo, or
//   +---------------------------------------------------------------+   │ SPI ‖ seq_hi ‖ seq_lo
//   |                 Sequence Number (low 32 bits)                 |  ─┘ with ESN (RFC 4106 §5)
//   +---------------------------------------------------------------+
//   |              Explicit IV (8 bytes, nonce = salt ‖ IV)         |
//   +---------------------------------------------------------------+  ─┐
//   |  Payload (inner IPv4 packet, or the transport payload) …      |   │ encrypted
//   |               … Padding 1, 2, 3 … | Pad Length | Next Header  |  ─┘ (ends on 4 bytes)
//   +---------------------------------------------------------------+
//   |                 ICV (8, 12 or 16 bytes)                       |
//   +---------------------------------------------------------------+
//
// Choices (the engine makes the same ones):
// - Sequence numbers start at 1 and never wrap: at 2³² − 1 (2⁶⁴ − 1 with ESN) the SA stops
//   sending ('seq-exhausted', RFC 4303 §3.3.3).
// - Explicit IV = the 64-bit sequence number, big-endian ('counter'). Linux xfrm instead runs
//   seqiv(rfc4106(gcm(aes))): IV = be64(seq) ⊕ an 8-byte random salt drawn per SA when the tfm is
//   created ('seqiv' here). Both are unique per (key, seq); the counter form needs a key that only
//   one sender uses (ebpf-ts derives one per direction of each node pair, runtime/keys/derive.ts).
//   Receivers never interpret the IV, so decap accepts either — and anything else.
// - Padding: the minimum that right-aligns Pad Length and Next Header on 4 bytes (GCM's block
//   size is 1), contents 1, 2, 3 … (RFC 4303 §2.4, what Linux emits). Decap checks the contents
//   (RFC 4303 says the receiver SHOULD); Linux does not, but also never sends anything else.
// - Tunnel mode outer IPv4: no options, DSCP copied from inner, ECN per RFC 6040 normal mode
//   (copied, CE becomes ECT(0) — Linux's INET_ECN_encapsulate), DF per policy ('copy' is Linux's
//   default, 'clear' is XFRM_STATE_NOPMTUDISC), TTL from the SA (Linux: the route's, 64 by
//   default), ID = low 16 bits of the sequence number unless given (deterministic so BPF and this
//   code agree; unique per SA for 65536 packets, which RFC 6864 asks for non-atomic datagrams).
// - Tunnel decap: inner packet trimmed to its own total length (drops TFC padding); outer CE
//   marks an ECN-capable inner packet CE (Linux: ipip_ecn_decapsulate).
// - Transport mode: the IPv4 header, options included, stays (TOS, ID, flags, TTL, addresses);
//   protocol becomes 50 and is restored from Next Header on decap, any Next Header (4 included:
//   IP-in-IP over a transport SA is delivered as protocol 4). Decap updates the header checksum
//   incrementally (RFC 1624) rather than recomputing it: the header is not authenticated, and a
//   header damaged in flight must still fail the IP stack's check. Fragments are refused:
//   transport ESP covers whole datagrams only.
// - Ethernet: the 14-byte header passes through untouched (the redirect rewrites MACs); bytes past
//   the IPv4 total length (Ethernet minimum-size padding) are not part of the packet.
// - Order on decap: SPI → replay check → ICV (constant time) → padding → window advance. The
//   window moves only for packets that are authentic and well formed (RFC 4303 §3.4.3; Linux
//   advances after the whole ESP input succeeded too).
import { inspect } from 'node:util';
import type { SecurityAssociation } from '../keys/sa.ts';
import { gcmKey, gcmOpen, gcmSeal, type GcmKey } from './gcm.ts';
import { DEFAULT_REPLAY_WINDOW, ReplayWindow } from './replay.ts';

export const ETH_HLEN = 14;
export const ETH_P_IP = 0x0800;
export const IPPROTO_IPIP = 4;
export const IPPROTO_ESP = 50;
/** Next Header 59 marks a TFC dummy packet (RFC 4303 §2.6): receivers discard it. */
export const IPPROTO_NONE = 59;
export const ESP_HLEN = 8;
export const ESP_IV_LEN = 8;
export const IPV4_HLEN = 20;

export type IcvLength = 8 | 12 | 16;
export type EspMode = 'tunnel' | 'transport';
/** Outer DF bit in tunnel mode: copy the inner one, always set, always clear. */
export type DfPolicy = 'copy' | 'set' | 'clear';

/** Why a packet was not sent or not delivered; the engine's per-reason drop counters. */
export type DropReason =
  | 'malformed' // not IPv4, truncated, lengths inconsistent
  | 'fragment' // an outer fragment on decap, or a fragment offered to transport mode
  | 'unsupported' // inner protocol the engine does not carry (e.g. IPv6 in tunnel mode)
  | 'unknown-spi' // no SA for (SPI, destination)
  | 'replay' // sequence number seen before or left of the window
  | 'bad-icv' // ICV did not verify
  | 'bad-padding' // authentic, but trailer lengths or padding bytes wrong
  | 'dummy' // authentic TFC dummy packet (Next Header 59), discarded by design
  | 'seq-exhausted' // sender's sequence space is used up
  | 'too-big'; // the ESP packet would exceed 65535 bytes

export type EspResult = { ok: true; frame: Uint8Array; seq: bigint } | { ok: false; reason: DropReason; detail: string };

export interface TunnelConfig {
  /** Outer source and destination (local and peer node IP for egress, peer and local for ingress). */
  src: string;
  dst: string;
  /** Outer TTL; 64 if not given. */
  ttl?: number;
  df?: DfPolicy;
}

export interface EspSaConfig {
  spi: number;
  /** AES-128 or AES-256 key (Cilium's key‖salt split: the first 16/32 bytes). */
  key: Uint8Array;
  /** RFC 4106 salt (the last 4 bytes of Cilium's key‖salt). */
  salt: Uint8Array;
  icvLength?: IcvLength;
  /** Extended (64-bit) sequence numbers, RFC 4303 §2.2.1; seq_hi enters the AAD only. */
  esn?: boolean;
  mode: EspMode;
  /** Required to send in tunnel mode; on receive, when given, the outer destination must match. */
  tunnel?: TunnelConfig;
}

/** One SA with its AES key prepared (the engine's SA map value, minus counters and replay state). */
export class EspSa {
  readonly spi: number;
  readonly icvLength: IcvLength;
  readonly esn: boolean;
  readonly mode: EspMode;
  readonly tunnel?: Readonly<Required<TunnelConfig>>;
  readonly gcm: GcmKey;
  readonly #salt: Uint8Array;

  constructor(config: EspSaConfig) {
    if (!Number.isInteger(config.spi) || config.spi < 1 || config.spi > 0xffffffff) {
      // RFC 4303 §2.1: 0 MUST NOT be sent. 1–255 are IANA-reserved, but Cilium puts its key ID
      // (1–15) on the wire as the SPI and Linux accepts it, so interop needs them.
      throw new RangeError(`SPI must be 1..2³²−1, got ${config.spi}`);
    }
    if (config.key.length !== 16 && config.key.length !== 32) throw new RangeError(`ESP key must be 16 or 32 bytes, got ${config.key.length}`);
    if (config.salt.length !== 4) throw new RangeError(`RFC 4106 salt must be 4 bytes, got ${config.salt.length}`);
    const icv = config.icvLength ?? 16;
    if (icv !== 8 && icv !== 12 && icv !== 16) throw new RangeError(`ICV must be 8, 12 or 16 bytes, got ${String(icv)}`);
    this.spi = config.spi;
    this.icvLength = icv;
    this.esn = config.esn ?? false;
    this.mode = config.mode;
    if (config.tunnel) {
      const t = config.tunnel;
      const ttl = t.ttl ?? 64;
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw new RangeError(`outer TTL must be 1..255, got ${ttl}`);
      parseIpv4Address(t.src);
      parseIpv4Address(t.dst);
      this.tunnel = Object.freeze({ src: t.src, dst: t.dst, ttl, df: t.df ?? 'copy' });
    }
    this.gcm = gcmKey(config.key);
    this.#salt = Uint8Array.from(config.salt);
  }

  /** The 12-byte GCM nonce salt ‖ IV (RFC 4106 §4). */
  nonce(iv: Uint8Array): Uint8Array {
    const n = new Uint8Array(12);
    n.set(this.#salt, 0);
    n.set(iv, 4);
    return n;
  }

  /** Highest sequence number this SA may carry. */
  get maxSeq(): bigint {
    return this.esn ? 0xffffffffffffffffn : 0xffffffffn;
  }

  toJSON(): object {
    return { spi: this.spi, icvLength: this.icvLength, esn: this.esn, mode: this.mode, tunnel: this.tunnel, key: '[redacted]' };
  }
  [inspect.custom](): string {
    return `EspSa(spi 0x${this.spi.toString(16)}, AES-${this.gcm.keyLength * 8}-GCM-${this.icvLength * 8}, ${this.mode}${this.esn ? ', ESN' : ''}, key [redacted])`;
  }
}

/** An SA from the key runtime (runtime/keys/sa.ts) as an ESP SA. */
export function espSaFromKeyRuntime(sa: SecurityAssociation, mode: EspMode, tunnel?: TunnelConfig, esn = false): EspSa {
  const view = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.length); // no copy of key bytes
  return new EspSa({ spi: sa.spi, key: view(sa.key.bytes()), salt: view(sa.salt.bytes()), icvLength: (sa.icvBits / 8) as IcvLength, esn, mode, tunnel });
}

/** How the explicit IV is formed from the sequence number (see the file header). */
export type IvPolicy = { kind: 'counter' } | { kind: 'seqiv'; salt: Uint8Array };

export function explicitIv(seq: bigint, policy: IvPolicy): Uint8Array {
  const iv = new Uint8Array(8);
  new DataView(iv.buffer).setBigUint64(0, seq, false);
  if (policy.kind === 'seqiv') for (let i = 0; i < 8; i++) iv[i] ^= policy.salt[i];
  return iv;
}

/** Egress state of one SA: the sequence counter and the IV policy. */
export class EspSender {
  /** Sequence number of the next packet; 1 for a fresh SA. */
  nextSeq = 1n;
  readonly ivPolicy: IvPolicy;
  constructor(
    readonly sa: EspSa,
    ivPolicy: IvPolicy = { kind: 'counter' },
  ) {
    if (ivPolicy.kind === 'seqiv' && ivPolicy.salt.length !== 8) throw new RangeError('seqiv salt must be 8 bytes');
    this.ivPolicy = ivPolicy;
  }
}

/** Ingress state of one SA: its replay window. */
export class EspReceiver {
  readonly window: ReplayWindow;
  constructor(
    readonly sa: EspSa,
    windowSize = DEFAULT_REPLAY_WINDOW,
  ) {
    this.window = new ReplayWindow(windowSize);
  }
}

// ---------------------------------------------------------------------------------------------
// The ESP transform proper (RFC 4303 §3.3 and §3.4 without the IP layer).

function aad(sa: EspSa, seq: bigint): Uint8Array {
  const a = new Uint8Array(sa.esn ? 12 : 8);
  const v = new DataView(a.buffer);
  v.setUint32(0, sa.spi, false);
  if (sa.esn) v.setUint32(4, Number(seq >> 32n), false);
  v.setUint32(a.length - 4, Number(seq & 0xffffffffn), false);
  return a;
}

/** Padding bytes for a payload: right-aligns Pad Length ‖ Next Header on 4 bytes. */
export function espPadLength(payloadLength: number): number {
  return (4 - ((payloadLength + 2) % 4)) % 4;
}

/** ESP packet length for a payload: header, IV, payload, padding, trailer, ICV. */
export function espLength(payloadLength: number, icvLength: IcvLength): number {
  return ESP_HLEN + ESP_IV_LEN + payloadLength + espPadLength(payloadLength) + 2 + icvLength;
}

/** SPI ‖ seq_lo ‖ IV ‖ E(payload ‖ padding ‖ pad length ‖ next header) ‖ ICV. */
export function espSeal(sa: EspSa, seq: bigint, iv: Uint8Array, payload: Uint8Array, nextHeader: number): Uint8Array {
  if (seq < 1n || seq > sa.maxSeq) throw new RangeError(`sequence number ${seq} outside 1..${sa.maxSeq}`);
  if (iv.length !== ESP_IV_LEN) throw new RangeError('explicit IV must be 8 bytes');
  const pad = espPadLength(payload.length);
  const plain = new Uint8Array(payload.length + pad + 2);
  plain.set(payload, 0);
  for (let i = 0; i < pad; i++) plain[payload.length + i] = i + 1;
  plain[plain.length - 2] = pad;
  plain[plain.length - 1] = nextHeader;
  const a = aad(sa, seq);
  const { ciphertext, tag } = gcmSeal(sa.gcm, sa.nonce(iv), a, plain, sa.icvLength);
  plain.fill(0);
  const out = new Uint8Array(ESP_HLEN + ESP_IV_LEN + ciphertext.length + tag.length);
  out.set(a.subarray(0, 4), 0);
  out.set(a.subarray(a.length - 4), 4);
  out.set(iv, 8);
  out.set(ciphertext, 16);
  out.set(tag, 16 + ciphertext.length);
  return out;
}

export type OpenResult =
  | { ok: true; seq: bigint; iv: Uint8Array; nextHeader: number; payload: Uint8Array }
  | { ok: false; reason: DropReason; detail: string };

/**
 * Verifies and decrypts one ESP packet (bytes from the SPI to the end of the ICV). With a window,
 * also does anti-replay and advances it on success; without one, only the cryptography. With ESN,
 * seq_hi comes from `seqHi` when the caller knows it, else from the window (Appendix A2.2).
 */
export function espOpen(sa: EspSa, esp: Uint8Array, window?: ReplayWindow, seqHi?: number): OpenResult {
  const min = ESP_HLEN + ESP_IV_LEN + 2 + sa.icvLength;
  if (esp.length < min) return drop('malformed', `ESP packet of ${esp.length} bytes, shorter than ${min}`);
  const view = new DataView(esp.buffer, esp.byteOffset, esp.byteLength);
  const spi = view.getUint32(0, false);
  if (spi !== sa.spi) return drop('unknown-spi', `SPI 0x${spi.toString(16)} is not this SA's`);
  const seqLo = view.getUint32(4, false);
  const hi = !sa.esn ? 0 : (seqHi ?? (window ? window.inferSeqHi(seqLo) : 0));
  const seq = (BigInt(hi) << 32n) | BigInt(seqLo);
  if (window && !window.check(seq)) return drop('replay', `sequence number ${seq} replayed or left of the window (top ${window.top})`);
  const iv = esp.slice(8, 16);
  const ctEnd = esp.length - sa.icvLength;
  const plain = gcmOpen(sa.gcm, sa.nonce(iv), aad(sa, seq), esp.subarray(16, ctEnd), esp.subarray(ctEnd));
  if (!plain) return drop('bad-icv', `ICV does not verify (seq ${seq})`);
  const padLength = plain[plain.length - 2];
  const nextHeader = plain[plain.length - 1];
  if (padLength + 2 > plain.length) return drop('bad-padding', `pad length ${padLength} exceeds the ${plain.length - 2} bytes before the trailer`);
  const payloadLength = plain.length - 2 - padLength;
  let padBad = 0;
  for (let i = 0; i < padLength; i++) padBad |= plain[payloadLength + i] ^ (i + 1);
  if (padBad !== 0) return drop('bad-padding', 'padding bytes are not 1, 2, 3, …');
  if (window && !window.advance(seq)) return drop('replay', `sequence number ${seq} accepted concurrently`);
  if (nextHeader === IPPROTO_NONE) return drop('dummy', `TFC dummy packet (seq ${seq})`);
  return { ok: true, seq, iv, nextHeader, payload: plain.subarray(0, payloadLength) };
}

// ---------------------------------------------------------------------------------------------
// IPv4 and Ethernet framing.

function drop(reason: DropReason, detail: string): { ok: false; reason: DropReason; detail: string } {
  return { ok: false, reason, detail };
}

export function parseIpv4Address(text: string): Uint8Array {
  const parts = text.split('.');
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (bytes.length !== 4 || bytes.some((b) => !(b >= 0 && b <= 255))) throw new RangeError(`not an IPv4 address: ${text}`);
  return Uint8Array.from(bytes);
}

/** RFC 1071 Internet checksum of an IPv4 header, with its checksum field taken as zero. */
export function ipv4HeaderChecksum(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) {
    if (i === 10) continue;
    sum += (header[i] << 8) | (header[i + 1] ?? 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function setChecksum(header: Uint8Array): void {
  const c = ipv4HeaderChecksum(header);
  header[10] = c >> 8;
  header[11] = c & 0xff;
}

/** Sets the 16-bit word at `offset` of an IPv4 header and updates its checksum incrementally,
 *  HC' = ~(~HC + ~m + m') (RFC 1624 eqn. 3): a checksum that was wrong stays wrong. */
function updateWord(header: Uint8Array, offset: number, value: number): void {
  const m = (header[offset] << 8) | header[offset + 1];
  let sum = (~((header[10] << 8) | header[11]) & 0xffff) + (~m & 0xffff) + (value & 0xffff);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  header[offset] = (value >> 8) & 0xff;
  header[offset + 1] = value & 0xff;
  header[10] = c >> 8;
  header[11] = c & 0xff;
}

interface Ipv4 {
  /** The IPv4 packet: from the header to its total length (frame padding excluded). */
  packet: Uint8Array;
  headerLength: number;
  tos: number;
  fragOff: number; // flags ‖ offset, host order
  protocol: number;
  dst: Uint8Array;
}

const IP_DF = 0x4000;
const IP_MF = 0x2000;
const IP_OFFMASK = 0x1fff;

function parseFrame(frame: Uint8Array): Ipv4 | { ok: false; reason: DropReason; detail: string } {
  if (frame.length < ETH_HLEN + IPV4_HLEN) return drop('malformed', `frame of ${frame.length} bytes has no room for Ethernet and IPv4 headers`);
  const ethertype = (frame[12] << 8) | frame[13];
  if (ethertype !== ETH_P_IP) return drop(ethertype === 0x86dd ? 'unsupported' : 'malformed', `ethertype 0x${ethertype.toString(16).padStart(4, '0')} is not IPv4`);
  const ip = frame.subarray(ETH_HLEN);
  if (ip[0] >> 4 !== 4) return drop('malformed', `IP version ${ip[0] >> 4}`);
  const headerLength = (ip[0] & 0x0f) * 4;
  const totalLength = (ip[2] << 8) | ip[3];
  if (headerLength < IPV4_HLEN || totalLength < headerLength || totalLength > ip.length) {
    return drop('malformed', `IPv4 header length ${headerLength}, total length ${totalLength}, ${ip.length} bytes present`);
  }
  return {
    packet: ip.subarray(0, totalLength),
    headerLength,
    tos: ip[1],
    fragOff: (ip[6] << 8) | ip[7],
    protocol: ip[9],
    dst: ip.subarray(16, 20),
  };
}

function isFragment(fragOff: number): boolean {
  return (fragOff & (IP_MF | IP_OFFMASK)) !== 0;
}

/** RFC 6040 normal-mode encapsulation of the ECN field (Linux INET_ECN_encapsulate). */
function outerTos(innerTos: number): number {
  const ecn = innerTos & 3;
  return (innerTos & 0xfc) | (ecn === 3 ? 2 : ecn);
}

function withEthernet(frame: Uint8Array, ip: Uint8Array): Uint8Array {
  const out = new Uint8Array(ETH_HLEN + ip.length);
  out.set(frame.subarray(0, ETH_HLEN), 0);
  out.set(ip, ETH_HLEN);
  return out;
}

export interface EncapOptions {
  /** Outer IPv4 ID in tunnel mode; low 16 bits of the sequence number if not given. */
  ipId?: number;
}

/** Egress: one Ethernet frame carrying IPv4 in, one Ethernet frame carrying ESP out. */
export function espEncapFrame(sender: EspSender, frame: Uint8Array, options: EncapOptions = {}): EspResult {
  const sa = sender.sa;
  const ip = parseFrame(frame);
  if ('ok' in ip) return ip;
  if (sender.nextSeq > sa.maxSeq) return drop('seq-exhausted', `SA 0x${sa.spi.toString(16)} has sent its last sequence number`);

  let header: Uint8Array;
  let payload: Uint8Array;
  let nextHeader: number;
  if (sa.mode === 'tunnel') {
    if (!sa.tunnel) throw new Error(`SA 0x${sa.spi.toString(16)}: tunnel mode needs tunnel endpoints to send`);
    header = new Uint8Array(IPV4_HLEN);
    payload = ip.packet;
    nextHeader = IPPROTO_IPIP;
  } else {
    if (isFragment(ip.fragOff)) return drop('fragment', 'transport mode protects whole datagrams only (RFC 4303 §3.3)');
    header = ip.packet.slice(0, ip.headerLength);
    payload = ip.packet.subarray(ip.headerLength);
    nextHeader = ip.protocol;
  }
  const espLen = espLength(payload.length, sa.icvLength);
  if (header.length + espLen > 0xffff) return drop('too-big', `ESP packet would be ${header.length + espLen} bytes`);

  // The sequence number is consumed only once the packet will certainly be sent.
  const seq = sender.nextSeq++;
  const esp = espSeal(sa, seq, explicitIv(seq, sender.ivPolicy), payload, nextHeader);

  const total = header.length + esp.length;
  if (sa.mode === 'tunnel') {
    const t = sa.tunnel!;
    const df = t.df === 'set' ? IP_DF : t.df === 'clear' ? 0 : ip.fragOff & IP_DF;
    const id = options.ipId ?? Number(seq & 0xffffn);
    header[0] = 0x45;
    header[1] = outerTos(ip.tos);
    header[4] = (id >> 8) & 0xff;
    header[5] = id & 0xff;
    header[6] = df >> 8;
    header[7] = 0;
    header[8] = t.ttl;
    header.set(parseIpv4Address(t.src), 12);
    header.set(parseIpv4Address(t.dst), 16);
  }
  header[2] = total >> 8;
  header[3] = total & 0xff;
  header[9] = IPPROTO_ESP;
  setChecksum(header);

  const out = new Uint8Array(ETH_HLEN + total);
  out.set(frame.subarray(0, ETH_HLEN), 0);
  out.set(header, ETH_HLEN);
  out.set(esp, ETH_HLEN + header.length);
  return { ok: true, frame: out, seq };
}

/** Ingress: one Ethernet frame carrying ESP in, the decapsulated frame out (or a drop reason). */
export function espDecapFrame(receiver: EspReceiver, frame: Uint8Array): EspResult {
  const sa = receiver.sa;
  const ip = parseFrame(frame);
  if ('ok' in ip) return ip;
  if (ip.protocol !== IPPROTO_ESP) return drop('malformed', `IP protocol ${ip.protocol} is not ESP`);
  // Linux reassembles before xfrm; at tc ingress a fragment cannot be decrypted on its own.
  if (isFragment(ip.fragOff)) return drop('fragment', 'ESP in an IPv4 fragment');
  if (sa.tunnel && !equalBytes(ip.dst, parseIpv4Address(sa.tunnel.dst))) {
    return drop('unknown-spi', `outer destination ${ip.dst.join('.')} is not this SA's`);
  }
  const opened = espOpen(sa, ip.packet.subarray(ip.headerLength), receiver.window);
  if (!opened.ok) return opened;

  if (sa.mode === 'tunnel') {
    if (opened.nextHeader !== IPPROTO_IPIP) return drop('unsupported', `next header ${opened.nextHeader} in tunnel mode (only IPv4, 4)`);
    const inner = opened.payload;
    if (inner.length < IPV4_HLEN || inner[0] >> 4 !== 4) return drop('malformed', 'tunnel payload is not an IPv4 packet');
    const innerLength = (inner[2] << 8) | inner[3];
    if (innerLength < (inner[0] & 0x0f) * 4 || innerLength > inner.length) return drop('malformed', `inner total length ${innerLength} with ${inner.length} bytes decrypted`);
    const packet = inner.slice(0, innerLength); // bytes past it are TFC padding
    if ((ip.tos & 3) === 3 && (packet[1] & 3) !== 0 && (packet[1] & 3) !== 3) {
      packet[1] |= 3; // outer CE onto an ECN-capable inner packet (RFC 6040 §4.2)
      setChecksum(packet.subarray(0, (packet[0] & 0x0f) * 4));
    }
    return { ok: true, frame: withEthernet(frame, packet), seq: opened.seq };
  }

  // Transport: the header was not authenticated, so its checksum is updated, not recomputed
  // (RFC 1624): a header damaged in flight stays damaged and the IP stack still drops it.
  const header = ip.packet.slice(0, ip.headerLength);
  const total = header.length + opened.payload.length;
  updateWord(header, 2, total);
  updateWord(header, 8, (header[8] << 8) | opened.nextHeader);
  const out = new Uint8Array(ETH_HLEN + total);
  out.set(frame.subarray(0, ETH_HLEN), 0);
  out.set(header, ETH_HLEN);
  out.set(opened.payload, ETH_HLEN + header.length);
  return { ok: true, frame: out, seq: opened.seq };
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
