// Choosing where SAs go. This is the one place the lead binds the engine's maps: add a backend
// whose SaStore writes the pinned encryption map and ingress SA map through runtime/sys (kernel)
// or the VM's maps through runtime/vm, and list it in BACKENDS.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MemorySaStore, type SaStore, StateFileSaStore } from './store.ts';

export const BACKENDS = ['state', 'memory'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Root keeps state under /run (tmpfs: keys do not survive a reboot); users under ~/.local/state. */
export function defaultStatePath(): string {
  if (process.env.EBPF_TS_KEY_STATE) return process.env.EBPF_TS_KEY_STATE;
  return process.getuid?.() === 0 ? '/run/ebpf-ts/keys.json' : join(homedir(), '.local', 'state', 'ebpf-ts', 'keys.json');
}

export function openStore(backend: string, statePath = defaultStatePath()): SaStore {
  switch (backend) {
    case 'state':
      return new StateFileSaStore(statePath);
    case 'memory':
      return new MemorySaStore();
    default:
      throw new Error(`--backend: "${backend}" is not one of ${BACKENDS.join(', ')}`);
  }
}
