// The ESP engine (issue 5): the maps, the egress verdicts a policy returns (`encrypt`, `pass`,
// `drop`), the default policy `egress` (tc egress, per node pair), `ingress` (tc ingress) and
// `crypto_setup` (syscall, sleepable). A policy file (examples/policy-*.ts, API in
// engine/policy.ts) defines its own `egress` and re-exports `ingress` and `crypto_setup`;
// engine/maps.ts re-exports the layouts from here for userspace (runtime/keys).
//
// Egress, per packet (tunnel mode, RFC 4303 + RFC 4106 AES-GCM):
//   1. policy: decides pass / drop / encrypt(key); the default: ipcache[dst] (LPM) with
//      keyIndex ≠ 0 → key {kind 2, node IP}. encrypt: SA = encrypt_sa[key]; none → drop (fail
//      closed, audit NO_SA)
//   2. seq = fetch-add(sa.seq); past seqLimit, or ≥ 2³² (≥ 2⁶³ with ESN) → drop (SEQ_EXHAUSTED)
//   3. change_tail to 14 + ctLen + ICV, trailer 1,2,3…,padLen,4 written after the inner packet
//      (before adjust_room, so it works on any skb)
//   4. adjust_room(+36, MAC, FIXED_GSO): room for outer IPv4 ‖ SPI ‖ seq ‖ IV. No ENCAP flag:
//      it would mark the skb encapsulated, veth carries that mark to the receiving node, and
//      there change_tail refuses the skb (-ENOTSUPP, Linux 6.18) even after a DECAP shrink. The
//      mark only matters for GSO, and the engine never encrypts a GSO packet.
//   5. counter blocks salt‖IV‖be32(i+1), i = 0…n, in the per-CPU scratch (a bpf_loop); ONE
//      ecb(aes) call
//   6. payload ⊕= keystream in place (8-byte loads/stores), ciphertext lanes into the scratch;
//      the partial last block after the loop (engine/README.md: why, for the verifier)
//   7. GHASH(AAD, C, lengths) in a bpf_loop, ICV = E(J0) ⊕ GHASH, redirect. AAD = SPI ‖ seq_lo,
//      or with ESN (sa.esn 1, RFC 4106 §5) SPI ‖ seq_hi ‖ seq_lo; the header carries seq_lo
//
//   0    14          34        38      42        50                 50+ctLen
//   | eth | outer IPv4 | SPI     | seq   | IV      | E(inner ‖ trailer) | ICV |
//
// Transport mode (SA mode 2, RFC 4303 §3.1.1): the packet's own IPv4 header stays (protocol 50,
// length, checksum; no options, no fragments), adjust_room(+16, NET) after it, and the L4 datagram
// is encrypted, next header = its protocol. The ciphertext starts at 50 as in tunnel mode, so
// every step above is shared; the few values that differ are selected arithmetically in `seal`.
//   | eth | IPv4 (proto 50) | SPI | seq | IV | E(L4 ‖ trailer) | ICV |
//
// Ingress undoes it (see `ingress` and engine/README.md): SPI → replay check → ICV → padding →
// window advance → strip → TC_ACT_OK; every drop counted in `audit` under its reason.

import {
  type Infer,
  type i32,
  type u16,
  type u32,
  type u64,
  BPF_ADJ_ROOM_MAC,
  BPF_ADJ_ROOM_NET,
  BPF_F_ADJ_ROOM_DECAP_L3_IPV4,
  BPF_F_ADJ_ROOM_FIXED_GSO,
  CryptoCtx,
  CryptoParams,
  SyscallContext,
  TC_ACT_OK,
  TC_ACT_SHOT,
  TcContext,
  adjustRoom,
  array,
  arrayMap,
  be16,
  be32,
  bpfLoop,
  changeTail,
  cryptoCtxCreate,
  cryptoCtxRelease,
  cryptoEncrypt,
  bpfSpinLock,
  dynptrFromMem,
  fetchAdd,
  hashMap,
  i32 as I32,
  kptr,
  kptrXchg,
  local,
  lpmTrieMap,
  perCpuArrayMap,
  pullData,
  redirect,
  spinLock,
  spinUnlock,
  struct,
  u8,
  u32 as U32,
  u64 as U64,
} from '../compiler/dsl/index.ts';
import { GhashState, GhashTable, ghashBlock } from './ghash.ts';
import { completeL4Checksum } from './l4csum.ts';

export { GhashState, GhashTable };

// =============================================================================================
// Maps (layouts documented in engine/maps.ts, which re-exports these)

export const IpcacheKey = struct({ prefixlen: U32, addr: be32 }, { name: 'ipcache_key' });
export const IpcacheEntry = struct({ identity: U32, tunnelEndpoint: be32, keyIndex: u8 }, { name: 'ipcache_entry' });
/** Prefix → {security identity, tunnel endpoint (node IP), key index}: Cilium's cilium_ipcache.
 *  A longest-prefix-match trie (userspace writes {prefixlen, addr}; lookups use /32). */
export const ipcache = lpmTrieMap({ key: IpcacheKey, value: IpcacheEntry, maxEntries: 65536 });

export const EncryptKey = struct({ kind: U32, selector: array(u8, 16) }, { name: 'encrypt_key' });
export const ENCRYPT_KEY_NODE = 2;
export const MODE_TUNNEL = 1;
export const MODE_TRANSPORT = 2;
export const DF_COPY = 0;
export const DF_SET = 1;
export const DF_CLEAR = 2;
export const EncryptSa = struct(
  {
    seq: U64,
    seqLimit: U64,
    packets: U64,
    bytes: U64,
    key: array(u8, 32),
    salt: array(u8, 4),
    spi: be32,
    outerSrc: be32,
    outerDst: be32,
    ifindex: U32,
    keyLength: u8,
    icvLength: u8,
    mode: u8,
    offload: u8,
    keyIndex: u8,
    ttl: u8,
    df: u8,
    esn: u8,
    dropped: U64,
  },
  { name: 'encrypt_sa' },
);
export const encrypt_sa = hashMap({ key: EncryptKey, value: EncryptSa, maxEntries: 4096 });

export const REPLAY_WINDOW_BITS = 1024;
export const IngressKey = struct({ spi: be32, src: be32, dst: be32 }, { name: 'ingress_key' });
export const IngressSa = struct(
  {
    top: U64,
    window: array(U64, REPLAY_WINDOW_BITS / 64),
    packets: U64,
    bytes: U64,
    replayDrops: U64,
    icvDrops: U64,
    key: array(u8, 32),
    salt: array(u8, 4),
    keyLength: u8,
    icvLength: u8,
    keyIndex: u8,
    esn: u8,
    /** Guards top and window (G5): the check-and-advance of one seq is one critical section. */
    lock: bpfSpinLock,
    /** MODE_TRANSPORT: opens transport-mode ESP; anything else (MODE_TUNNEL, 0): tunnel only. */
    mode: u8,
  },
  { name: 'ingress_sa' },
);
export const ingress_sa = hashMap({ key: IngressKey, value: IngressSa, maxEntries: 4096 });

export const MAX_KEYS = 256;
export const ghash_tables = arrayMap({ value: GhashTable, maxEntries: MAX_KEYS });

/** The AES key a crypto context is made from (written by userspace, read by crypto_setup):
 *  0 key (32 B, first keyLength used), 32 keyLength u32, 36 algo u32 (0 ecb(aes), 1 ecb(aes-generic)). */
