// The key the baseline configures xfrm with, read by the key runtime's own parser
// (runtime/keys/keyfile.ts), so the baseline and the engine cannot read one file two ways.
//
// The baseline installs the key in force (the file's last line) exactly as Cilium does for a key
// without '+': the global key on every SA. With '+' Cilium derives a key per node pair from the
// node IPs and boot IDs, which the guest does not model, so such a file is refused rather than
// silently configured differently from Cilium.
import { readFileSync } from 'node:fs';
import { parseKeyFile } from '../keys/keyfile.ts';

export interface CiliumAeadKey {
  /** Cilium's key index, used as the SPI and encoded into the xfrm marks (1..15). */
  spi: number;
  /** `rfc4106(gcm(aes))` */
  algorithm: string;
  /** AES key ‖ 4-byte salt, as xfrm takes it. */
  keyAndSalt: Uint8Array;
  icvBits: number;
}

export class BaselineKeyError extends Error {}

export function parseCiliumKeys(text: string, source = 'keys'): CiliumAeadKey {
  const keys = parseKeyFile(text, source);
  const inForce = keys[keys.length - 1];
  if (inForce.perNodePair) {
    throw new BaselineKeyError(
      `${source}:${inForce.line}: key ${inForce.spi}+ asks for per-node-pair keys (Cilium derives them from ` +
        'node boot IDs, which the baseline does not model); use a key without "+"',
    );
  }
  return {
    spi: inForce.spi,
    algorithm: inForce.algorithm,
    keyAndSalt: Uint8Array.from(Buffer.concat([inForce.key.bytes(), inForce.salt.bytes()])),
    icvBits: inForce.icvBits,
  };
}

export function readCiliumKeys(path: string): CiliumAeadKey {
  return parseCiliumKeys(readFileSync(path, 'utf8'), path);
}
