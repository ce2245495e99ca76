// `ebpf-ts audit [--json]`: what the engine encrypted, passed in plaintext and dropped (by
// reason), per rule of its policy, and the packets per SA — read from the engine's pinned maps.
// Never prints keys.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { auditJson, formatAudit, readAudit, readPolicyAudit, ruleNamesOf, type RuleRow, type SaCounters } from '../../runtime/audit.ts';
import { runCommand, UsageError } from '../errors.ts';

const DEFAULT_PIN_DIR = '/sys/fs/bpf/ebpf-ts/engine';

export function register(program: Command): void {
  program
    .command('audit')
    .description('print the engine\'s audit counters: encrypted, plaintext, drops by reason, per-SA packets')
    .option('--pin-dir <dir>', 'where the engine\'s maps are pinned', DEFAULT_PIN_DIR)
    .option('--json', 'print JSON')
    .option('--policy <file>', 'the policy source the engine was compiled from: names its rules (RULE_… constants)')
    .action((opts: { pinDir: string; json?: boolean; policy?: string }) =>
      runCommand(async () => {
        const { objGet, mapInfo, mapKeys, mapLookup, perCpuValueSize } = await import('../../runtime/sys/index.ts');
        const open = (name: string) => {
          const path = [join(opts.pinDir, name), join(opts.pinDir, 'maps', name)].find((p) => existsSync(p));
          if (!path) throw new UsageError(`engine map "${name}" is not pinned under ${opts.pinDir} — load the engine first (or pass --pin-dir)`, 1);
          const fd = objGet(path);
          return { fd, info: mapInfo(fd) };
        };
        const audit = open('audit');
        const stride = Math.ceil(audit.info.valueSize / 8) * 8;
        const rows = readAudit({ lookup: (k) => mapLookup(audit.fd, k, perCpuValueSize(audit.info.valueSize)) }, stride);
        // Per policy rule: an engine without policy_audit (older objects) has no rule table.
        let rules: RuleRow[] | undefined;
        const pinned = [join(opts.pinDir, 'policy_audit'), join(opts.pinDir, 'maps', 'policy_audit')].find((p) => existsSync(p));
        if (pinned) {
          const policy = open('policy_audit');
          const names = opts.policy ? ruleNamesOf(readFileSync(opts.policy, 'utf8')) : {};
          rules = readPolicyAudit({ lookup: (k) => mapLookup(policy.fd, k, perCpuValueSize(policy.info.valueSize)) }, Math.ceil(policy.info.valueSize / 8) * 8, names);
          policy.fd.close();
        }
        const { EncryptSa, IngressKey, IngressSa } = await import('../../engine/maps.ts');
        // Field offsets from the engine's own layout declarations (engine/maps.ts).
        const at = (type: { layout: readonly { name: string; offset: number }[] }, field: string) => type.layout.find((f) => f.name === field)!.offset;
        const sas: SaCounters[] = [];
        const ip = (b: Buffer, off: number) => [...b.subarray(off, off + 4)].join('.');
        const egress = open('encrypt_sa');
        for (const k of mapKeys(egress.fd, egress.info.keySize)) {
          const v = mapLookup(egress.fd, k, egress.info.valueSize);
          if (v) sas.push({ direction: 'egress', spi: v.readUInt32BE(at(EncryptSa, 'spi')), peer: ip(v, at(EncryptSa, 'outerDst')), packets: v.readBigUInt64LE(at(EncryptSa, 'packets')), bytes: v.readBigUInt64LE(at(EncryptSa, 'bytes')) });
        }
        const ingress = open('ingress_sa');
        for (const k of mapKeys(ingress.fd, ingress.info.keySize)) {
          const v = mapLookup(ingress.fd, k, ingress.info.valueSize);
          if (v) sas.push({ direction: 'ingress', spi: k.readUInt32BE(at(IngressKey, 'spi')), peer: ip(k, at(IngressKey, 'src')), packets: v.readBigUInt64LE(at(IngressSa, 'packets')), bytes: v.readBigUInt64LE(at(IngressSa, 'bytes')) });
        }
        for (const m of [audit, egress, ingress]) m.fd.close();
        console.log(opts.json ? JSON.stringify(auditJson(rows, sas, rules), null, 2) : formatAudit(rows, sas, rules));
      }),
    );
}