export const CryptoKey = struct({ key: array(u8, 32), keyLength: U32, algo: U32 }, { name: 'crypto_key' });
export const crypto_keys = arrayMap({ value: CryptoKey, maxEntries: MAX_KEYS });
export const CRYPTO_ALGO_AES = 0;
export const CRYPTO_ALGO_AES_GENERIC = 1;
/** The ecb(aes) context of each keyIndex, a kptr (0 ctx), and how often it was set (8). */
export const CryptoSlot = struct({ ctx: kptr(CryptoCtx), generation: U32 }, { name: 'crypto_slot' });
export const crypto_ctx = arrayMap({ value: CryptoSlot, maxEntries: MAX_KEYS });


// Per-CPU scratch. ks: the counter blocks J0, J0+1, … (raw bytes, as the ecb call reads them),
// encrypted in place by ONE call over the whole array (bpf_dynptr_from_mem takes sizeof; a
// length argument is gap G7). lanes: the ciphertext blocks as GHASH lanes (hi, lo). plain:
// ingress's decrypted payload as raw u64s (little-endian memory order), for the padding check.
export const SCRATCH_BLOCKS = 96;
/** 0 y (16 B), 16 ks (96 × 16 B raw), 1552 lanes (128 × 2 u64), 3600 plain (2048 B). 5648 bytes. */
export const Scratch = struct(
  { y: GhashState, ks: array(U64, SCRATCH_BLOCKS * 2), lanes: array(U64, 256), plain: array(U64, 256) },
  { name: 'engine_scratch' },
);
export const scratch = perCpuArrayMap({ value: Scratch, maxEntries: 1 });

export const AUDIT_ENCRYPTED = 0;
export const AUDIT_DECRYPTED = 1;
export const AUDIT_PLAINTEXT = 2;
export const AUDIT_NO_SA = 3;
export const AUDIT_UNKNOWN_SPI = 4;
export const AUDIT_REPLAY = 5;
export const AUDIT_BAD_ICV = 6;
export const AUDIT_MALFORMED = 7;
export const AUDIT_SEQ_EXHAUSTED = 8;
export const AUDIT_BAD_PADDING = 9;
export const AUDIT_TOO_BIG = 10;
export const AUDIT_UNSUPPORTED = 11;
export const AUDIT_CRYPTO_ERROR = 12;
export const AUDIT_POLICY_DROP = 13;
export const AUDIT_REASONS = 16;
export const AuditCounter = struct({ packets: U64, bytes: U64 }, { name: 'audit_counter' });
export const audit = perCpuArrayMap({ value: AuditCounter, maxEntries: AUDIT_REASONS });

/** Per policy rule (index = the rule number the policy passes to encrypt/pass/drop), per verdict
 *  (v[VERDICT_*]): packets and bytes. Bytes are the frame's length before encryption. */
export const MAX_RULES = 64;
export const VERDICT_ENCRYPTED = 0;
export const VERDICT_PLAINTEXT = 1;
export const VERDICT_DROPPED = 2;
export const PolicyCounter = struct({ v: array(AuditCounter, 4) }, { name: 'policy_counter' });
export const policy_audit = perCpuArrayMap({ value: PolicyCounter, maxEntries: MAX_RULES });
/** The default policy's rules (engine/esp.ts `egress`, examples/policy-node-pair.ts). */
export const RULE_DEFAULT_OTHER = 0;
export const RULE_DEFAULT_CLEAR = 1;
export const RULE_DEFAULT_NODE = 2;

// =============================================================================================
// GHASH (NIST SP 800-38D §6.4) per block: ghashBlock from engine/ghash.ts (Shoup 8-bit tables).

/** What the bpf_loop GHASH walk needs: block 0 is the AAD, 1…blocks the ciphertext lanes in the
 *  scratch, blocks + 1 the length block. */
const GhashWalk = struct({ keyIndex: U32, blocks: U32, aadHi: U64, aadLo: U64, lenHi: U64, lenLo: U64 }, { name: 'ghash_walk' });

function ghashStep(i: u32, w: Infer<typeof GhashWalk>): i32 {
  const s = scratch.lookup(0);
  const t = ghash_tables.lookup(w.keyIndex);
  if (s === null || t === null) return 1;
  let xh: u64 = w.aadHi;
  let xl: u64 = w.aadLo;
  if (i > w.blocks) {
    xh = w.lenHi;
    xl = w.lenLo;
  } else if (i > 0) {
    const j = (i - 1) & 127;
    xh = s.lanes[2 * j]!;
    xl = s.lanes[2 * j + 1]!;
  }
  ghashBlock(t, s.y, xh, xl);
  return 0;
}

/** Sets up the GHASH walk of one packet: key, blocks, the length block (ctLen bytes of C), and
 *  the AAD SPI ‖ seq_lo (64 bits), or with ESN (esn 1, RFC 4106 §5) SPI ‖ seq_hi ‖ seq_lo (96 bits),
 *  selected by the 0/1 factor esn (seq's high half is 0 without ESN). Egress and ingress alike. */
function ghashWalkFor(w: Infer<typeof GhashWalk>, keyIndex: u32, blocks: u32, spi: u32, seq: u64, esn: u32, ctLen: u32): void {
  const seqLo: u64 = seq & 0xffffffffn;
  w.keyIndex = keyIndex;
  w.blocks = blocks & 127;
  w.aadHi = (BigInt(spi) << 32n) | (seqLo * BigInt(1 - esn)) | (seq >> 32n);
  w.aadLo = (seqLo << 32n) * BigInt(esn);
  w.lenHi = 64n + 32n * BigInt(esn);
  w.lenLo = BigInt(ctLen) * 8n;
}

/** The counter-block fill: block i of the scratch's ks is nonceA ‖ nonceB | be32(i + 1) << 56
 *  (salt ‖ IV ‖ be32(i + 1) as the raw little-endian u64s the ecb call reads; i + 1 < 256). */
const CtrFill = struct({ nonceA: U64, nonceB: U64 }, { name: 'ctr_fill' });

function ctrStep(i: u32, c: Infer<typeof CtrFill>): i32 {
  const s = scratch.lookup(0);
  if (s === null) return 1;
  const j: u32 = i % SCRATCH_BLOCKS;
  s.ks[2 * j] = c.nonceA;
  s.ks[2 * j + 1] = c.nonceB | (BigInt(j + 1) << 56n);
  return 0;
}

// =============================================================================================
// Packet layouts

export const Eth = struct({ dst: array(u8, 6), src: array(u8, 6), proto: be16 }, { name: 'ethhdr' });
export const Ipv4 = struct(
  { vihl: u8, tos: u8, totLen: be16, id: be16, frag: be16, ttl: u8, protocol: u8, check: be16, saddr: be32, daddr: be32 },
  { name: 'iphdr' },
);
const EspHdr = struct({ spi: be32, seq: be32, ivHi: be32, ivLo: be32 }, { name: 'ip_esp_hdr' });
const Raw16 = struct({ a: U64, b: U64 }, { name: 'raw16' });
const Be16B = struct({ w0: be32, w1: be32, w2: be32, w3: be32 }, { name: 'be16b' });
const RawWord = struct({ v: U32 }, { name: 'raw_word' });
const BeWord = struct({ v: be32 }, { name: 'be_word' });
const BeWord2 = struct({ w0: be32, w1: be32 }, { name: 'be_word2' });
const Trailer = struct({ b: array(u8, 8) }, { name: 'esp_trailer' });
const EspRaw = struct({ spi: U32, seq: U32, iv0: U32, iv1: U32 }, { name: 'esp_raw' });
const IpWord0 = struct({ w: be16 }, { name: 'ip_word0' });

