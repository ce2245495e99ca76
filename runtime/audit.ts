// The engine's audit: what was encrypted, what passed in plaintext, and every drop by reason
// (issue 5, "auditable"). Reads the per-CPU `audit` counters (index = reason, engine/maps.ts) and
// the per-SA counters, from kernel maps or VM maps alike, and formats them for people or JSON.

import * as Engine from '../engine/maps.ts';

/** Reason names, by the audit map index declared in engine/maps.ts. */
export const AUDIT_REASONS: ReadonlyArray<[number, string]> = [
  [Engine.AUDIT_ENCRYPTED, 'encrypted'],
  [Engine.AUDIT_DECRYPTED, 'decrypted'],
  [Engine.AUDIT_PLAINTEXT, 'plaintext (policy: pass)'],
  [Engine.AUDIT_NO_SA, 'dropped: no SA (fail closed)'],
  [Engine.AUDIT_UNKNOWN_SPI, 'dropped: unknown SPI'],
  [Engine.AUDIT_REPLAY, 'dropped: replay'],
  [Engine.AUDIT_BAD_ICV, 'dropped: bad ICV'],
  [Engine.AUDIT_MALFORMED, 'dropped: malformed'],
  [Engine.AUDIT_SEQ_EXHAUSTED, 'dropped: sequence exhausted'],
  [Engine.AUDIT_BAD_PADDING, 'dropped: bad padding'],
  [Engine.AUDIT_TOO_BIG, 'dropped: too big'],
  [Engine.AUDIT_UNSUPPORTED, 'dropped: unsupported'],
  [Engine.AUDIT_CRYPTO_ERROR, 'dropped: crypto error'],
];

/** What the audit needs of a map: keyed reads (kernel MapHandle, runtime/keys MapAccess, VmMap). */
export interface CounterSource {
  lookup(key: Buffer): Buffer | null;
}

export interface AuditRow {
  reason: string;
  index: number;
  packets: bigint;
  bytes: bigint;
}

/**
 * Sum the per-CPU {packets, bytes} counters of every reason. `stride` is the per-CPU slot size
 * userspace sees (the value size rounded up to 8); a VM map holds one CPU.
 */
export function readAudit(audit: CounterSource, stride = 16): AuditRow[] {
  return AUDIT_REASONS.map(([index, reason]) => {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(index);
    const value = audit.lookup(key);
    let packets = 0n;
    let bytes = 0n;
    for (let off = 0; value && off + 16 <= value.length; off += stride) {
      packets += value.readBigUInt64LE(off);
      bytes += value.readBigUInt64LE(off + 8);
    }
    return { reason, index, packets, bytes };
  });
}

export interface SaCounters {
  direction: 'egress' | 'ingress';
  spi: number;
  peer: string;
  packets: bigint;
  bytes: bigint;
}

export function formatAudit(rows: AuditRow[], sas: SaCounters[]): string {
  const out = ['traffic by verdict', `  ${'verdict'.padEnd(32)}${'packets'.padStart(12)}${'bytes'.padStart(14)}`];
  for (const r of rows) out.push(`  ${r.reason.padEnd(32)}${String(r.packets).padStart(12)}${String(r.bytes).padStart(14)}`);
  out.push('', 'security associations', `  ${'direction'.padEnd(10)}${'spi'.padStart(12)}  ${'peer'.padEnd(16)}${'packets'.padStart(12)}${'bytes'.padStart(14)}`);
  if (sas.length === 0) out.push('  (none installed)');
  for (const s of sas) {
    out.push(`  ${s.direction.padEnd(10)}${`0x${s.spi.toString(16)}`.padStart(12)}  ${s.peer.padEnd(16)}${String(s.packets).padStart(12)}${String(s.bytes).padStart(14)}`);
  }
  return out.join('\n');
}

export function auditJson(rows: AuditRow[], sas: SaCounters[]): object {
  const n = (x: bigint) => (x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x.toString());
  return {
    verdicts: rows.map((r) => ({ reason: r.reason, index: r.index, packets: n(r.packets), bytes: n(r.bytes) })),
    securityAssociations: sas.map((s) => ({ ...s, packets: n(s.packets), bytes: n(s.bytes) })),
  };
}
