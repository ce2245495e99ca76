// The ESP engine's maps (issue 5), re-exported for userspace (runtime/keys, the loader, tests).
// The declarations live in engine/esp.ts, the one DSL file the engine compiles from (the compiler
// resolves maps of the compiled file only: engine/README.md, G1), so there is one source of truth.
//
// Byte layouts (C layout, what userspace writes):
//   ipcache_key    0 prefixlen u32, 4 addr be32 (an LPM trie key: BPF_MAP_TYPE_LPM_TRIE)   8 B
//   ipcache_entry  0 identity u32, 4 tunnelEndpoint be32, 8 keyIndex u8            12 B
//   encrypt_key    0 kind u32 (2 = {dst node be32}), 4 selector 16 B              20 B
//   encrypt_sa     0 seq, 8 seqLimit, 16 packets, 24 bytes (u64), 32 key 32 B, 64 salt 4 B,
//                  68 spi be32, 72 outerSrc, 76 outerDst (be32), 80 ifindex u32, 84 keyLength,
//                  85 icvLength, 86 mode, 87 offload, 88 keyIndex, 89 ttl, 90 df, 91 esn (u8),
//                  96 dropped u64                                                  104 B
//   ingress_key    0 spi, 4 src, 8 dst (be32)                                       12 B
//   ingress_sa     0 top u64, 8 window 16 × u64 (bit k: top − k accepted; zero = empty), 136 packets, 144 bytes, 152 replayDrops,
//                  160 icvDrops (u64), 168 key 32 B, 200 salt 4 B, 204 keyLength, 205 icvLength,
//                  206 keyIndex, 207 esn, 208 lock (struct bpf_spin_lock over top and
//                  window, G5; userspace reads it as zero and never writes it),
//                  212 mode u8 (2 transport: opens the datagram's own L4; else tunnel) 216 B
//   ghash_table    4096 B per keyIndex (runtime/esp/ghash.ts ghashTableBytes)
//   crypto_key     0 key 32 B, 32 keyLength u32, 36 algo u32 (0 ecb(aes), 1 ecb(aes-generic))
//   crypto_slot    0 ctx kptr (bpf_crypto_ctx), 8 generation u32                    16 B
//   engine_scratch per-CPU, internal: 0 y (16 B), 16 ks (96 blocks), 1552 lanes (128 blocks),
//                  3600 plain (2048 B, ingress's decrypted payload for the padding check)  5648 B
//   audit_counter  per-CPU, 0 packets u64, 8 bytes u64; index = AUDIT_* reason
//   policy_counter per-CPU, index = the policy's rule number (< MAX_RULES): 4 audit_counters,
//                  index VERDICT_* (0 encrypted, 1 plaintext, 2 dropped, 3 unused)       64 B
export {
  AUDIT_BAD_ICV,
  AUDIT_BAD_PADDING,
  AUDIT_CRYPTO_ERROR,
  AUDIT_DECRYPTED,
  AUDIT_ENCRYPTED,
  AUDIT_MALFORMED,
  AUDIT_NO_SA,
  AUDIT_PLAINTEXT,
  AUDIT_POLICY_DROP,
  AUDIT_REASONS,
  AUDIT_REPLAY,
  AUDIT_SEQ_EXHAUSTED,
  AUDIT_TOO_BIG,
  AUDIT_UNKNOWN_SPI,
  AUDIT_UNSUPPORTED,
  AuditCounter,
  CRYPTO_ALGO_AES,
  CRYPTO_ALGO_AES_GENERIC,
  CryptoKey,
  CryptoSetupArgs,
  CryptoSlot,
  DF_CLEAR,
  DF_COPY,
  DF_SET,
  ENCRYPT_KEY_NODE,
  EncryptKey,
  EncryptSa,
  GhashState,
  GhashTable,
  IngressKey,
  IngressSa,
  IpcacheEntry,
  IpcacheKey,
  MAX_KEYS,
  MAX_RULES,
  MODE_TRANSPORT,
  MODE_TUNNEL,
  PolicyCounter,
  RULE_DEFAULT_CLEAR,
  RULE_DEFAULT_NODE,
  RULE_DEFAULT_OTHER,
  REPLAY_WINDOW_BITS,
  SCRATCH_BLOCKS,
  Scratch,
  VERDICT_DROPPED,
  VERDICT_ENCRYPTED,
  VERDICT_PLAINTEXT,
  audit,
  crypto_ctx,
  crypto_keys,
  encrypt_sa,
  ghash_tables,
  ingress_sa,
  ipcache,
  policy_audit,
  scratch,
} from './esp.ts';