export const ETH_HLEN = 14;
export const ETH_P_IP = 0x0800;
const IPPROTO_IPIP = 4;
const IPPROTO_ESP = 50;
const IPPROTO_NONE = 59; // next header of a TFC dummy packet (RFC 4303 §2.6): discarded
const ESP_OVERHEAD = 36; // outer IPv4 20 + SPI 4 + seq 4 + IV 8
const CT_OFF = 50; // ETH_HLEN + ESP_OVERHEAD
const IP_DF = 0x4000;
const MAX_CT = 16 * (SCRATCH_BLOCKS - 1); // 1520: whole blocks 0…94 and the keystream for each

/** @noinline */
function count(reason: u32, bytes: u32): void {
  const a = audit.lookup(reason);
  if (a === null) return;
  a.packets = a.packets + 1n;
  a.bytes = a.bytes + BigInt(bytes);
}

/** @noinline */
function bswap32(x: u32): u32 {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

/** RFC 1071 over an outer IPv4 header: `head` is the sum of its first five 16-bit words (the
 *  checksum word taken as 0), the addresses add the other four. */
/** @noinline */
function ipv4Checksum(head: u32, src: u32, dst: u32): u32 {
  let sum: u32 = (head & 0xfffff) + (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** `a` where the mask m is 0, `b` where it is all ones: a selection without a branch. */
function pick(m: u32, a: u32, b: u32): u32 {
  return (a ^ ((a ^ b) & m)) >>> 0;
}

// =============================================================================================
// Egress: the policy API. A policy is a DSL file whose `egress` program decides, per packet, one
// of three verdicts and returns it (examples/policy-*.ts, engine/policy.ts):
//   pass(skb, rule)              plaintext, counted (audit PLAINTEXT, rule's "plaintext")
//   drop(skb, rule)              dropped, counted (audit POLICY_DROP, rule's "dropped")
//   encrypt(skb, key, rule)      ESP under encrypt_sa[key]: the key is any EncryptKey the policy
//                                builds (kind + 16 selector bytes, keyWord); no SA → dropped and
//                                counted (NO_SA: fail closed), never sent in clear
// `rule` is the policy's own rule number (0 … MAX_RULES − 1): policy_audit[rule] counts packets
// and bytes per verdict. `egress` below is the default policy, per node pair (as
// examples/policy-node-pair.ts).

type EncryptKeyView = Infer<typeof EncryptKey>;

/** policy_audit[rule].v[verdict] += {1, bytes} (a rule out of range is not counted). */
/** @noinline */
function ruleCount(rule: u32, verdict: u32, bytes: u32): void {
  const c = policy_audit.lookup(rule);
  if (c === null) return;
  const v = c.v[verdict & 3]!;
  v.packets = v.packets + 1n;
  v.bytes = v.bytes + BigInt(bytes);
}

/** Selector word `word` (0…3) of an encryption map key = `value`, big-endian (an IPv4 address
 *  reads as it does on the wire; bytes 0…3 of a per-node key are the node's address). */
export function keyWord(key: EncryptKeyView, word: u32, value: u32): void {
  const o: u32 = (word & 3) * 4;
  key.selector[o] = value >>> 24;
  key.selector[o + 1] = (value >>> 16) & 0xff;
  key.selector[o + 2] = (value >>> 8) & 0xff;
  key.selector[o + 3] = value & 0xff;
}

/** Verdict: send in plaintext. */
/** @inline */
export function pass(skb: TcContext, rule: u32): i32 {
  ruleCount(rule, VERDICT_PLAINTEXT, skb.len);
  count(AUDIT_PLAINTEXT, skb.len);
  return TC_ACT_OK;
}

/** Verdict: drop. */
/** @inline */
export function drop(skb: TcContext, rule: u32): i32 {
  ruleCount(rule, VERDICT_DROPPED, skb.len);
  count(AUDIT_POLICY_DROP, skb.len);
  return TC_ACT_SHOT;
}

/** Verdict: drop a packet the policy cannot read (an IPv4 frame too short for its header). */
/** @inline */
export function malformed(skb: TcContext, rule: u32): i32 {
  ruleCount(rule, VERDICT_DROPPED, skb.len);
  count(AUDIT_MALFORMED, skb.len);
  return TC_ACT_SHOT;
}

/** Verdict: encrypt under encrypt_sa[key] (ESP, AES-GCM, in the SA's tunnel or transport mode)
 *  and send it to the SA's device; no usable SA → dropped and counted, never sent in clear. */
/** @inline */
export function encrypt(skb: TcContext, key: EncryptKeyView, rule: u32): i32 {
  const len: u32 = skb.len;
  const verdict: i32 = seal(skb, key);
  ruleCount(rule, verdict === TC_ACT_SHOT ? VERDICT_DROPPED : VERDICT_ENCRYPTED, len);
  return verdict;
}

/** The ESP transform of one IPv4 frame under encrypt_sa[key]: TC_ACT_SHOT (counted under its
 *  audit reason), or the encrypted frame (TC_ACT_OK, or redirected to the SA's device). A .text
 *  function: one copy however many times a policy calls encrypt, and one compile. */
/** @noinline */
function seal(skb: TcContext, key: EncryptKeyView): i32 {
  // The policy said "encrypt": every exit is an encrypted packet or a counted drop.
  // Finish a CHECKSUM_PARTIAL TCP/UDP checksum (engine/l4csum.ts): inside ESP nothing else will
  // (xfrm calls skb_checksum_help at this point). First, because it pulls the datagram into the
  // linear area, which invalidates packet views. Its code does not decide anything: a bad IPv4
  // header is dropped below as MALFORMED, an L4 it cannot complete is sent as it came.
  completeL4Checksum(skb);
  const ip = skb.header(Ipv4, ETH_HLEN);
  if (ip === null) {
    count(AUDIT_MALFORMED, skb.len);
    return TC_ACT_SHOT;
  }
  const sa = encrypt_sa.lookup(key);
  if (sa === null) {
    count(AUDIT_NO_SA, skb.len);
    return TC_ACT_SHOT;
  }
  const mode: u32 = sa.mode;
  if ((mode !== MODE_TUNNEL && mode !== MODE_TRANSPORT) || sa.esn > 1 || sa.offload !== 0) {
    count(AUDIT_UNSUPPORTED, skb.len);
    return TC_ACT_SHOT;
  }
  // Tunnel and transport mode share every step; where they differ, a value is selected by
  // arithmetic on `transport` (0 or 1) and its mask `tm` (0 or all ones), not by a second path:
  // one walk for the verifier. Both put the ciphertext at CT_OFF (14 + 20 + 16).
  const transport: u32 = (mode >>> 1) & 1;
  const tm: u32 = (0 - transport) >>> 0;
  const keyIndex: u32 = sa.keyIndex;
  const slot = crypto_ctx.lookup(keyIndex);
  if (slot === null) {
    count(AUDIT_NO_SA, skb.len);
    return TC_ACT_SHOT;
  }
  const aes = slot.ctx;
  if (aes === null) {
    count(AUDIT_NO_SA, skb.len);
    return TC_ACT_SHOT;
  }
  const totLen: u32 = ip.totLen;
  if (ip.vihl >>> 4 !== 4 || (ip.vihl & 15) < 5 || totLen < (ip.vihl & 15) * 4 || totLen + ETH_HLEN > skb.len) {
    count(AUDIT_MALFORMED, skb.len);
    return TC_ACT_SHOT;
  }
  // Transport mode keeps this IPv4 header: no options (adjust_room NET inserts after 20 bytes)
  // and no fragments (RFC 4303 §3.3: transport ESP protects whole datagrams only).
  if (transport !== 0 && (ip.vihl !== 0x45 || (ip.frag & 0x3fff) !== 0)) {
    count(AUDIT_UNSUPPORTED, skb.len);
    return TC_ACT_SHOT;
  }
  const icvLength: u32 = sa.icvLength;
  if (icvLength !== 8 && icvLength !== 12 && icvLength !== 16) {
    count(AUDIT_UNSUPPORTED, skb.len);
    return TC_ACT_SHOT;
  }
  // Encrypted: the whole IPv4 packet (tunnel) or what follows its 20-byte header (transport).
  const skip: u32 = transport * 20;
  if (totLen > 16 * (SCRATCH_BLOCKS - 1) - 6 + skip) {
    count(AUDIT_TOO_BIG, skb.len);
    return TC_ACT_SHOT;
  }
  // totLen < 1535 now; the mask says so to the compiler (which does not narrow on conditions).
  // The trailer goes right after the IPv4 packet in both modes (ETH_HLEN + inner).
  const inner: u32 = totLen & 0x7ff;
  const ptLen: u32 = (inner - skip) & 0x7ff;
  const pad: u32 = (6 - (ptLen & 3)) & 3;
  const ctLen: u32 = ptLen + pad + 2;
  const blocks: u32 = (ctLen + 15) >>> 4;
  const tos: u32 = ip.tos;
  const innerDf: u32 = ip.frag & IP_DF;
  // Transport mode's header fields, kept (read now: the views die at change_tail).
  const ipId: u32 = ip.id;
  const ipFrag: u32 = ip.frag;
  const ipTtl: u32 = ip.ttl;
  const ipProto: u32 = ip.protocol;
  const ipSrc: u32 = ip.saddr;
  const ipDst: u32 = ip.daddr;

  // The sequence number: consumed here, never reused, even if a later step drops the packet.
  // Up to seqLimit, and below 2³² without ESN, below 2⁶³ with ESN (RFC 4303 §2.2.1): every drop
  // here advances the counter too, so a limit near 2⁶⁴ would let it wrap to numbers already sent
  // (1, 2, … again: nonce reuse); under 2⁶³ that takes 2⁶³ drops. One shift: 32 + 31·esn.
  const esn: u32 = sa.esn & 1;
  const seq: u64 = fetchAdd(sa, 'seq', 1n);
  if (seq === 0n || seq > sa.seqLimit || seq >> BigInt(32 + 31 * esn) !== 0n) {
    fetchAdd(sa, 'dropped', 1n);
    count(AUDIT_SEQ_EXHAUSTED, skb.len);
    return TC_ACT_SHOT;
  }
  const seqHi: u32 = Number(seq >> 32n);
  const seqLo: u32 = Number(seq & 0xffffffffn);

  // Trailer first: change_tail refuses an skb that adjust_room has marked encapsulated.
  if (changeTail(skb, ETH_HLEN + inner + pad + 2 + icvLength) !== 0) {
    count(AUDIT_TOO_BIG, totLen);
    return TC_ACT_SHOT;
  }
  const tr = skb.header(Trailer, ETH_HLEN + inner);
  if (tr === null) {
    count(AUDIT_MALFORMED, totLen);
    return TC_ACT_SHOT;
  }
  for (let k = 0; k < 3; k++) if (k < pad) tr.b[k] = k + 1;
  tr.b[pad] = pad;
  tr.b[pad + 1] = pick(tm, IPPROTO_IPIP, ipProto); // next header: IPv4, or the L4 protocol
  // Tunnel: +36 after Ethernet (MAC) for outer IPv4 ‖ SPI ‖ seq ‖ IV. Transport: +16 after the
  // IPv4 header (NET, BPF_ADJ_ROOM_NET = 0 = BPF_ADJ_ROOM_MAC − 1) for SPI ‖ seq ‖ IV.
  if (adjustRoom(skb, ESP_OVERHEAD - skip, BPF_ADJ_ROOM_MAC - transport, BPF_F_ADJ_ROOM_FIXED_GSO) !== 0) {
    count(AUDIT_TOO_BIG, totLen);
    return TC_ACT_SHOT;
  }

  // Outer IPv4 (ECN per RFC 6040: CE → ECT(0)), ESP header, IV = be64(seq). Transport mode
  // keeps the packet's own TOS, ID, flags, TTL and addresses; both: protocol 50, length, checksum.
  const outer = skb.header(Ipv4, ETH_HLEN);
  const esp = skb.header(EspHdr, ETH_HLEN + 20);
  if (outer === null || esp === null) {
    count(AUDIT_MALFORMED, totLen);
    return TC_ACT_SHOT;
  }
  const ecn: u32 = tos & 3;
  const outerTos: u32 = pick(tm, (tos & 0xfc) | (ecn === 3 ? 2 : ecn), tos) & 0xff;
  const df: u32 = pick(tm, sa.df === DF_SET ? IP_DF : sa.df === DF_CLEAR ? 0 : innerDf, ipFrag) & 0xffff;
  const outerLen: u32 = 20 + 16 + ctLen + icvLength;
  const id: u32 = pick(tm, seqLo & 0xffff, ipId) & 0xffff;
  const ttl: u32 = pick(tm, sa.ttl, ipTtl) & 0xff;
  const src: u32 = pick(tm, sa.outerSrc, ipSrc);
  const odst: u32 = pick(tm, sa.outerDst, ipDst);
  outer.vihl = 0x45;
  outer.tos = outerTos;
  outer.totLen = outerLen;
  outer.id = id;
  outer.frag = df;
  outer.ttl = ttl;
  outer.protocol = IPPROTO_ESP;
  outer.saddr = src;
  outer.daddr = odst;
  outer.check = ipv4Checksum((0x4500 | outerTos) + outerLen + id + df + ((ttl << 8) | IPPROTO_ESP), src, odst);
  const spi: u32 = sa.spi;
  esp.spi = spi;
  esp.seq = seqLo;
  esp.ivHi = seqHi;
  esp.ivLo = seqLo;

  // Counter blocks salt ‖ IV ‖ be32(i + 1) as the raw little-endian u64s the ecb call reads,
  // filled by a bpf_loop (one verification of the step, not one per block).
  const s = scratch.lookup(0);
  if (s === null) return TC_ACT_SHOT;
  const fill = local(CtrFill, { nonceA: 0n });
  fill.nonceA = BigInt((sa.salt[0]! | (sa.salt[1]! << 8) | (sa.salt[2]! << 16) | (sa.salt[3]! << 24)) >>> 0) | (BigInt(bswap32(seqHi)) << 32n);
  fill.nonceB = BigInt(bswap32(seqLo));
  const filled = bpfLoop((blocks & 127) + 1, ctrStep, fill);
  if (filled !== (blocks & 127) + 1) {
    count(AUDIT_CRYPTO_ERROR, totLen);
    return TC_ACT_SHOT;
  }
  if (cryptoEncrypt(aes, dynptrFromMem(s.ks, Math.min((blocks & 127) + 1, SCRATCH_BLOCKS) * 16), dynptrFromMem(s.ks, Math.min((blocks & 127) + 1, SCRATCH_BLOCKS) * 16), null) !== 0) {
    count(AUDIT_CRYPTO_ERROR, totLen);
    return TC_ACT_SHOT;
  }

  // C = P ⊕ keystream in place, whole blocks; their GHASH lanes into the scratch. The loop's
  // only exit is "i reached whole": nothing after it reads i or whole (the tail works from
  // ctLen), so the verifier sees the same state at every exit and walks the rest once.
  const whole: u32 = ctLen >>> 4;
  for (let i = 0; i < SCRATCH_BLOCKS - 1; i++) {
    if (i >= whole) break;
    const off: u32 = CT_OFF + 16 * i;
    const p = skb.header(Raw16, off);
    if (p === null) return TC_ACT_SHOT;
    p.a = p.a ^ s.ks[2 * i + 2]!;
    p.b = p.b ^ s.ks[2 * i + 3]!;
    const c = skb.header(Be16B, off);
    if (c === null) return TC_ACT_SHOT;
    s.lanes[2 * i] = (BigInt(c.w0) << 32n) | BigInt(c.w1);
    s.lanes[2 * i + 1] = (BigInt(c.w2) << 32n) | BigInt(c.w3);
  }
  // The last block may be partial (4, 8 or 12 bytes: ctLen is a multiple of 4): by words,
  // zero-padded for GHASH. Its lanes are 2·whole, 2·whole + 1; its keystream block whole + 1.
  const rest: u32 = ctLen & 12;
  if (rest !== 0) {
    const tOff: u32 = CT_OFF + (ctLen & 0x7f0);
    const li: u32 = ((ctLen >>> 3) & 0xfe) % 189; // ≤ 188: ctLen < 1520
    const k0: u64 = s.ks[li + 2]!;
    const k1: u64 = s.ks[li + 3]!;
    let hi: u64 = 0n;
    let lo: u64 = 0n;
    const w0 = skb.header(RawWord, tOff);
    if (w0 === null) return TC_ACT_SHOT;
    w0.v = (w0.v ^ Number(k0 & 0xffffffffn)) >>> 0;
    const b0 = skb.header(BeWord, tOff);
    if (b0 === null) return TC_ACT_SHOT;
    hi = BigInt(b0.v) << 32n;
    if (rest > 4) {
      const w1 = skb.header(RawWord, tOff + 4);
      if (w1 === null) return TC_ACT_SHOT;
      w1.v = (w1.v ^ Number(k0 >> 32n)) >>> 0;
      const b1 = skb.header(BeWord, tOff + 4);
      if (b1 === null) return TC_ACT_SHOT;
      hi = hi | BigInt(b1.v);
    }
    if (rest > 8) {
      const w2 = skb.header(RawWord, tOff + 8);
      if (w2 === null) return TC_ACT_SHOT;
      w2.v = (w2.v ^ Number(k1 & 0xffffffffn)) >>> 0;
      const b2 = skb.header(BeWord, tOff + 8);
      if (b2 === null) return TC_ACT_SHOT;
      lo = BigInt(b2.v) << 32n;
    }
    s.lanes[li] = hi;
    s.lanes[li + 1] = lo;
  }

  // GHASH(SPI ‖ seq, C) and the tag E(J0) ⊕ Y, truncated to the ICV length.
  s.y.hi = 0n;
  s.y.lo = 0n;
  const walk = local(GhashWalk, { keyIndex: 0 });
  ghashWalkFor(walk, keyIndex, blocks, spi, seq, esn, ctLen);
  const walked = bpfLoop((blocks & 127) + 2, ghashStep, walk);
  if (walked !== (blocks & 127) + 2) {
    count(AUDIT_CRYPTO_ERROR, totLen);
    return TC_ACT_SHOT;
  }
  const e0: u64 = s.ks[0]!;
  const e1: u64 = s.ks[1]!;
  const yHi: u64 = s.y.hi;
  const yLo: u64 = s.y.lo;
  const icvOff: u32 = CT_OFF + ctLen;
  // Written out, not looped: a loop here does not compile in time yet (engine/README.md, G2).
  const t0: u32 = (Number(yHi >> 32n) ^ bswap32(Number(e0 & 0xffffffffn))) >>> 0;
  const t1: u32 = (Number(yHi & 0xffffffffn) ^ bswap32(Number(e0 >> 32n))) >>> 0;
  const t2: u32 = (Number(yLo >> 32n) ^ bswap32(Number(e1 & 0xffffffffn))) >>> 0;
  const t3: u32 = (Number(yLo & 0xffffffffn) ^ bswap32(Number(e1 >> 32n))) >>> 0;
  const tag = skb.header(BeWord2, icvOff);
  if (tag === null) return TC_ACT_SHOT;
  tag.w0 = t0;
  tag.w1 = t1;
  if (icvLength > 8) {
    const tag3 = skb.header(BeWord, icvOff + 8);
    if (tag3 === null) return TC_ACT_SHOT;
    tag3.v = t2;
  }
  if (icvLength > 12) {
    const tag4 = skb.header(BeWord, icvOff + 12);
    if (tag4 === null) return TC_ACT_SHOT;
    tag4.v = t3;
  }

  fetchAdd(sa, 'packets', 1n);
  fetchAdd(sa, 'bytes', BigInt(totLen));
  count(AUDIT_ENCRYPTED, totLen);
  const ifindex: u32 = sa.ifindex;
  if (ifindex !== 0) return redirect(ifindex);
  return TC_ACT_OK;
}


/** The default policy: per node pair (examples/policy-node-pair.ts). Traffic to an ipcache prefix
 *  with a key index is encrypted under the SA of its tunnel endpoint; everything else is plaintext. */
/** @section tc/egress */
export function egress(skb: TcContext): i32 {
  const eth = skb.header(Eth, 0);
  if (eth === null || eth.proto !== ETH_P_IP) return pass(skb, RULE_DEFAULT_OTHER);
  const ip = skb.header(Ipv4, ETH_HLEN);
  if (ip === null) return malformed(skb, RULE_DEFAULT_OTHER);
  const dst = local(IpcacheKey, { prefixlen: 32 });
  dst.addr = ip.daddr;
  const entry = ipcache.lookup(dst);
  if (entry === null || entry.keyIndex === 0 || entry.tunnelEndpoint === 0) return pass(skb, RULE_DEFAULT_CLEAR);
  const key = local(EncryptKey, { kind: ENCRYPT_KEY_NODE });
  keyWord(key, 0, entry.tunnelEndpoint);
  return encrypt(skb, key, RULE_DEFAULT_NODE);
}

// =============================================================================================
// Ingress: anti-replay (RFC 4303 §3.4.3), window of REPLAY_WINDOW_BITS as a shift register:
// `top` is the highest sequence number accepted (0: none yet), bit k of window (word k / 64,
// bit k % 64) says top − k was accepted. It moves only after the ICV and padding verified.

type IngressSaView = Infer<typeof IngressSa>;

/** 1 when seq may be new: not 0, not left of the window, not seen. */
/** @noinline */
function replayOk(sa: IngressSaView, seq: u64): u32 {
  const top: u64 = sa.top;
  if (seq === 0n) return 0;
  if (seq > top) return 1;
  const k: u64 = BigInt.asUintN(64, top - seq);
  if (k >= 1024n) return 0;
  const kk: u32 = Number(k & 1023n);
  const bit: u32 = Number((sa.window[kk >>> 6]! >> BigInt(kk & 63)) & 1n);
  return bit ^ 1;
}

/** Marks seq accepted (after replayOk said 1): past the top, the window shifts by seq − top
 *  (words 15…0, branch-free: ge/gt are 0/1 factors, a shift of ≥ 1024 clears it all). */
/** @noinline */
function replayAdvance(sa: IngressSaView, seq: u64): void {
  const top: u64 = sa.top;
  if (seq > top) {
    const d: u64 = BigInt.asUintN(64, seq - top);
    const dd: u32 = d > 1024n ? 1024 : Number(d & 2047n);
    const ws: u32 = dd >>> 6; // 0…16 words
    const bs: u32 = dd & 63;
    for (let t = 0; t < 16; t++) {
      const j: u32 = 15 - t;
      const ge: u32 = 1 - ((j - ws) >>> 31); // j ≥ ws
      const gt: u32 = 1 - ((j - ws - 1) >>> 31); // j > ws
      const a: u64 = sa.window[(j - ws) & 15]!;
      const b: u64 = sa.window[(j - ws - 1) & 15]!;
      const hiPart: u64 = BigInt.asUintN(64, a << BigInt(bs));
      const loPart: u64 = (b >> 1n) >> BigInt(63 - bs);
      sa.window[j] = (BigInt(ge) * hiPart) | (BigInt(gt) * loPart);
    }
    sa.top = seq;
  }
  const k: u32 = Number(BigInt.asUintN(64, sa.top - seq) & 1023n);
  sa.window[k >>> 6] = sa.window[k >>> 6]! | (1n << BigInt(k & 63));
}

/** The padding check: bytes start … start + padLen − 1 of the plaintext must be 1, 2, 3, …;
 *  `bad` OR-accumulates the differences. */
const PadCheck = struct({ start: U32, bad: U32 }, { name: 'pad_check' });

function plainByte(s: Infer<typeof Scratch>, q: u32): u32 {
  const qq: u32 = q & 2047;
  return Number((s.plain[qq >>> 3]! >> BigInt((qq & 7) * 8)) & 0xffn);
}

function padStep(i: u32, c: Infer<typeof PadCheck>): i32 {
  const s = scratch.lookup(0);
  if (s === null) return 1;
  c.bad = (c.bad | (plainByte(s, (c.start + (i & 255)) & 2047) ^ ((i + 1) & 0xff))) >>> 0;
  return 0;
}

/** @section tc/ingress */
export function ingress(skb: TcContext): i32 {
  const eth = skb.header(Eth, 0);
  if (eth === null || eth.proto !== ETH_P_IP) {
    count(AUDIT_PLAINTEXT, skb.len);
    return TC_ACT_OK;
  }
  const first = skb.header(Ipv4, ETH_HLEN);
  if (first === null) {
    count(AUDIT_MALFORMED, skb.len);
    return TC_ACT_SHOT;
  }
  if (first.protocol !== IPPROTO_ESP) {
    count(AUDIT_PLAINTEXT, skb.len);
    return TC_ACT_OK;
  }
  // Nonlinear skbs: Linux xfrm (and GRO) leave the ESP payload and trailer in page fragments,
  // which direct packet access cannot reach. Pull the whole frame linear (ESP only: plaintext
  // superpackets stay as they are); packet views taken before are invalid after this.
  if (pullData(skb, skb.len) !== 0) {
    count(AUDIT_MALFORMED, skb.len);
    return TC_ACT_SHOT;
  }
  const ip = skb.header(Ipv4, ETH_HLEN);
  if (ip === null) {
    count(AUDIT_MALFORMED, skb.len);
    return TC_ACT_SHOT;
  }
  // ESP from here: every exit is a delivered inner packet or a counted drop.
  const totLen: u32 = ip.totLen;
  if (ip.vihl !== 0x45 || (ip.frag & 0x3fff) !== 0 || totLen + ETH_HLEN > skb.len) {
    count(AUDIT_MALFORMED, skb.len); // outer options, fragments, truncated
    return TC_ACT_SHOT;
  }
  const esp = skb.header(EspHdr, ETH_HLEN + 20);
  const raw = skb.header(EspRaw, ETH_HLEN + 20);
  if (esp === null || raw === null) {
    count(AUDIT_MALFORMED, skb.len);
    return TC_ACT_SHOT;
  }
  const key = local(IngressKey, { spi: 0 });
  const spi: u32 = esp.spi;
  key.spi = spi;
  key.src = ip.saddr;
  key.dst = ip.daddr;
  const outerTos: u32 = ip.tos;
  const seqLo: u32 = esp.seq;
  const iv0: u32 = raw.iv0;
  const iv1: u32 = raw.iv1;
  const sa = ingress_sa.lookup(key);
  if (sa === null) {
    count(AUDIT_UNKNOWN_SPI, skb.len);
    return TC_ACT_SHOT;
  }
  const icvLength: u32 = sa.icvLength;
  if (sa.esn > 1 || (icvLength !== 8 && icvLength !== 12 && icvLength !== 16)) {
    count(AUDIT_UNSUPPORTED, skb.len);
    return TC_ACT_SHOT;
  }
  // SPI ‖ seq ‖ IV (16) ‖ C (≥ 4, a multiple of 4: RFC 4303 §2.4) ‖ ICV.
  if (totLen < 20 + 16 + 4 + icvLength || ((totLen - icvLength) & 3) !== 0) {
    count(AUDIT_MALFORMED, skb.len);
    return TC_ACT_SHOT;
  }
  if (totLen > 20 + 16 + MAX_CT + icvLength) {
    count(AUDIT_TOO_BIG, skb.len);
    return TC_ACT_SHOT;
  }
  const ctLen: u32 = (totLen - 36 - icvLength) & 0x7ff; // 4…1520
  const blocks: u32 = (ctLen + 15) >>> 4;
  const esn: u32 = sa.esn & 1;
  // Early check (before any crypto work): under the lock too, so a window another CPU is shifting
  // right now is never read half-shifted (a spurious REPLAY drop).
  spinLock(sa, 'lock');
  // ESN: seq_hi inferred from top = Th ‖ Tl and W = 1024 (RFC 4303 Appendix A2.2, as
  // runtime/esp/replay.ts inferSeqHi), branch-free: ge = Seql ≥ Tl − W + 1 (mod 2³²);
  // Tl ≥ W − 1: Th + 1 − ge, else Th − (ge and Th > 0). Without ESN seq_hi is 0.
  const top: u64 = sa.top;
  const th: u32 = Number(top >> 32n);
  const tl: u32 = Number(top & 0xffffffffn);
  const bottom: u32 = (tl - (REPLAY_WINDOW_BITS - 1)) >>> 0;
  const ge: u32 = Number(BigInt.asUintN(64, BigInt(seqLo) - BigInt(bottom)) >> 63n) ^ 1;
  const caseA: u32 = Number(BigInt.asUintN(64, BigInt(tl) - BigInt(REPLAY_WINDOW_BITS - 1)) >> 63n) ^ 1;
  const thPos: u32 = Number(BigInt.asUintN(64, 0n - BigInt(th)) >> 63n);
  const hiA: u64 = BigInt.asUintN(64, BigInt(th) + 1n - BigInt(ge)) & 0xffffffffn;
  const hiB: u64 = BigInt.asUintN(64, BigInt(th) - BigInt(ge & thPos));
  const seqHi64: u64 = ((BigInt(caseA) * hiA) | (BigInt(1 - caseA) * hiB)) * BigInt(esn);
  const seq: u64 = BigInt.asUintN(64, seqHi64 << 32n) | BigInt(seqLo);
  const maybeNew: u32 = replayOk(sa, seq);
  spinUnlock(sa, 'lock');
  if (maybeNew === 0) {
    fetchAdd(sa, 'replayDrops', 1n);
    count(AUDIT_REPLAY, skb.len);
    return TC_ACT_SHOT;
  }
  const keyIndex: u32 = sa.keyIndex;
  const slot = crypto_ctx.lookup(keyIndex);
  if (slot === null) {
    count(AUDIT_CRYPTO_ERROR, skb.len);
    return TC_ACT_SHOT;
  }
  const aes = slot.ctx;
  if (aes === null) {
    count(AUDIT_CRYPTO_ERROR, skb.len);
    return TC_ACT_SHOT;
  }

  // Keystream: J0, J0 + 1, … from salt ‖ IV (the IV's bytes as they came), one ecb call.
  const s = scratch.lookup(0);
  if (s === null) return TC_ACT_SHOT;
  const fill = local(CtrFill, { nonceA: 0n });
  fill.nonceA = BigInt((sa.salt[0]! | (sa.salt[1]! << 8) | (sa.salt[2]! << 16) | (sa.salt[3]! << 24)) >>> 0) | (BigInt(iv0) << 32n);
  fill.nonceB = BigInt(iv1);
  const filled = bpfLoop((blocks & 127) + 1, ctrStep, fill);
  if (filled !== (blocks & 127) + 1) {
    count(AUDIT_CRYPTO_ERROR, skb.len);
    return TC_ACT_SHOT;
  }
  // Only the blocks filled: E(J0) and one per ciphertext block (G7), not the whole scratch.
  const ksLen: u32 = Math.min((blocks & 127) + 1, SCRATCH_BLOCKS) * 16;
  if (cryptoEncrypt(aes, dynptrFromMem(s.ks, ksLen), dynptrFromMem(s.ks, ksLen), null) !== 0) {
    count(AUDIT_CRYPTO_ERROR, skb.len);
    return TC_ACT_SHOT;
  }

  // C → GHASH lanes, P = C ⊕ keystream in place and into the scratch. As in egress, nothing
  // after the loop reads i or whole.
  const whole: u32 = ctLen >>> 4;
  for (let i = 0; i < SCRATCH_BLOCKS - 1; i++) {
    if (i >= whole) break;
    const off: u32 = CT_OFF + 16 * i;
    const c = skb.header(Be16B, off);
    if (c === null) return TC_ACT_SHOT;
    s.lanes[2 * i] = (BigInt(c.w0) << 32n) | BigInt(c.w1);
    s.lanes[2 * i + 1] = (BigInt(c.w2) << 32n) | BigInt(c.w3);
    const p = skb.header(Raw16, off);
    if (p === null) return TC_ACT_SHOT;
    const pa: u64 = p.a ^ s.ks[2 * i + 2]!;
    const pb: u64 = p.b ^ s.ks[2 * i + 3]!;
    p.a = pa;
    p.b = pb;
    s.plain[2 * i] = pa;
    s.plain[2 * i + 1] = pb;
  }
  const rest: u32 = ctLen & 12;
  if (rest !== 0) {
    const tOff: u32 = CT_OFF + (ctLen & 0x7f0);
    const li: u32 = ((ctLen >>> 3) & 0xfe) % 189; // ≤ 188: ctLen ≤ 1520
    const k0: u64 = s.ks[li + 2]!;
    const k1: u64 = s.ks[li + 3]!;
    let hi: u64 = 0n;
    let lo: u64 = 0n;
    let p0: u64 = 0n;
    let p1: u64 = 0n;
    const b0 = skb.header(BeWord, tOff);
    if (b0 === null) return TC_ACT_SHOT;
    hi = BigInt(b0.v) << 32n;
    const w0 = skb.header(RawWord, tOff);
    if (w0 === null) return TC_ACT_SHOT;
    const x0: u32 = (w0.v ^ Number(k0 & 0xffffffffn)) >>> 0;
    w0.v = x0;
    p0 = BigInt(x0);
    if (rest > 4) {
      const b1 = skb.header(BeWord, tOff + 4);
      if (b1 === null) return TC_ACT_SHOT;
      hi = hi | BigInt(b1.v);
      const w1 = skb.header(RawWord, tOff + 4);
      if (w1 === null) return TC_ACT_SHOT;
      const x1: u32 = (w1.v ^ Number(k0 >> 32n)) >>> 0;
      w1.v = x1;
      p0 = p0 | (BigInt(x1) << 32n);
    }
    if (rest > 8) {
      const b2 = skb.header(BeWord, tOff + 8);
      if (b2 === null) return TC_ACT_SHOT;
      lo = BigInt(b2.v) << 32n;
      const w2 = skb.header(RawWord, tOff + 8);
      if (w2 === null) return TC_ACT_SHOT;
      const x2: u32 = (w2.v ^ Number(k1 & 0xffffffffn)) >>> 0;
      w2.v = x2;
      p1 = BigInt(x2);
    }
    s.lanes[li] = hi;
    s.lanes[li + 1] = lo;
    s.plain[li] = p0;
    s.plain[li + 1] = p1;
  }

  // GHASH(SPI ‖ seq, C) ⊕ E(J0) against the ICV: OR-accumulated, one comparison at the end.
  s.y.hi = 0n;
  s.y.lo = 0n;
  const walk = local(GhashWalk, { keyIndex: 0 });
  ghashWalkFor(walk, keyIndex, blocks, spi, seq, esn, ctLen);
  const walked = bpfLoop((blocks & 127) + 2, ghashStep, walk);
  if (walked !== (blocks & 127) + 2) {
    count(AUDIT_CRYPTO_ERROR, skb.len);
    return TC_ACT_SHOT;
  }
  const e0: u64 = s.ks[0]!;
  const e1: u64 = s.ks[1]!;
  const yHi: u64 = s.y.hi;
  const yLo: u64 = s.y.lo;
  const icvOff: u32 = CT_OFF + ctLen;
  const t0: u32 = (Number(yHi >> 32n) ^ bswap32(Number(e0 & 0xffffffffn))) >>> 0;
  const t1: u32 = (Number(yHi & 0xffffffffn) ^ bswap32(Number(e0 >> 32n))) >>> 0;
  const t2: u32 = (Number(yLo >> 32n) ^ bswap32(Number(e1 & 0xffffffffn))) >>> 0;
  const t3: u32 = (Number(yLo & 0xffffffffn) ^ bswap32(Number(e1 >> 32n))) >>> 0;
  const tag = skb.header(BeWord2, icvOff);
  if (tag === null) return TC_ACT_SHOT;
  let diff: u32 = ((tag.w0 ^ t0) | (tag.w1 ^ t1)) >>> 0;
  if (icvLength > 8) {
    const tag3 = skb.header(BeWord, icvOff + 8);
    if (tag3 === null) return TC_ACT_SHOT;
    diff = (diff | (tag3.v ^ t2)) >>> 0;
  }
  if (icvLength > 12) {
    const tag4 = skb.header(BeWord, icvOff + 12);
    if (tag4 === null) return TC_ACT_SHOT;
    diff = (diff | (tag4.v ^ t3)) >>> 0;
  }
  if (diff !== 0) {
    fetchAdd(sa, 'icvDrops', 1n);
    count(AUDIT_BAD_ICV, skb.len);
    return TC_ACT_SHOT;
  }

  // Authentic. Trailer: pad length ‖ next header; padding 1, 2, 3, … (RFC 4303 §2.4).
  const padLen: u32 = plainByte(s, (ctLen - 2) >>> 0);
  const nextHeader: u32 = plainByte(s, (ctLen - 1) >>> 0);
  if (padLen + 2 > ctLen) {
    count(AUDIT_BAD_PADDING, skb.len);
    return TC_ACT_SHOT;
  }
  const payloadLen: u32 = (ctLen - 2 - padLen) & 0x7ff;
  const pc = local(PadCheck, { start: 0 });
  pc.start = payloadLen;
  const checked = bpfLoop(padLen, padStep, pc);
  if (checked !== padLen || pc.bad !== 0) {
    count(AUDIT_BAD_PADDING, skb.len);
    return TC_ACT_SHOT;
  }
  // The window moves now: re-check and advance in ONE critical section (another CPU may have
  // accepted this seq since the early check; only one of them may deliver it).
  spinLock(sa, 'lock');
  const fresh: u32 = replayOk(sa, seq);
  if (fresh !== 0) replayAdvance(sa, seq);
  spinUnlock(sa, 'lock');
  if (fresh === 0) {
    fetchAdd(sa, 'replayDrops', 1n);
    count(AUDIT_REPLAY, skb.len);
    return TC_ACT_SHOT;
  }
  if (sa.mode === MODE_TRANSPORT && nextHeader !== IPPROTO_NONE) {
    // Transport mode (RFC 4303 §3.1.1): the payload is this datagram's own L4, of any protocol.
    // Remove SPI ‖ seq ‖ IV after the header (NET) and the trailer ‖ ICV; the header gets
    // protocol = next header and its length, the checksum updated (RFC 1624), not recomputed:
    // the header is not authenticated, and one damaged in flight must still fail the IP stack.
    const tlen: u32 = (20 + payloadLen) & 0x7ff;
    if (adjustRoom(skb, -16, BPF_ADJ_ROOM_NET, BPF_F_ADJ_ROOM_DECAP_L3_IPV4) !== 0 || changeTail(skb, ETH_HLEN + tlen) !== 0) {
      count(AUDIT_MALFORMED, skb.len);
      return TC_ACT_SHOT;
    }
    const th = skb.header(Ipv4, ETH_HLEN);
    const tw = skb.header(IpWord0, ETH_HLEN + 8); // TTL ‖ protocol
    if (th === null || tw === null) return TC_ACT_SHOT;
    const m4: u32 = tw.w;
    const n4: u32 = ((m4 & 0xff00) | (nextHeader & 0xff)) >>> 0;
    let tsum: u32 = (~th.check & 0xffff) + (~th.totLen & 0xffff) + tlen + (~m4 & 0xffff) + n4;
    tsum = (tsum & 0xffff) + (tsum >>> 16);
    tsum = (tsum & 0xffff) + (tsum >>> 16);
    th.totLen = tlen;
    tw.w = n4;
    th.check = ~tsum & 0xffff;
    fetchAdd(sa, 'packets', 1n);
    fetchAdd(sa, 'bytes', BigInt(tlen));
    count(AUDIT_DECRYPTED, tlen);
    return TC_ACT_OK;
  }
  // Tunnel mode: IPv4 in IPv4 only (a tunnel SA drops transport packets here).
  if (nextHeader !== IPPROTO_IPIP) {
    count(AUDIT_UNSUPPORTED, skb.len);
    return TC_ACT_SHOT;
  }
  // The inner IPv4 packet, trimmed to its own total length (bytes past it are TFC padding).
  const inner = skb.header(Ipv4, CT_OFF);
  if (inner === null || payloadLen < 20) {
    count(AUDIT_MALFORMED, skb.len);
    return TC_ACT_SHOT;
  }
  const innerLen: u32 = inner.totLen;
  const innerTos: u32 = inner.tos;
  if (inner.vihl >>> 4 !== 4 || innerLen < (inner.vihl & 15) * 4 || innerLen > payloadLen) {
    count(AUDIT_MALFORMED, skb.len);
    return TC_ACT_SHOT;
  }
  const deliver: u32 = innerLen & 0x7ff;
  // Outer headers first, then the trailer: a received skb can still carry the sender's
  // encapsulation mark (veth keeps skb->encapsulation across namespaces), and change_tail refuses
  // an encapsulated skb (-ENOTSUPP, Linux 6.18); the DECAP shrink clears the mark.
  if (adjustRoom(skb, -ESP_OVERHEAD, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_DECAP_L3_IPV4) !== 0) {
    count(AUDIT_MALFORMED, skb.len);
    return TC_ACT_SHOT;
  }
  if (changeTail(skb, ETH_HLEN + deliver) !== 0) {
    count(AUDIT_MALFORMED, skb.len);
    return TC_ACT_SHOT;
  }
  // RFC 6040 §4.2: outer CE onto an ECN-capable inner packet; checksum by RFC 1624 eqn. 3.
  const ecn: u32 = innerTos & 3;
  if ((outerTos & 3) === 3 && ecn !== 0 && ecn !== 3) {
    const w = skb.header(IpWord0, ETH_HLEN);
    const h = skb.header(Ipv4, ETH_HLEN);
    if (w === null || h === null) return TC_ACT_SHOT;
    const m: u32 = w.w;
    const m2: u32 = m | 3;
    let sum: u32 = (~h.check & 0xffff) + (~m & 0xffff) + m2;
    sum = (sum & 0xffff) + (sum >>> 16);
    sum = (sum & 0xffff) + (sum >>> 16);
    w.w = m2;
    h.check = ~sum & 0xffff;
  }
  fetchAdd(sa, 'packets', 1n);
  fetchAdd(sa, 'bytes', BigInt(deliver));
  count(AUDIT_DECRYPTED, deliver);
  return TC_ACT_OK;
}

// =============================================================================================
// crypto_setup: ecb(aes) context for one keyIndex from crypto_keys, kept as a kptr.

/** ctx_in of crypto_setup: 0 keyIndex (u32), 4 err (i32, written back). */
export const CryptoSetupArgs = struct({ keyIndex: U32, err: I32 }, { name: 'crypto_setup_args' });

export function crypto_setup(ctx: SyscallContext): i32 {
  const args = ctx.args(CryptoSetupArgs);
  const keyIndex: u32 = args.keyIndex;
  const k = crypto_keys.lookup(keyIndex);
  const slot = crypto_ctx.lookup(keyIndex);
  if (k === null || slot === null) return -2;
  const params = local(CryptoParams, { type: 'skcipher', algo: 'ecb(aes)', key_len: 16 });
  if (k.algo === CRYPTO_ALGO_AES_GENERIC) {
    // 'ecb(aes' ‖ '-generic)'
    params.algo[7] = 0x2d;
    params.algo[8] = 0x67;
    params.algo[9] = 0x65;
    params.algo[10] = 0x6e;
    params.algo[11] = 0x65;
    params.algo[12] = 0x72;
    params.algo[13] = 0x69;
    params.algo[14] = 0x63;
    params.algo[15] = 0x29;
  }
  params.key_len = k.keyLength;
  for (let i = 0; i < 32; i++) params.key[i] = k.key[i]!;
  const err = local(I32);
  const c = cryptoCtxCreate(params, err);
  if (c === null) {
    args.err = err.value;
    return err.value;
  }
  const old = kptrXchg(slot, 'ctx', c);
  if (old !== null) cryptoCtxRelease(old);
  slot.generation = (slot.generation + 1) >>> 0;
  args.err = 0;
  return 0;
}
