// Capabilities a command needs, checked up front so a user without them gets one line naming
// the missing one instead of an EPERM from the middle of a load.
import { readFileSync } from 'node:fs';
import { LoaderError } from './errors.ts';

const CAP = { CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21, CAP_PERFMON: 38, CAP_BPF: 39 } as const;
export type Capability = keyof typeof CAP;

function effective(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

export function hasCapability(cap: Capability, caps = effective()): boolean {
  return ((caps >> BigInt(CAP[cap])) & 1n) === 1n;
}

/** Throw a one-line error naming the first missing capability. CAP_SYS_ADMIN stands in for
 *  CAP_BPF (kernels before 5.8, and the usual root case). */
export function requireCapabilities(what: string, caps: Capability[]): void {
  const have = effective();
  for (const cap of caps) {
    const ok = hasCapability(cap, have) || (cap === 'CAP_BPF' && hasCapability('CAP_SYS_ADMIN', have));
    if (!ok) throw new LoaderError(`${what}: missing capability ${cap} (run as root${cap === 'CAP_BPF' ? ', or grant CAP_BPF' : ''})`);
  }
}
