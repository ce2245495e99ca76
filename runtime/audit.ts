// The engine's audit: what was encrypted, what passed in plaintext, and every drop by reason
// (issue 5, "auditable"). Reads the per-CPU `audit` counters (index = reason, engine/maps.ts), the
// per-rule counters of the policy (`policy_audit`, index = the rule number the policy passes to
// encrypt/pass/drop) and the per-SA counters, from kernel maps or VM maps alike, and formats them
// for people or JSON.

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
  [Engine.AUDIT_POLICY_DROP, 'dropped: by policy'],
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

/** One policy rule's counters: packets and bytes per verdict (bytes before encryption). */
export interface RuleRow {
  rule: number;
  /** The rule's name where known (the policy's `const RULE_… = n`, see ruleNamesOf). */
  name?: string;
  encrypted: { packets: bigint; bytes: bigint };
  plaintext: { packets: bigint; bytes: bigint };
  dropped: { packets: bigint; bytes: bigint };
}

/**
 * The policy_audit counters of every rule that counted a packet (value: 4 × {packets, bytes},
 * index VERDICT_*; `stride` the per-CPU slot size userspace sees, a VM map holds one CPU).
 */
export function readPolicyAudit(policyAudit: CounterSource, stride = Engine.PolicyCounter.size, names: Record<number, string> = {}): RuleRow[] {
  const rows: RuleRow[] = [];
  for (let rule = 0; rule < Engine.MAX_RULES; rule++) {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(rule);
    const value = policyAudit.lookup(key);
    const sum = (verdict: number) => {
      let packets = 0n;
      let bytes = 0n;
      for (let off = 0; value && off + Engine.PolicyCounter.size <= value.length; off += stride) {
        packets += value.readBigUInt64LE(off + 16 * verdict);
        bytes += value.readBigUInt64LE(off + 16 * verdict + 8);
      }
      return { packets, bytes };
    };
    const row: RuleRow = { rule, encrypted: sum(Engine.VERDICT_ENCRYPTED), plaintext: sum(Engine.VERDICT_PLAINTEXT), dropped: sum(Engine.VERDICT_DROPPED) };
    if (names[rule] !== undefined) row.name = names[rule];
    if (row.encrypted.packets || row.plaintext.packets || row.dropped.packets || row.name !== undefined) rows.push(row);
  }
  return rows;
}

/** Rule names from a policy's source: `const RULE_NODE = 2;` → { 2: 'NODE' } (for the table). */
export function ruleNamesOf(source: string): Record<number, string> {
  const names: Record<number, string> = {};
  for (const m of source.matchAll(/^\s*(?:export\s+)?const\s+RULE_([A-Z0-9_]+)\s*=\s*(\d+)\s*;/gm)) names[Number(m[2])] = m[1]!.toLowerCase().replace(/_/g, ' ');
  return names;
}

export interface SaCounters {
  direction: 'egress' | 'ingress';
  spi: number;
  peer: string;
  packets: bigint;
  bytes: bigint;
}

export function formatAudit(rows: AuditRow[], sas: SaCounters[], rules?: RuleRow[]): string {
  const out = ['traffic by verdict', `  ${'verdict'.padEnd(32)}${'packets'.padStart(12)}${'bytes'.padStart(14)}`];
  for (const r of rows) out.push(`  ${r.reason.padEnd(32)}${String(r.packets).padStart(12)}${String(r.bytes).padStart(14)}`);
  if (rules) {
    out.push('', 'traffic by policy rule (packets / bytes)', `  ${'rule'.padEnd(24)}${'encrypted'.padStart(20)}${'plaintext'.padStart(20)}${'dropped'.padStart(20)}`);
    if (rules.length === 0) out.push('  (no rule has counted a packet)');
    const cell = (c: { packets: bigint; bytes: bigint }) => `${c.packets} / ${c.bytes}`.padStart(20);
    for (const r of rules) out.push(`  ${`${r.rule}${r.name ? ` ${r.name}` : ''}`.padEnd(24)}${cell(r.encrypted)}${cell(r.plaintext)}${cell(r.dropped)}`);
  }
  out.push('', 'security associations', `  ${'direction'.padEnd(10)}${'spi'.padStart(12)}  ${'peer'.padEnd(16)}${'packets'.padStart(12)}${'bytes'.padStart(14)}`);
  if (sas.length === 0) out.push('  (none installed)');
  for (const s of sas) {
    out.push(`  ${s.direction.padEnd(10)}${`0x${s.spi.toString(16)}`.padStart(12)}  ${s.peer.padEnd(16)}${String(s.packets).padStart(12)}${String(s.bytes).padStart(14)}`);
  }
  return out.join('\n');
}

export function auditJson(rows: AuditRow[], sas: SaCounters[], rules?: RuleRow[]): object {
  const n = (x: bigint) => (x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x.toString());
  const c = (x: { packets: bigint; bytes: bigint }) => ({ packets: n(x.packets), bytes: n(x.bytes) });
  return {
    verdicts: rows.map((r) => ({ reason: r.reason, index: r.index, packets: n(r.packets), bytes: n(r.bytes) })),
    ...(rules ? { rules: rules.map((r) => ({ rule: r.rule, ...(r.name ? { name: r.name } : {}), encrypted: c(r.encrypted), plaintext: c(r.plaintext), dropped: c(r.dropped) })) } : {}),
    securityAssociations: sas.map((s) => ({ ...s, packets: n(s.packets), bytes: n(s.bytes) })),
  };
}
