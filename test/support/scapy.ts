// The tests' independent ESP implementation: scapy (Debian python3-scapy over python3-cryptography),
// driven in batches through test/support/scapy/esp.py — one Python process per batch, requests and
// replies as JSON lines. Keys travel on the child's stdin only; nothing here puts them in argv,
// in a thrown message or in test output.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Requirement } from './env.ts';

/** Debian's interpreter: the `python3` first on PATH is a separate build without Debian's packages. */
export const DEBIAN_PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./scapy/esp.py', import.meta.url));

let scapyProbe: boolean | undefined;
export const hasScapy = (): Requirement => {
  if (scapyProbe === undefined) {
    try {
      execFileSync(DEBIAN_PYTHON, ['-c', 'import scapy.layers.ipsec, cryptography.hazmat.primitives.ciphers.aead'], { stdio: 'ignore' });
      scapyProbe = true;
    } catch {
      scapyProbe = false;
    }
  }
  return { ok: scapyProbe, reason: `needs ${DEBIAN_PYTHON} with scapy and cryptography (apt install python3-scapy python3-cryptography)` };
};

/** The SA as the Python side needs it. `key` is key ‖ salt, Cilium's and scapy's layout. */
export interface ScapySa {
  spi: number;
  key: Uint8Array;
  salt: Uint8Array;
  icv: 8 | 12 | 16;
  esn?: boolean;
  seqHi?: number;
  mode: 'tunnel' | 'transport';
}

export interface OuterHeader {
  src: string;
  dst: string;
  ttl: number;
  tos: number;
  id: number;
  /** IPv4 flags field (DF = 2). */
  flags: number;
}

export type ScapyRequest =
  | { op: 'decrypt'; sa: ScapySa; packet: Uint8Array }
  | { op: 'encrypt'; sa: ScapySa; inner: Uint8Array; seq: number; iv: Uint8Array; outer?: OuterHeader };

export type ScapyReply =
  | { ok: true; inner: string; seq: number; iv: string; nh: number; pad_ok: boolean; aligned: boolean; outer_ok: boolean; via: 'scapy' | 'cryptography' }
  | { ok: true; packet: string }
  | { ok: false; error: string };

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Runs one batch; replies come back in request order. */
export function scapyBatch(requests: ScapyRequest[]): ScapyReply[] {
  if (requests.length === 0) return [];
  const lines = requests.map((r) => {
    const sa = { spi: r.sa.spi, key: hex(r.sa.key) + hex(r.sa.salt), icv: r.sa.icv, esn: r.sa.esn ?? false, seq_hi: r.sa.seqHi ?? 0, mode: r.sa.mode };
    return JSON.stringify(
      r.op === 'decrypt'
        ? { op: 'decrypt', ...sa, packet: hex(r.packet) }
        : { op: 'encrypt', ...sa, inner: hex(r.inner), seq: r.seq, iv: hex(r.iv), outer: r.outer },
    );
  });
  let stdout: string;
  try {
    stdout = execFileSync(DEBIAN_PYTHON, [SCRIPT], { input: lines.join('\n') + '\n', maxBuffer: 1 << 28, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
  } catch (e) {
    // Only stderr goes into the message: the input (with keys) must not.
    const stderr = (e as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`esp.py failed: ${stderr.slice(-2000)}`);
  }
  const replies = stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ScapyReply);
  if (replies.length !== requests.length) throw new Error(`esp.py answered ${replies.length} of ${requests.length} requests`);
  return replies;
}
