// `keys generate`: a fresh key line in Cilium's format from the system CSPRNG — the seed's
// `dd if=/dev/urandom … | xxd -p` one-liner as one command, with the '+' (per-node-pair keys) that
// Cilium recommends and ebpf-ts always applies.
import { randomBytes } from 'node:crypto';
import { MAX_KEY_ID } from './keyfile.ts';
import { AEAD_GCM, type IcvBits } from './sa.ts';

export interface GenerateOptions {
  spi?: number;
  /** AES key size; the salt adds 4 bytes. */
  aesBits?: 128 | 256;
  icvBits?: IcvBits;
}

export function generateKeyLine(opts: GenerateOptions = {}): string {
  const spi = opts.spi ?? 1;
  if (!Number.isInteger(spi) || spi < 1 || spi > MAX_KEY_ID) throw new Error(`--spi: key IDs are 1–${MAX_KEY_ID}, got ${spi}`);
  const aesBits = opts.aesBits ?? 256;
  const keySalt = randomBytes(aesBits / 8 + 4);
  const line = `${spi}+ ${AEAD_GCM} ${keySalt.toString('hex')} ${opts.icvBits ?? 128}`;
  keySalt.fill(0);
  return line;
}
