// Security associations as the key runtime hands them to the engine's maps, and the one wrapper
// that carries key bytes. Key material lives only inside `Secret`: it prints, stringifies and
// JSON-encodes as "[redacted]", so a stray console.log or JSON.stringify of an SA cannot leak it.
import { createHash, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

/** Key bytes that refuse to be printed. `bytes()` is the only way out, for map writes and crypto. */
export class Secret {
  readonly #bytes: Buffer;
  constructor(bytes: Uint8Array) {
    this.#bytes = Buffer.from(bytes); // own copy: the caller may wipe or reuse its buffer
  }
  get length(): number {
    return this.#bytes.length;
  }
  bytes(): Buffer {
    return this.#bytes;
  }
  equals(other: Secret): boolean {
    return this.#bytes.length === other.#bytes.length && timingSafeEqual(this.#bytes, other.#bytes);
  }
  /** Short, one-way identifier for logs and `keys list`: 8 bytes of SHA-256 over a domain label. */
  fingerprint(): string {
    return createHash('sha256').update('ebpf-ts key fingerprint\0').update(this.#bytes).digest('hex').slice(0, 16);
  }
  wipe(): void {
    this.#bytes.fill(0);
  }
  toString(): string {
    return '[redacted]';
  }
  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return `Secret(${this.#bytes.length} bytes, fp ${this.fingerprint()})`;
  }
}

/** The only AEAD the engine implements (issue 5): AES-GCM as used by ESP, RFC 4106. */
export const AEAD_GCM = 'rfc4106(gcm(aes))';
export type Algorithm = typeof AEAD_GCM;
export type IcvBits = 64 | 96 | 128;

/**
 * Which way an SA protects traffic, seen from the local node. An egress SA is the encryption-map
 * entry for a remote node (one per node pair; a rotation replaces it in one map update). Ingress
 * SAs are keyed by SPI as well, so the old and the new key decrypt side by side during a rotation.
 */
export type Direction = 'ingress' | 'egress';

/** What makes an SA unique in a store. For egress, `spi` is not part of the identity. */
export interface SaId {
  direction: Direction;
  /** Local and remote node identities (node IP or name, as both ends agree on them). */
  localNode: string;
  remoteNode: string;
  spi: number;
}

/**
 * One SA, close to the engine's map values (issue 5): the encryption map holds SPI, AES key, 4-byte
 * salt (Cilium's key‖salt), key index and counters; the ingress SA map holds key, salt, replay state
 * and counters. Sequence numbers and replay windows are datapath state and are not written here.
 */
export interface SecurityAssociation extends SaId {
  /** Cilium key ID (1–15) that produced this SA; the ipcache's key index. */
  keyIndex: number;
  algorithm: Algorithm;
  /** AES-128 or AES-256 key (16 or 32 bytes). */
  key: Secret;
  /** RFC 4106 salt: the first 4 bytes of the GCM nonce (nonce = salt ‖ explicit IV). */
  salt: Secret;
  icvBits: IcvBits;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

/** An SA as listed by a store: the record plus the datapath's counters for it. */
export interface SaEntry extends SecurityAssociation {
  packets: bigint;
  bytes: bigint;
}

export function sameSlot(a: SaId, b: SaId): boolean {
  return (
    a.direction === b.direction &&
    a.localNode === b.localNode &&
    a.remoteNode === b.remoteNode &&
    (a.direction === 'egress' || a.spi === b.spi)
  );
}

export function describeSa(sa: SaId & { keyIndex?: number }): string {
  const pair = sa.direction === 'egress' ? `${sa.localNode}→${sa.remoteNode}` : `${sa.remoteNode}→${sa.localNode}`;
  return `${sa.direction} spi ${sa.spi} ${pair}`;
}

/** The key‖salt fingerprint shown by `keys list`: identifies a key without revealing it. */
export function saFingerprint(sa: Pick<SecurityAssociation, 'key' | 'salt'>): string {
  return new Secret(Buffer.concat([sa.key.bytes(), sa.salt.bytes()])).fingerprint();
}
