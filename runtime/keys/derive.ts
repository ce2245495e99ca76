// Per-node-pair keys. AES-GCM breaks completely if a (key, nonce) pair repeats, and every sender
// numbers its packets from its own sequence counter (nonce = salt ‖ seq). A key shared by several
// senders — Cilium's non-'+' global key, GHSA-pwqm-x5x6-5586 — therefore reuses nonces. So every
// direction of every node pair gets its own key AND salt, derived with HKDF-SHA256 (RFC 5869):
//
//   PRK  = HKDF-Extract(salt = "ebpf-ts ipsec v1", IKM = global AES key ‖ global salt)
//   OKM  = HKDF-Expand(PRK, info, L = AES key length + 4)      → pair key ‖ pair salt
//   info = "ebpf-ts pair key v1" 0x00
//          ‖ u8 key ID ‖ u8 AES key length ‖ u8 ICV bits / 8
//          ‖ lp(sender node) ‖ lp(sender boot ID) ‖ lp(receiver node) ‖ lp(receiver boot ID)
//   lp(s) = u16 big-endian byte length ‖ UTF-8 bytes            (so no two inputs encode alike)
//
// The sender's egress SA and the receiver's ingress SA for the same direction compute the same
// info, so both ends agree with no exchange. Including the key ID separates generations; including
// the boot IDs (Cilium does too) gives a fresh key after a reboot, when the sender's sequence
// counter restarts at zero and would otherwise replay nonces.
//
// SPIRE mode has no shared global key; the pair's IKM is the ECDH P-256 shared secret of the two
// nodes' SVID keys, and the info binds the sorted SPIFFE IDs, the direction and the SPI:
//
//   PRK  = HKDF-Extract(salt = "ebpf-ts spiffe v1", IKM = ECDH(own SVID key, peer SVID public key))
//   info = "ebpf-ts spiffe pair key v1" 0x00 ‖ lp(lower SPIFFE ID) ‖ lp(higher SPIFFE ID)
//          ‖ u8 direction (0: lower → higher, 1: higher → lower) ‖ u32 SPI ‖ u8 AES key length
import { createPrivateKey, createPublicKey, diffieHellman, hkdfSync, type KeyObject } from 'node:crypto';
import type { GlobalKey } from './keyfile.ts';
import { Secret } from './sa.ts';

export interface NodeEndpoint {
  /** Node identity both ends agree on (the node IP as Cilium uses, or the node name). */
  id: string;
  /** Kernel boot ID (/proc/sys/kernel/random/boot_id); "" if not used. */
  bootId: string;
}

function lp(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 0xffff) throw new Error('derivation input longer than 65535 bytes');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

/** The HKDF info for one direction of a node pair (exported so tests can pin the encoding). */
export function pairKeyInfo(global: Pick<GlobalKey, 'spi' | 'key' | 'icvBits'>, sender: NodeEndpoint, receiver: NodeEndpoint): Buffer {
  return Buffer.concat([
    Buffer.from('ebpf-ts pair key v1\0', 'ascii'),
    Buffer.from([global.spi, global.key.length, global.icvBits / 8]),
    lp(sender.id),
    lp(sender.bootId),
    lp(receiver.id),
    lp(receiver.bootId),
  ]);
}

function split(okm: Buffer, keyLength: number): { key: Secret; salt: Secret } {
  const out = { key: new Secret(okm.subarray(0, keyLength)), salt: new Secret(okm.subarray(keyLength, keyLength + 4)) };
  okm.fill(0);
  return out;
}

/** Key and salt for traffic from `sender` to `receiver` under a global key. */
export function derivePairKey(global: GlobalKey, sender: NodeEndpoint, receiver: NodeEndpoint): { key: Secret; salt: Secret } {
  if (sender.id === receiver.id) throw new Error(`node pair ${sender.id}→${receiver.id}: a node has no SA with itself`);
  const ikm = Buffer.concat([global.key.bytes(), global.salt.bytes()]);
  const okm = Buffer.from(hkdfSync('sha256', ikm, 'ebpf-ts ipsec v1', pairKeyInfo(global, sender, receiver), global.key.length + 4));
  ikm.fill(0);
  return split(okm, global.key.length);
}

export type SpiffeDirection = 'lower-to-higher' | 'higher-to-lower';

export function spiffePairInfo(senderId: string, receiverId: string, spi: number, keyLength: number): Buffer {
  if (senderId === receiverId) throw new Error(`SPIFFE ID ${senderId} on both ends: a node has no SA with itself`);
  const [lower, higher] = [senderId, receiverId].sort();
  const spiBytes = Buffer.alloc(4);
  spiBytes.writeUInt32BE(spi >>> 0);
  return Buffer.concat([
    Buffer.from('ebpf-ts spiffe pair key v1\0', 'ascii'),
    lp(lower),
    lp(higher),
    Buffer.from([senderId === lower ? 0 : 1]),
    spiBytes,
    Buffer.from([keyLength]),
  ]);
}

/**
 * Key and salt for traffic from SPIFFE ID `senderId` to `receiverId`, computed by either end:
 * ECDH is symmetric, so (own private, peer public) gives the same secret on both nodes.
 */
export function deriveSpiffePairKey(opts: {
  ownPrivateKey: KeyObject | Buffer;
  peerPublicKey: KeyObject | Buffer;
  senderId: string;
  receiverId: string;
  spi: number;
  keyLength?: 16 | 32;
}): { key: Secret; salt: Secret } {
  const keyLength = opts.keyLength ?? 32;
  const privateKey = Buffer.isBuffer(opts.ownPrivateKey) ? createPrivateKey({ key: opts.ownPrivateKey, format: 'der', type: 'pkcs8' }) : opts.ownPrivateKey;
  const publicKey = Buffer.isBuffer(opts.peerPublicKey) ? createPublicKey({ key: opts.peerPublicKey, format: 'der', type: 'spki' }) : opts.peerPublicKey;
  for (const [what, k] of [['own SVID key', privateKey], ['peer SVID key', publicKey]] as const) {
    if (k.asymmetricKeyType !== 'ec' || k.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new Error(`${what} is ${k.asymmetricKeyType}${k.asymmetricKeyDetails?.namedCurve ? ` ${k.asymmetricKeyDetails.namedCurve}` : ''}; ECDH needs EC P-256`);
    }
  }
  const shared = diffieHellman({ privateKey, publicKey });
  const okm = Buffer.from(hkdfSync('sha256', shared, 'ebpf-ts spiffe v1', spiffePairInfo(opts.senderId, opts.receiverId, opts.spi, keyLength), keyLength + 4));
  shared.fill(0);
  return split(okm, keyLength);
}
