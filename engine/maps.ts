// The ESP engine's maps, declared once (issue 5). Layouts are C layouts (the DSL's struct()); the
// byte offsets in the comments are what userspace (runtime/keys, the loader) writes.
//
// Not yet usable from engine/egress.ts or engine/ingress.ts: the compiler resolves maps declared
// in the file being compiled only (engine/README.md, gap G1). Until then the programs must
// repeat these declarations; these are the ones userspace and the tests use.
//
// Key material (AES key, salt, GHASH table) is in `encrypt_sa`, `ingress_sa` and `ghash_tables`,
// none pinned: only the loader's fds reach them.

import { array, arrayMap, be32, hashMap, perCpuArrayMap, struct, u8, u32, u64 } from '../compiler/dsl/index.ts';
import { GhashTable } from './ghash.ts';

// ---------------------------------------------------------------------------------------------
// ipcache: IPv4 address → identity, key index, tunnel endpoint (Cilium's cilium_ipcache).
//
// Wanted: an LPM trie keyed by { prefixlen: u32, addr: be32 } (BPF_MAP_TYPE_LPM_TRIE,
// BPF_F_NO_PREALLOC). The DSL has no lpmTrieMap yet (gap G3), so this is an exact-match hash on
// the address; the value layout is final.

/** offset 0 prefixlen (u32, host order, as the LPM trie wants), 4 addr (be32). 8 bytes. */
export const IpcacheKey = struct({ prefixlen: u32, addr: be32 }, { name: 'ipcache_key' });
/** 0 identity, 4 tunnelEndpoint (be32, node IP; 0 = local), 8 keyIndex (u8; 0 = no key), 9..11 pad. 12 bytes. */
export const IpcacheEntry = struct({ identity: u32, tunnelEndpoint: be32, keyIndex: u8 }, { name: 'ipcache_entry' });
export const ipcache = hashMap({ key: IpcacheKey, value: IpcacheEntry, maxEntries: 65536 });

// ---------------------------------------------------------------------------------------------
// Encryption map: a policy-chosen key → egress SA state. The key is opaque to the engine: the
// policy fills `kind` and up to 16 bytes of selector (e.g. kind 1 = {dst identity u32, dst port
// be16}, kind 2 = {dst node be32}, kind 3 = {src subnet be32, dst subnet be32}).

/** 0 kind (u32), 4 selector (16 bytes). 20 bytes. */
export const EncryptKey = struct({ kind: u32, selector: array(u8, 16) }, { name: 'encrypt_key' });

export const MODE_TUNNEL = 1;
export const MODE_TRANSPORT = 2;
export const DF_COPY = 0;
export const DF_SET = 1;
export const DF_CLEAR = 2;

/**
 *   0 seq        u64  next sequence number to send, fetch-add by 1 per packet (BPF_ATOMIC); the
 *                     SA stops sending (counted as seq-exhausted) when it would pass seqLimit
 *   8 seqLimit   u64  2³² − 1, or 2⁶⁴ − 1 with ESN
 *  16 packets    u64  encrypted packets (atomic add)
 *  24 bytes      u64  encrypted plaintext bytes (atomic add)
 *  32 key        32 B AES key, first keyLength bytes used
 *  64 salt       4 B  RFC 4106 salt (nonce = salt ‖ IV)
 *  68 spi        be32
 *  72 outerSrc   be32 tunnel source
 *  76 outerDst   be32 tunnel destination
 *  80 ifindex    u32  output device (the device binding); 0 = FIB lookup + redirect_neigh
 *  84 keyLength  u8   16 or 32
 *  85 icvLength  u8   8, 12 or 16
 *  86 mode       u8   MODE_TUNNEL / MODE_TRANSPORT
 *  87 offload    u8   1 = the bound device does ESP itself: only mark and redirect
 *  88 keyIndex   u8   index into ghash_tables and crypto_ctx (one per key)
 *  89 ttl        u8
 *  90 df         u8   DF_COPY / DF_SET / DF_CLEAR
 *  91 esn        u8
 *  92 pad        4 B
 *  96 dropped    u64  seq-exhausted drops
 *  104 bytes total
 */
export const EncryptSa = struct(
  {
    seq: u64,
    seqLimit: u64,
    packets: u64,
    bytes: u64,
    key: array(u8, 32),
    salt: array(u8, 4),
    spi: be32,
    outerSrc: be32,
    outerDst: be32,
    ifindex: u32,
    keyLength: u8,
    icvLength: u8,
    mode: u8,
    offload: u8,
    keyIndex: u8,
    ttl: u8,
    df: u8,
    esn: u8,
    dropped: u64,
  },
  { name: 'encrypt_sa' },
);
export const encrypt_sa = hashMap({ key: EncryptKey, value: EncryptSa, maxEntries: 4096 });

// ---------------------------------------------------------------------------------------------
// Ingress SA map: (spi, src, dst) → key, salt, anti-replay window (RFC 4303 §3.4.3, 1024 bits as
// Cilium's replay-window), counters. The outer source is part of the key because keys are derived
// per node pair (runtime/keys/derive.ts): every sender uses the same SPI (the Cilium key ID) with a
// different key, so (SPI, destination) alone cannot tell the SAs apart. The window is updated under the SA's spin lock once the
// compiler has bpf_spin_lock (gap G5); today its words are written with single 8-byte stores.

export const REPLAY_WINDOW_BITS = 1024;

/** 0 spi (be32), 4 src (be32, outer source), 8 dst (be32, outer destination). 12 bytes. */
export const IngressKey = struct({ spi: be32, src: be32, dst: be32 }, { name: 'ingress_key' });
/**
 *   0 top         u64  highest authenticated sequence number (64-bit, ESN-inferred)
 *   8 window      16 × u64: bit (top − n) mod 1024 is sequence top − n; 1024 bits
 * 136 packets     u64  decrypted packets
 * 144 bytes       u64  decrypted bytes
 * 152 replayDrops u64
 * 160 icvDrops    u64
 * 168 key         32 B
 * 200 salt        4 B
 * 204 keyLength   u8, 205 icvLength u8, 206 keyIndex u8, 207 esn u8
 * 208 bytes total
 */
export const IngressSa = struct(
  {
    top: u64,
    window: array(u64, REPLAY_WINDOW_BITS / 64),
    packets: u64,
    bytes: u64,
    replayDrops: u64,
    icvDrops: u64,
    key: array(u8, 32),
    salt: array(u8, 4),
    keyLength: u8,
    icvLength: u8,
    keyIndex: u8,
    esn: u8,
  },
  { name: 'ingress_sa' },
);
export const ingress_sa = hashMap({ key: IngressKey, value: IngressSa, maxEntries: 4096 });

// ---------------------------------------------------------------------------------------------
// Per-key GHASH tables (4096 bytes each, engine/ghash.ts), indexed by keyIndex (Cilium key IDs
// are 1..15; 256 leaves room for per-node-pair derived keys).
export const MAX_KEYS = 256;
export const ghash_tables = arrayMap({ value: GhashTable, maxEntries: MAX_KEYS });

// ---------------------------------------------------------------------------------------------
// Per-CPU scratch: the counter blocks salt ‖ IV ‖ be32(i + 1) for i = 0..n are written here,
// one ecb(aes) call encrypts them in place (block 0 = E_K(J0) for the tag), and GHASH's Y lives
// here between blocks. 1536 B of blocks covers 95 blocks: 1500-byte MTU payloads + J0.
export const SCRATCH_BLOCKS = 96;
/** 0 y (ghash_state, 16 B), 16 tail (16 B, zero-padded last block), 32 blocks (96 × 16 B). 1568 bytes. */
export const Scratch = struct(
  { yHi: u64, yLo: u64, tail: array(u8, 16), blocks: array(u8, SCRATCH_BLOCKS * 16) },
  { name: 'engine_scratch' },
);
export const scratch = perCpuArrayMap({ value: Scratch, maxEntries: 1 });

// ---------------------------------------------------------------------------------------------
// Audit counters by reason, per CPU (summed by `ebpf-ts audit`). Indexes are stable: the CLI
// and runtime/esp's drop reasons use the same names.
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
export const AUDIT_REASONS = 16;
/** 0 packets, 8 bytes. */
export const AuditCounter = struct({ packets: u64, bytes: u64 }, { name: 'audit_counter' });
export const audit = perCpuArrayMap({ value: AuditCounter, maxEntries: AUDIT_REASONS });
